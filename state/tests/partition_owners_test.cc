// PartitionOwners: a worker takes a partition only once no other worker of
// the process holds it.
#include "state/partition_owners.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "engine/metrics.h"

namespace catchall {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Records what it is told, as the warm standbys would be told it.
class Told final : public OwnershipListener {
 public:
  Status Taking(int worker, const std::vector<int32_t>& partitions) override {
    for (int32_t p : partitions) {
      log.push_back("take " + std::to_string(worker) + ":" + std::to_string(p));
    }
    return Status::Ok();
  }
  void Released(int worker, const std::vector<int32_t>& partitions) override {
    for (int32_t p : partitions) {
      log.push_back("release " + std::to_string(worker) + ":" + std::to_string(p));
    }
  }
  std::vector<std::string> log;
};

TEST(PartitionOwnersTest, ATakerWaitsUntilTheOtherWorkerLetsThePartitionGo) {
  Told told;
  PartitionOwners owners(&told, 30s);
  ASSERT_TRUE(owners.Taking(0, {1, 2}).ok());
  std::atomic<bool> returned{false};
  auto taker = std::async(std::launch::async, [&] {
    Status s = owners.Taking(1, {2, 3});
    returned = true;
    return s;
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(returned.load()) << "worker 1 took partition 2 while worker 0 held it";
  owners.Released(0, {2});
  ASSERT_EQ(taker.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(taker.get().ok());
  // The standbys hear of worker 1's taking only after worker 0 let go.
  EXPECT_EQ(told.log, (std::vector<std::string>{"take 0:1", "take 0:2", "release 0:2", "take 1:2",
                                                "take 1:3"}));
}

// What an operator sees while a worker waits: the partitions it waits for,
// and none once it took them.
TEST(PartitionOwnersTest, TheWaitingPartitionsGaugeCountsWhatATakerWaitsFor) {
  Metrics metrics;
  PartitionOwners owners(nullptr, 30s, &metrics);
  ASSERT_TRUE(owners.Taking(0, {1, 2, 3}).ok());
  EXPECT_THAT(metrics.Serialize(), HasSubstr("\ncatchall_aggregate_waiting_partitions 0\n"));
  auto taker = std::async(std::launch::async, [&] { return owners.Taking(1, {2, 3, 4}); });
  // Partitions 2 and 3 are held by worker 0; 4 is free.
  bool counted = false;
  for (int i = 0; i < 200 && !counted; ++i) {
    counted = metrics.Serialize().find("\ncatchall_aggregate_waiting_partitions 2\n") !=
              std::string::npos;
    if (!counted) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(counted) << metrics.Serialize();
  owners.Released(0, {2, 3});
  ASSERT_EQ(taker.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(taker.get().ok());
  EXPECT_THAT(metrics.Serialize(), HasSubstr("\ncatchall_aggregate_waiting_partitions 0\n"));
}

TEST(PartitionOwnersTest, ATakerGivesUpAfterTheWaitAndTakesNothing) {
  Told told;
  PartitionOwners owners(&told, 50ms);
  ASSERT_TRUE(owners.Taking(0, {4}).ok());
  Status s = owners.Taking(1, {3, 4});
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("partition 4 was given to worker 1 while worker 0"));
  // Partition 3 was not taken by worker 1: worker 2 gets it at once.
  EXPECT_TRUE(owners.Taking(2, {3}).ok());
  EXPECT_EQ(told.log, (std::vector<std::string>{"take 0:4", "take 2:3"}));
}

TEST(PartitionOwnersTest, OnlyTheHolderLetsAPartitionGo) {
  PartitionOwners owners(nullptr, 50ms);
  ASSERT_TRUE(owners.Taking(0, {5}).ok());
  EXPECT_TRUE(owners.Taking(0, {5}).ok()) << "worker 0 taking its own partition again was refused";
  owners.Released(1, {5});  // worker 1 never held it (its taking failed)
  EXPECT_EQ(owners.Taking(1, {5}).code(), Code::kUnavailable);
  owners.Released(0, {5});
  EXPECT_TRUE(owners.Taking(1, {5}).ok());
}

TEST(PartitionOwnersTest, StopWakesAWaitingTaker) {
  PartitionOwners owners(nullptr, 60s);
  ASSERT_TRUE(owners.Taking(0, {6}).ok());
  auto taker = std::async(std::launch::async, [&] { return owners.Taking(1, {6}); });
  std::this_thread::sleep_for(100ms);
  owners.Stop();
  ASSERT_EQ(taker.wait_for(10s), std::future_status::ready) << "Stop left the taker waiting";
  EXPECT_EQ(taker.get().code(), Code::kAborted);
  EXPECT_EQ(owners.Taking(2, {7}).code(), Code::kAborted);
}

}  // namespace
}  // namespace catchall
