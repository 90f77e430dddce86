// PartitionOwners: a worker takes a partition only once no other worker of
// the process holds it.
#include "state/partition_owners.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/metrics.h"
#include "support/metrics.h"

namespace catchall {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Records what it is told, as the warm standbys would be told it. Locked,
// as they are: the workers tell it from their own threads.
class Told final : public OwnershipListener {
 public:
  // Released() takes this long before it records (a standby flushing).
  explicit Told(std::chrono::milliseconds released_delay = 0ms) : released_delay_(released_delay) {}

  Status Taking(int worker, const std::vector<int32_t>& partitions) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (int32_t p : partitions) {
      log_.push_back("take " + std::to_string(worker) + ":" + std::to_string(p));
    }
    return Status::Ok();
  }
  void Released(int worker, const std::vector<int32_t>& partitions) override {
    std::this_thread::sleep_for(released_delay_);
    std::lock_guard<std::mutex> lock(mu_);
    for (int32_t p : partitions) {
      log_.push_back("release " + std::to_string(worker) + ":" + std::to_string(p));
    }
  }
  std::vector<std::string> log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

 private:
  const std::chrono::milliseconds released_delay_;
  std::mutex mu_;
  std::vector<std::string> log_;
};

// The gauge's value, or -1 if it is not exported (so that 0 is a real 0).
double WaitingPartitions(const Metrics& metrics) {
  const testing::Exposition exposition(metrics.Serialize());
  constexpr const char* kGauge = "catchall_aggregate_waiting_partitions";
  return exposition.Has(kGauge) ? exposition.Sum(kGauge) : -1;
}

TEST(PartitionOwnersTest, ATakerWaitsUntilTheOtherWorkerLetsThePartitionGo) {
  // A release that takes a while: a taker woken before the standbys heard
  // of it would tell them of its taking first (the old order, which the
  // sanitizer caught as two threads in the recorder at once).
  Told told(100ms);
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
  EXPECT_EQ(told.log(), (std::vector<std::string>{"take 0:1", "take 0:2", "release 0:2", "take 1:2",
                                                  "take 1:3"}));
}

// What an operator sees while a worker waits: every partition of the
// assignment that waits (none of it is taken meanwhile), and none once it
// took them.
TEST(PartitionOwnersTest, TheWaitingPartitionsGaugeCountsWhatATakerWaitsFor) {
  Metrics metrics;
  PartitionOwners owners(nullptr, 30s, &metrics);
  ASSERT_TRUE(owners.Taking(0, {1, 2, 3}).ok());
  EXPECT_EQ(WaitingPartitions(metrics), 0);
  // Partitions 2 and 3 are held by worker 0; 4 is free, and waits with them.
  auto taker = std::async(std::launch::async, [&] { return owners.Taking(1, {2, 3, 4}); });
  for (int i = 0; i < 200 && WaitingPartitions(metrics) != 3; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(WaitingPartitions(metrics), 3);
  owners.Released(0, {2, 3});
  ASSERT_EQ(taker.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(taker.get().ok());
  EXPECT_EQ(WaitingPartitions(metrics), 0);
}

TEST(PartitionOwnersTest, ATakerGivesUpAfterTheWaitAndTakesNothing) {
  Told told;
  Metrics metrics;
  PartitionOwners owners(&told, 50ms, &metrics);
  ASSERT_TRUE(owners.Taking(0, {4}).ok());
  Status s = owners.Taking(1, {3, 4});
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("partition 4 was given to worker 1 while worker 0"));
  // Partition 3 was not taken by worker 1: worker 2 gets it at once.
  EXPECT_TRUE(owners.Taking(2, {3}).ok());
  EXPECT_EQ(told.log(), (std::vector<std::string>{"take 0:4", "take 2:3"}));
  EXPECT_EQ(WaitingPartitions(metrics), 0) << "a wait given up still counted";
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
  Metrics metrics;
  PartitionOwners owners(nullptr, 60s, &metrics);
  ASSERT_TRUE(owners.Taking(0, {6}).ok());
  auto taker = std::async(std::launch::async, [&] { return owners.Taking(1, {6}); });
  std::this_thread::sleep_for(100ms);
  owners.Stop();
  ASSERT_EQ(taker.wait_for(10s), std::future_status::ready) << "Stop left the taker waiting";
  EXPECT_EQ(taker.get().code(), Code::kAborted);
  EXPECT_EQ(WaitingPartitions(metrics), 0) << "a wait ended by Stop still counted";
  EXPECT_EQ(owners.Taking(2, {7}).code(), Code::kAborted);
}

}  // namespace
}  // namespace catchall
