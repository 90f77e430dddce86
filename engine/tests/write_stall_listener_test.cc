#include "write_stall_listener.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace catchall {
namespace {

using Condition = rocksdb::WriteStallCondition;

rocksdb::WriteStallInfo Change(const char* cf, Condition prev, Condition cur) {
  rocksdb::WriteStallInfo info;
  info.cf_name = cf;
  info.condition.prev = prev;
  info.condition.cur = cur;
  return info;
}

TEST(WriteStallListenerTest, NoStallUntilAColumnFamilyIsDelayed) {
  WriteStallListener l;
  EXPECT_EQ(l.stalls(), 0u);
  EXPECT_EQ(l.stalled_seconds(), 0);
}

TEST(WriteStallListenerTest, OverlappingStallsOfTwoColumnFamiliesCountOnce) {
  WriteStallListener l;
  l.OnStallConditionsChanged(Change("log", Condition::kNormal, Condition::kDelayed));
  l.OnStallConditionsChanged(Change("counters", Condition::kNormal, Condition::kStopped));
  l.OnStallConditionsChanged(Change("log", Condition::kDelayed, Condition::kStopped));
  l.OnStallConditionsChanged(Change("log", Condition::kStopped, Condition::kNormal));
  EXPECT_EQ(l.stalls(), 1u);
  // "counters" still stops writes: the stall goes on.
  const double during = l.stalled_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GT(l.stalled_seconds(), during);
  l.OnStallConditionsChanged(Change("counters", Condition::kStopped, Condition::kNormal));
  const double ended = l.stalled_seconds();
  EXPECT_GE(ended, 0.02);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(l.stalled_seconds(), ended) << "an ended stall must not keep growing";

  l.OnStallConditionsChanged(Change("log", Condition::kNormal, Condition::kDelayed));
  EXPECT_EQ(l.stalls(), 2u);
  EXPECT_GE(l.stalled_seconds(), ended);
}

}  // namespace
}  // namespace catchall
