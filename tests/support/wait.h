// WaitUntil: the one way tests wait for something. Every wait has a deadline
// and, when it fails, says what it waited for and shows what the servers
// printed, so a test never spins until ctest's timeout without a clue.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace catchall::testing {

class ServerProcess;

// Polls `done` every `poll` until it returns true, then returns true.
// Returns false, after adding a test failure that names `what` and shows the
// output of every process in `servers`, when `deadline` passes or as soon as
// one of `servers` has exited (it will not answer any more).
// Callers: ASSERT_TRUE(WaitUntil(...)) to stop the test there.
[[nodiscard]] bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline,
                             const std::string& what,
                             const std::vector<ServerProcess*>& servers = {},
                             std::chrono::milliseconds poll = std::chrono::milliseconds(10));
// The same, with `what` computed when the wait fails (to show the state then).
[[nodiscard]] bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline,
                             const std::function<std::string()>& what,
                             const std::vector<ServerProcess*>& servers = {},
                             std::chrono::milliseconds poll = std::chrono::milliseconds(10));

// What the `servers` printed (the last 16 KiB of each), for failure messages.
std::string ServersOutput(const std::vector<ServerProcess*>& servers);

}  // namespace catchall::testing
