// The local log's acknowledged ends, kept in a file of their own beside
// the store, so that a store that lost writes can be told from one that
// never had them. RocksDB opens a store whose MANIFEST was cut short or
// whose write-ahead log was deleted or cut as a consistent, older store:
// a probe started on such data dirs ready, with up to every acknowledged
// event gone and nothing logged. The ends are recorded only after the
// store's write-ahead log is synced, so the store always holds at least
// what the file says, whatever crash or power loss came after.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "engine/status.h"

namespace catchall {

// (topic, partition) -> the offset after the last record stored.
using LogEnds = std::map<std::pair<std::string, int32_t>, int64_t>;

// Replaces `file` with `ends` (written beside it, synced, renamed over it,
// the directory synced): a crash leaves the old file or the new one.
Status WriteLogEnds(const std::string& file, const LogEnds& ends);

// The ends `file` holds; nullopt if there is no such file (a new data dir,
// or one of a version before the file). Corruption if it does not parse.
Result<std::optional<LogEnds>> ReadLogEnds(const std::string& file);

}  // namespace catchall
