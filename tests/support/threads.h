// What /proc says about this process's threads, for tests of which thread
// runs at which priority.
#pragma once

#include <string>
#include <vector>

namespace catchall::testing {

// The nice value of each of this process's threads called `name` (as
// /proc/self/task/*/comm shows it); empty when there is none.
std::vector<int> NiceOfThreads(const std::string& name);

}  // namespace catchall::testing
