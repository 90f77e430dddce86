// RequireRegularFile: the check before a role opens a file an operator names
// (keys, certificates). A FIFO there would block the open until a writer
// comes, and a reload on SIGHUP runs on the thread that waits for SIGTERM:
// one `mkfifo` left the process deaf to SIGTERM. A directory read as a keys
// file looked empty ("holds no key").
#pragma once
#include <string>
#include <string_view>

#include "engine/status.h"

namespace catchall {

// OK when `file` is a regular file (symlinks followed) or does not exist (the
// open that follows says why it cannot be read); InvalidArgument naming
// `setting` for a directory, a FIFO, a socket or a device. Never blocks on
// the file's contents.
Status RequireRegularFile(std::string_view setting, const std::string& file);

}  // namespace catchall
