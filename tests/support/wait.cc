#include "support/wait.h"

#include <gtest/gtest.h>

#include <thread>

#include "support/server_process.h"

namespace catchall::testing {

std::string ServersOutput(const std::vector<ServerProcess*>& servers) {
  constexpr size_t kTail = 16 << 10;
  std::string out;
  for (ServerProcess* s : servers) {
    if (s == nullptr) continue;
    std::string text = s->Output();
    if (text.size() > kTail) text = "[...]\n" + text.substr(text.size() - kTail);
    out += "\n----- output of `catchall " + s->command() + "` (" +
           (s->Running() ? "running" : "exited: " + s->ExitDescription()) + ") -----\n" + text;
  }
  return out;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline,
               const std::string& what, const std::vector<ServerProcess*>& servers,
               std::chrono::milliseconds poll) {
  return WaitUntil(
      done, deadline, [&what] { return what; }, servers, poll);
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline,
               const std::function<std::string()>& what, const std::vector<ServerProcess*>& servers,
               std::chrono::milliseconds poll) {
  auto started = std::chrono::steady_clock::now();
  auto until = started + deadline;
  while (true) {
    if (done()) return true;
    for (ServerProcess* s : servers) {
      if (s != nullptr && !s->Running()) {
        ADD_FAILURE() << "gave up waiting for " << what() << ": `catchall " << s->command()
                      << "` exited (" << s->ExitDescription() << ")" << ServersOutput(servers);
        return false;
      }
    }
    if (std::chrono::steady_clock::now() >= until) {
      ADD_FAILURE() << "timed out after " << deadline.count() << " ms waiting for " << what()
                    << ServersOutput(servers);
      return false;
    }
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace catchall::testing
