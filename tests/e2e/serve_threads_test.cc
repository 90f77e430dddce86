// The threads of `catchall serve` as an operator sees them in `top -H`:
// named, and at the priority the settings ask for.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <string>
#include <utility>
#include <vector>

#include "support/server_process.h"
#include "support/temp_dir.h"
#include "support/threads.h"
#include "support/wait.h"

namespace catchall::testing {
namespace {

using namespace std::chrono_literals;

// aggregate.low_priority puts the aggregation thread at nice 19 (so that on
// busy cores it waits for the HTTP thread); by default it runs at the
// process's own priority.
TEST(ServeThreadsTest, TheAggregationThreadRunsAtNice19OnlyWhenAsked) {
  const int own = ::getpriority(PRIO_PROCESS, 0);
  if (own == 19) GTEST_SKIP() << "the tests run at nice 19: the default could not be told apart";
  for (const auto& [low, expected] : std::vector<std::pair<bool, int>>{{true, 19}, {false, own}}) {
    SCOPED_TRACE(low ? "aggregate.low_priority=true" : "default");
    TempDir data;
    std::vector<std::string> args = {"serve", "--data-dir", data.path()};
    if (low) args.insert(args.end(), {"--set", "aggregate.low_priority=true"});
    ServerProcess server(args);
    ASSERT_TRUE(server.WaitReady());
    std::vector<int> nice;
    ASSERT_TRUE(WaitUntil(
        [&] {
          // kAggregationThreadName (state/aggregation_loop.h).
          nice = NiceOfThreads("aggregate", server.pid());
          return nice == std::vector<int>{expected};
        },
        10s,
        [&] {
          return "one thread named aggregate at nice " + std::to_string(expected) +
                 "; the threads so named are at " + ::testing::PrintToString(nice);
        },
        {&server}));
    EXPECT_EQ(server.Terminate(), 0);
  }
}

// An operator reading `top -H` or perf sees what each thread does: besides
// the main thread, only RocksDB's periodic-task timer (RocksDB 7.8 names
// its other threads, not that one) keeps the process's name; a review found
// the batch-parsing thread so.
TEST(ServeThreadsTest, TheServingThreadsAreNamed) {
  TempDir data;
  ServerProcess server({"serve", "--data-dir", data.path(), "--set", "server.http_threads=2"});
  ASSERT_TRUE(server.WaitReady());
  for (const char* name :
       {"http-0", "http-1", "log-writer", "disk-monitor", "aggregate", "ingest-batch"}) {
    EXPECT_TRUE(WaitUntil([&] { return NiceOfThreads(name, server.pid()).size() == 1; }, 10s,
                          std::string("one thread named ") + name, {&server}));
  }
  EXPECT_THAT(NamesOfOtherThreads(server.pid()), ::testing::Contains("catchall").Times(1));
  EXPECT_EQ(server.Terminate(), 0);
}

}  // namespace
}  // namespace catchall::testing
