// What /proc says about a process's threads, for tests of which thread
// runs at which priority.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace catchall::testing {

// The name of each thread of process `pid` (0: this one) other than its
// main thread, as /proc/PID/task/*/comm shows it.
std::vector<std::string> NamesOfOtherThreads(pid_t pid = 0);

// The nice value of each thread called `name` (as /proc/PID/task/*/comm
// shows it) of process `pid` (0: this one); empty when there is none.
std::vector<int> NiceOfThreads(const std::string& name, pid_t pid = 0);

}  // namespace catchall::testing
