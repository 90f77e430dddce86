// What a thread of catchall says about itself to the operating system: its
// name (for `top -H`, perf and /proc/PID/task/TID/comm) and, for background
// work, a lower priority. Every thread catchall starts calls these first, so
// the names and the one way of lowering a thread live here.
#pragma once

#include <string_view>

#include "engine/status.h"

namespace catchall {

// Linux keeps at most 15 characters of a thread's name.
inline constexpr size_t kMaxThreadNameLength = 15;

// Names the calling thread. A longer name is cut to kMaxThreadNameLength
// characters rather than refused; naming never fails a thread's work.
void NameThisThread(std::string_view name);

// Puts the calling thread (not the process) at nice 19, so that on busy cores
// it waits for the serving threads. Threads it creates afterwards inherit
// this. An error (a sandbox without the right) is returned for the caller to
// log; the thread then runs at its old priority.
Status LowerThisThreadsPriority();

}  // namespace catchall
