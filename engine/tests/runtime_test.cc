// The process runtime's shutdown bounds (engine/runtime.h), in forked
// children: each test ends its process.
#include "engine/runtime.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace catchall {
namespace {

using namespace std::chrono_literals;

// A shutdown that never ends (librdkafka's consumer close can wait for good
// on a deleted topic: a probe's query node ran on 100 s after SIGTERM) is
// given up on at the deadline: exit code 1, saying why.
TEST(ExitOnASecondTerminationSignalTest, AShutdownPastItsDeadlineEndsTheProcess) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        BlockTerminationSignals();
        ExitOnASecondTerminationSignal(200ms);
        std::this_thread::sleep_for(30s);  // the shutdown that hangs
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(1), "the shutdown did not finish in time");
}

// A second SIGTERM before the deadline ends it at once, as before.
TEST(ExitOnASecondTerminationSignalTest, ASecondSigtermEndsTheProcessAtOnce) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        BlockTerminationSignals();
        ExitOnASecondTerminationSignal(60s);
        kill(getpid(), SIGTERM);
        std::this_thread::sleep_for(30s);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(128 + SIGTERM), "SIGTERM received again");
}

}  // namespace
}  // namespace catchall
