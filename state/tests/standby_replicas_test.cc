// Warm standbys (StandbyReplicas) in cluster mode, over real stores and the
// local log: a process keeps the partitions it does not own warm, so that
// when their owner dies it restores only what the standby had not read yet,
// and the counts stay exact whatever fails meanwhile.
#include "state/standby_replicas.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <sstream>
#include <string>

#include "aggregation_world.h"
#include "engine/changelog.h"
#include "test_util.h"

namespace catchall::test {
namespace {

using namespace std::chrono_literals;
using testing::FaultEffect;
using testing::FaultPoint;
using testing::FaultTiming;

// The sum of a metric's samples in a process's exposition.
double MetricSum(Metrics& metrics, const std::string& name) {
  std::istringstream in(metrics.Serialize());
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{') continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// Steps the aggregation loops of `processes`, not their standbys, until
// `done()`; false after 30 s.
bool StepLoopsUntil(const std::vector<AggregationWorld::Process*>& processes,
                    const std::function<bool()>& done) {
  auto until = std::chrono::steady_clock::now() + 30s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    for (auto* p : processes) p->loop->Step();
  }
  return true;
}

std::vector<int32_t> Sorted(std::vector<int32_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

class StandbyReplicasTest : public ::testing::Test {
 protected:
  explicit StandbyReplicasTest(int32_t log_partitions = kWorldPartitions)
      : world_(Mode::kCluster, dir_.path(), SmallCommits(), log_partitions) {
    world_.UseStandbys();
  }

  // Starts a and b, counts a first load and waits until each keeps the
  // other's partitions warm, read to their end.
  void StartTwoAndSettle() {
    a_ = world_.Start("a");
    b_ = world_.Start("b");
    world_.AppendEvents(600, 40, 1);
    ASSERT_TRUE(world_.RunUntil([&] {
      return a_->loop->owned().size() == 2 && b_->loop->owned().size() == 2;
    })) << "the partitions were never split";
    ASSERT_TRUE(world_.RunUntilCaughtUp());
    ASSERT_TRUE(world_.RunUntil([&] { return WarmAndCaughtUp(b_, a_) && WarmAndCaughtUp(a_, b_); }))
        << "the standbys never caught up";
  }

  // a dies; b takes all four partitions over from its warm copies, reading
  // nothing at the takeover, and counts on exactly (the ids a remembered
  // included: retries of the first load count nothing).
  void KillAAndCheckBTakesOverWarm() {
    const double restored_before =
        MetricSum(b_->metrics, "catchall_aggregate_restored_records_total");
    world_.Kill(a_);
    ASSERT_TRUE(world_.RunUntil([&] { return b_->loop->owned().size() == 4; }));
    EXPECT_EQ(MetricSum(b_->metrics, "catchall_aggregate_restored_records_total"), restored_before)
        << "the warm copy was current: nothing to read at the takeover";
    EXPECT_TRUE(b_->standby->tracked().empty()) << "b owns everything: nothing to keep warm";
    world_.AppendEvents(600, 40, 1);
    world_.AppendEvents(300, 40, 2);
    ASSERT_TRUE(world_.RunUntilCaughtUp());
    EXPECT_EQ(world_.Differences(), "");
  }

  // True when `standby`'s warm copies are exactly `owner`'s partitions, all
  // read to their end.
  static bool WarmAndCaughtUp(AggregationWorld::Process* standby,
                              AggregationWorld::Process* owner) {
    std::vector<int32_t> owned = Sorted(owner->loop->owned());
    return Sorted(standby->standby->tracked()) == owned &&
           Sorted(standby->standby->caught_up()) == owned;
  }

  ScopedTempDir dir_;
  AggregationWorld world_;
  AggregationWorld::Process* a_ = nullptr;
  AggregationWorld::Process* b_ = nullptr;
};

TEST_F(StandbyReplicasTest, AWarmCopyTakesOverWithoutRestoringAnything) {
  StartTwoAndSettle();
  EXPECT_GT(MetricSum(b_->metrics, "catchall_aggregate_standby_records_total"), 0);
  EXPECT_EQ(MetricSum(b_->metrics, "catchall_aggregate_standby_partitions"), 2);
  EXPECT_EQ(MetricSum(b_->metrics, "catchall_aggregate_standby_behind_partitions"), 0);
  KillAAndCheckBTakesOverWarm();
}

// The changelog and the ids log may have more partitions than the events
// topic (Kafka takes it; the extra ones stay unused), and records are
// routed by the events topic's count. A review found the standby checking
// them against the changelog's count: it skipped most records, its
// checkpoints still advanced, and the takeover published counts built
// from the holes.
class StandbyReplicasWiderLogsTest : public StandbyReplicasTest {
 protected:
  StandbyReplicasWiderLogsTest() : StandbyReplicasTest(kWorldPartitions + 2) {}
};

TEST_F(StandbyReplicasWiderLogsTest, AWarmCopyOfLogsWithMorePartitionsTakesOverExactly) {
  StartTwoAndSettle();
  EXPECT_EQ(MetricSum(b_->metrics, "catchall_log_records_skipped_total"), 0);
  KillAAndCheckBTakesOverWarm();
  EXPECT_EQ(MetricSum(b_->metrics, "catchall_log_records_skipped_total"), 0);
}

TEST_F(StandbyReplicasTest, ACopyThatFellBehindRestoresOnlyTheTail) {
  StartTwoAndSettle();
  // A larger load the standbys do read, over many domains (many changelog
  // records), so that what b's copy holds clearly outweighs the tail below.
  world_.AppendEvents(1200, 400, 4);
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  ASSERT_TRUE(world_.RunUntil([&] { return WarmAndCaughtUp(b_, a_) && WarmAndCaughtUp(a_, b_); }))
      << "the standbys never caught up";
  const double restored_before =
      MetricSum(b_->metrics, "catchall_aggregate_restored_records_total");
  // a counts more while b's standby reads nothing.
  world_.AppendEvents(400, 40, 3);
  ASSERT_TRUE(StepLoopsUntil({a_, b_}, [&] { return world_.CaughtUp(); }))
      << "never caught up without the standbys";
  world_.Kill(a_);
  // b's standby still reads nothing until b owns everything.
  ASSERT_TRUE(StepLoopsUntil({b_}, [&] { return b_->loop->owned().size() == 4; }));
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  double tail =
      MetricSum(b_->metrics, "catchall_aggregate_restored_records_total") - restored_before;
  EXPECT_GT(tail, 0) << "b's copy was behind";
  const double standby = MetricSum(b_->metrics, "catchall_aggregate_standby_records_total");
  EXPECT_LT(tail, standby / 2) << "only the tail is read, not what the standby had";
  world_.AppendEvents(400, 40, 3);  // retries
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  EXPECT_EQ(world_.Differences(), "");
}

// A warm copy skips records of the changelog and the ids log that do not
// decode, counts them, and still takes over exactly.
TEST_F(StandbyReplicasTest, UndecodableRecordsAreSkippedAndCounted) {
  StartTwoAndSettle();
  world_.AppendTo(kStatusTopic, "d1.example", "not json");
  world_.AppendTo(kIdsTopic, std::string(kIdsBatchKey), R"({"ids":[["d2.example","x"]]})");
  const std::string skipped = "catchall_log_records_skipped_total{reader=\"standby\"}";
  auto both = [&] { return MetricSum(a_->metrics, skipped) + MetricSum(b_->metrics, skipped); };
  ASSERT_TRUE(world_.RunUntil([&] {
    return both() >= 2 && WarmAndCaughtUp(b_, a_) && WarmAndCaughtUp(a_, b_);
  })) << "the standbys did not read the two records";
  EXPECT_EQ(both(), 2) << "each record is read by one standby, once";
  world_.Kill(a_);
  world_.AppendEvents(600, 40, 1);  // retries of the first load
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  EXPECT_EQ(world_.Differences(), "");
}

TEST_F(StandbyReplicasTest, PartitionsMovingBackAndForthStayExact) {
  StartTwoAndSettle();
  world_.Stop(a_);  // orderly: b takes a's partitions
  ASSERT_TRUE(world_.RunUntil([&] { return b_->loop->owned().size() == 4; }));
  world_.AppendEvents(300, 40, 4);
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  // a comes back with its old store: it takes two partitions again (from
  // its checkpoints) and keeps b's warm.
  a_ = world_.Start("a");
  ASSERT_TRUE(world_.RunUntil(
      [&] { return a_->loop->owned().size() == 2 && b_->loop->owned().size() == 2; }));
  world_.AppendEvents(300, 40, 5);
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  ASSERT_TRUE(world_.RunUntil([&] { return WarmAndCaughtUp(a_, b_) && WarmAndCaughtUp(b_, a_); }));
  world_.Kill(b_);
  ASSERT_TRUE(world_.RunUntil([&] { return a_->loop->owned().size() == 4; }));
  world_.AppendEvents(300, 40, 5);  // retries
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  EXPECT_EQ(world_.Differences(), "");
}

TEST_F(StandbyReplicasTest, APartitionIsKeptWarmOnlyWhileNoWorkerOwnsIt) {
  StartTwoAndSettle();
  // Two workers of b's process claim one of a's partitions in turn, the
  // way a lost partition's new owner may arrive before the old one knows.
  int32_t p = a_->loop->owned().front();
  ASSERT_TRUE(b_->standby->Taking(7, {p}).ok());
  ASSERT_TRUE(b_->standby->Taking(8, {p}).ok());
  b_->standby->Released(7, {p});
  b_->standby->Step(0ms);
  auto tracked = b_->standby->tracked();
  EXPECT_EQ(std::count(tracked.begin(), tracked.end(), p), 0) << "worker 8 still owns it";
  b_->standby->Released(8, {p});
  b_->standby->Step(0ms);
  tracked = b_->standby->tracked();
  EXPECT_EQ(std::count(tracked.begin(), tracked.end(), p), 1);
}

// Failures of the standby's reads and writes: it starts again from the
// checkpoints in the store, and the takeover stays exact.
class StandbyFaultTest : public StandbyReplicasTest,
                         public ::testing::WithParamInterface<FaultPoint> {};

TEST_P(StandbyFaultTest, AFailingStandbyNeverCorruptsTheTakeover) {
  StartTwoAndSettle();
  world_.AppendEvents(400, 40, 6);
  // a counts it all; b's standby meets the fault while it catches up.
  ASSERT_TRUE(StepLoopsUntil({a_, b_}, [&] { return world_.CaughtUp(); }));
  b_->injector.Arm(GetParam(), 1, FaultTiming::kBefore, FaultEffect::kError,
                   Status::IoError("injected"));
  for (int i = 0; i < 5; ++i) b_->standby->Step(0ms);
  EXPECT_GE(b_->injector.fired(), 1) << "the standby never reached the fault";
  ASSERT_TRUE(world_.RunUntil([&] { return WarmAndCaughtUp(b_, a_); }, 10s))
      << "the standby did not recover";
  world_.Kill(a_);
  ASSERT_TRUE(world_.RunUntil([&] { return b_->loop->owned().size() == 4; }));
  world_.AppendEvents(400, 40, 6);  // retries
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  EXPECT_EQ(world_.Differences(), "");
}

INSTANTIATE_TEST_SUITE_P(Faults, StandbyFaultTest,
                         ::testing::Values(FaultPoint::kReaderPoll, FaultPoint::kStoreWrite),
                         [](const ::testing::TestParamInfo<FaultPoint>& point) {
                           return point.param == FaultPoint::kReaderPoll ? "ReadFails"
                                                                         : "WriteFails";
                         });

}  // namespace
}  // namespace catchall::test
