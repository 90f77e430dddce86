#include "engine/this_thread.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "support/threads.h"

namespace catchall {
namespace {

using testing::NiceOfThreads;

// Runs `body` on a new thread and waits for it: what is set there is
// that thread's alone, and the test's own thread stays as it was.
template <typename Body>
void OnANewThread(Body body) {
  std::thread thread(body);
  thread.join();
}

TEST(ThisThreadTest, NameThisThreadNamesOnlyTheCallingThread) {
  std::vector<int> seen;
  OnANewThread([&] {
    NameThisThread("named-worker");
    seen = NiceOfThreads("named-worker");
  });
  EXPECT_EQ(seen.size(), 1u) << "the calling thread carries the name, and only it";
  EXPECT_TRUE(NiceOfThreads("named-worker").empty()) << "the name left with its thread";
}

TEST(ThisThreadTest, ANameLongerThanLinuxKeepsIsCutNotRefused) {
  const std::string name = "a-name-of-twenty-char";
  ASSERT_GT(name.size(), kMaxThreadNameLength);
  std::vector<int> cut;
  OnANewThread([&] {
    NameThisThread(name);
    cut = NiceOfThreads(name.substr(0, kMaxThreadNameLength));
  });
  EXPECT_EQ(cut.size(), 1u) << "the thread is named by the first 15 characters";
}

TEST(ThisThreadTest, LowerThisThreadsPriorityLowersOnlyTheCallingThread) {
  errno = 0;
  const int before = ::getpriority(PRIO_PROCESS, 0);  // the test's own thread
  ASSERT_EQ(errno, 0);
  Status lowered;
  std::vector<int> background;
  std::vector<int> others;
  OnANewThread([&] {
    NameThisThread("background");
    lowered = LowerThisThreadsPriority();
    background = NiceOfThreads("background");
  });
  ASSERT_TRUE(lowered.ok()) << lowered.ToString();
  EXPECT_EQ(background, std::vector<int>{19});
  OnANewThread([&] {
    NameThisThread("foreground");
    others = NiceOfThreads("foreground");
  });
  EXPECT_EQ(others, std::vector<int>{before})
      << "the caller's priority is unchanged, so the threads it starts next are not lowered";
}

}  // namespace
}  // namespace catchall
