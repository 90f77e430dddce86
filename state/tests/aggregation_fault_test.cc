// The aggregation loop under injected faults, in both modes: every step of
// a commit (the transaction, the state write before and after it), joining,
// reading the committed offsets, polling, restoring and rebalancing fails
// or "crashes" the process there. After recovery (by the loop itself, or by
// a restart from whatever was durable) every domain counts each acknowledged
// event exactly once, retried ids included, and, in cluster mode, the
// changelog a query node reads says the same.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "aggregation_world.h"
#include "engine/partitioner.h"
#include "test_util.h"

namespace catchall::test {
namespace {

using testing::FaultEffect;
using testing::FaultPoint;
using testing::FaultTiming;
using namespace std::chrono_literals;

struct Fault {
  std::string name;
  FaultPoint point;
  int nth;
  FaultTiming timing;
  FaultEffect effect;
  Code code;
  std::vector<Mode> modes;
};

// Test names print the fault by its name.
void PrintTo(const Fault& fault, std::ostream* os) { *os << fault.name; }

std::string PointName(FaultPoint point) {
  switch (point) {
    case FaultPoint::kStoreWrite: return "StoreWrite";
    case FaultPoint::kStoreRead: return "StoreRead";
    case FaultPoint::kJoin: return "Join";
    case FaultPoint::kPoll: return "Poll";
    case FaultPoint::kCommitted: return "Committed";
    case FaultPoint::kCommit: return "Commit";
    case FaultPoint::kReaderPoll: return "RestoreRead";
  }
  return "?";
}

// Every fault a commit, a join or a poll can meet. A fault "after" a call
// means it ran and its effects are durable, but the process hears an error
// (an unknown outcome, like a commit that timed out after the broker got
// it) or dies before hearing anything.
std::vector<Fault> Faults() {
  const std::vector<Mode> both = {Mode::kEmbedded, Mode::kCluster};
  const std::vector<Mode> cluster = {Mode::kCluster};
  std::vector<Fault> faults;
  auto add = [&](FaultPoint point, int nth, FaultTiming timing, FaultEffect effect, Code code,
                 const std::vector<Mode>& modes) {
    std::string what = effect == FaultEffect::kCrash       ? "Crash"
                       : effect == FaultEffect::kRedeliver ? "Redeliver"
                                                           : std::string(CodeName(code));
    std::string name = PointName(point) + (timing == FaultTiming::kBefore ? "Before" : "After") +
                       what + "Nth" + std::to_string(nth);
    std::string clean;
    for (char c : name) {
      if (std::isalnum(static_cast<unsigned char>(c))) clean.push_back(c);
    }
    faults.push_back({clean, point, nth, timing, effect, code, modes});
  };
  for (int nth : {1, 4}) {
    // The transaction: aborted (nothing visible), fenced, unknown outcome
    // before or after it became durable, and death on either side of it.
    add(FaultPoint::kCommit, nth, FaultTiming::kBefore, FaultEffect::kError, Code::kAborted, both);
    add(FaultPoint::kCommit, nth, FaultTiming::kBefore, FaultEffect::kError,
        Code::kFailedPrecondition, both);
    add(FaultPoint::kCommit, nth, FaultTiming::kBefore, FaultEffect::kError, Code::kUnavailable,
        both);
    add(FaultPoint::kCommit, nth, FaultTiming::kAfter, FaultEffect::kError, Code::kUnavailable,
        both);
    add(FaultPoint::kCommit, nth, FaultTiming::kBefore, FaultEffect::kCrash, Code::kIoError, both);
    add(FaultPoint::kCommit, nth, FaultTiming::kAfter, FaultEffect::kCrash, Code::kIoError, both);
    // The state write: in embedded mode the one write of the transaction;
    // in cluster mode the local cache, written after the transaction.
    add(FaultPoint::kStoreWrite, nth, FaultTiming::kBefore, FaultEffect::kError, Code::kIoError,
        both);
    add(FaultPoint::kStoreWrite, nth, FaultTiming::kBefore, FaultEffect::kCrash, Code::kIoError,
        both);
    add(FaultPoint::kStoreWrite, nth, FaultTiming::kAfter, FaultEffect::kCrash, Code::kIoError,
        both);
  }
  add(FaultPoint::kJoin, 1, FaultTiming::kBefore, FaultEffect::kError, Code::kUnavailable, both);
  add(FaultPoint::kCommitted, 1, FaultTiming::kBefore, FaultEffect::kError, Code::kUnavailable,
      both);
  add(FaultPoint::kPoll, 3, FaultTiming::kBefore, FaultEffect::kCrash, Code::kIoError, both);
  // Reading the state fails with work pending: it must be dropped, not
  // counted again after the rejoin, nor lost. The first 12 reads are the
  // join's checkpoints (3 per partition); the 15th is a poll's id lookups,
  // after that poll's events without ids were counted; in cluster mode the
  // 16th is a commit's read of the counters.
  add(FaultPoint::kStoreRead, 15, FaultTiming::kBefore, FaultEffect::kError, Code::kIoError, both);
  add(FaultPoint::kStoreRead, 16, FaultTiming::kBefore, FaultEffect::kError, Code::kIoError, both);
  // Records handed out again after they were applied (Kafka does this after
  // a rebalance or a seek): they must not count twice.
  add(FaultPoint::kPoll, 3, FaultTiming::kBefore, FaultEffect::kRedeliver, Code::kOk, both);
  add(FaultPoint::kPoll, 2, FaultTiming::kBefore, FaultEffect::kRedeliver, Code::kOk, both);
  return faults;
}

class AggregationFaultTest : public ::testing::TestWithParam<std::tuple<Mode, Fault>> {
 protected:
  static AggregationOptions Options() {
    AggregationOptions o;
    o.commit_interval = 1ms;
    o.commit_max_records = 30;
    o.poll_max_records = 30;
    o.ready_without_assignment = 50ms;
    o.retry_delay = 10ms;
    return o;
  }
};

TEST_P(AggregationFaultTest, CountsStayExactAfterRecovery) {
  const auto& [mode, fault] = GetParam();
  if (std::find(fault.modes.begin(), fault.modes.end(), mode) == fault.modes.end()) {
    GTEST_SKIP() << fault.name << " has no meaning in " << ModeName(mode) << " mode";
  }
  ScopedTempDir dir;
  AggregationWorld world(mode, dir.path(), Options());
  world.AppendEvents(300, 20, 21);
  auto* p = world.Start();
  if (fault.point == FaultPoint::kJoin) {
    // Make the process rejoin once so that the armed join is reached.
    p->injector.Arm(FaultPoint::kCommit, 2, FaultTiming::kBefore, FaultEffect::kError,
                    Status::FailedPrecondition("injected fencing"));
  }
  p->injector.Arm(fault.point, fault.nth, fault.timing, fault.effect,
                  Status(fault.code, "injected " + fault.name));
  bool caught_up = world.RunUntil([&] {
    if (p->injector.crashed()) return true;
    std::map<int32_t, int64_t> committed = world.log()->Committed(kWorldGroup, kEventsTopic);
    for (int32_t part = 0; part < kWorldPartitions; ++part) {
      int64_t end = world.log()->EndOffset(kEventsTopic, part);
      if (end > 0 && committed[part] != end) return false;
    }
    return true;
  });
  ASSERT_TRUE(caught_up) << "neither caught up nor crashed";
  // (A join fault is reached after the fencing armed to force a rejoin.)
  EXPECT_GE(p->injector.fired(), fault.point == FaultPoint::kJoin ? 2 : 1)
      << "the armed fault was never reached";
  if (fault.effect == FaultEffect::kCrash) {
    ASSERT_TRUE(p->injector.crashed()) << "the armed crash never happened";
    world.Kill(p);
    world.AppendEvents(150, 20, 22);  // logged while it was down
    p = world.Start();
  } else {
    EXPECT_FALSE(p->injector.crashed());
    // Recovered by itself: exact before any retry could heal a loss.
    EXPECT_EQ(world.Differences(), "") << fault.name << ", before the retries";
  }
  // The same load again: every id is a retry now, and more events besides.
  world.AppendEvents(300, 20, 21);
  world.AppendEvents(100, 20, 23);
  ASSERT_TRUE(world.RunUntilCaughtUp()) << "never caught up after recovery";
  EXPECT_EQ(world.Differences(), "") << fault.name;
  EXPECT_EQ(world.DeadLetters(), world.malformed()) << "each malformed record dead-lettered once";
}

// catchall_aggregate_records_total counts what commits: a transaction
// aborted and read again must not count its records twice (a black-box
// probe saw one malformed record counted as 423 dead letters while a
// missing dead-letter topic failed its transaction again and again).
TEST(AggregationOutcomeMetricTest, RecordsOfAnAbortedTransactionCountOnce) {
  for (Mode mode : {Mode::kEmbedded, Mode::kCluster}) {
    ScopedTempDir dir;
    AggregationWorld world(mode, dir.path(), SmallCommits());
    world.AppendMalformed("a.com", "not json");
    world.AppendEvent("a.com", false);
    world.AppendEvent("b.com", true);
    auto* p = world.Start();
    p->injector.Arm(FaultPoint::kCommit, 1, FaultTiming::kBefore, FaultEffect::kError,
                    Status::Aborted("injected abort"));
    ASSERT_TRUE(world.RunUntilCaughtUp()) << ModeName(mode) << ": never caught up";
    EXPECT_EQ(p->injector.fired(), 1) << "the armed abort was never reached";
    EXPECT_EQ(world.Differences(), "");
    std::string metrics = p->metrics.Serialize();
    EXPECT_THAT(metrics, ::testing::HasSubstr(
                             "catchall_aggregate_records_total{outcome=\"dead_lettered\"} 1\n"))
        << ModeName(mode);
    EXPECT_THAT(metrics,
                ::testing::HasSubstr("catchall_aggregate_records_total{outcome=\"counted\"} 2\n"))
        << ModeName(mode);
  }
}

INSTANTIATE_TEST_SUITE_P(Faults, AggregationFaultTest,
                         ::testing::Combine(::testing::Values(Mode::kEmbedded, Mode::kCluster),
                                            ::testing::ValuesIn(Faults())),
                         [](const auto& test) {
                           return ModeName(std::get<0>(test.param)) + "_" +
                                  std::get<1>(test.param).name;
                         });

// A failure sets the member's health (what /readyz and
// catchall_aggregate_ready read) until something clears it. Only a commit
// did, so a member whose failed step was retried with success but that
// then had nothing to commit stayed unready for good (found by a review of
// the loop, thirteenth session).
class AggregationHealthTest : public ::testing::TestWithParam<Mode> {};

TEST_P(AggregationHealthTest, APrepareThatSucceedsOnRetryLeavesAnIdleMemberHealthy) {
  ScopedTempDir dir;
  AggregationWorld world(GetParam(), dir.path(), SmallCommits());
  auto* p = world.Start();
  p->injector.Arm(FaultPoint::kCommitted, 1, FaultTiming::kBefore, FaultEffect::kError,
                  Status::Unavailable("injected committed-offsets failure"));
  ASSERT_TRUE(world.RunUntil([&] { return p->loop->ready(); }));
  EXPECT_EQ(p->injector.fired(), 1) << "the armed failure was never reached";
  for (int i = 0; i < 3; ++i) world.StepAll();
  EXPECT_TRUE(p->loop->Health().ok()) << p->loop->Health().ToString();
}

INSTANTIATE_TEST_SUITE_P(Modes, AggregationHealthTest,
                         ::testing::Values(Mode::kEmbedded, Mode::kCluster),
                         [](const auto& test) { return ModeName(test.param); });

// A member fenced and rejoining whose join fails once, and whose new
// partitions are idle (its old ones, with the fenced records, went to the
// other member).
TEST(ClusterHealthTest, AJoinThatSucceedsOnRetryLeavesAnIdleMemberHealthy) {
  ScopedTempDir dir;
  AggregationWorld world(Mode::kCluster, dir.path(), SmallCommits());
  auto* a = world.Start("a");
  auto* b = world.Start("b");
  ASSERT_TRUE(world.RunUntil([&] {
    return a->loop->ready() && b->loop->ready() && a->loop->owned().size() == 2 &&
           b->loop->owned().size() == 2;
  }));
  std::vector<int32_t> first = a->loop->owned();
  a->injector.Arm(FaultPoint::kCommit, 1, FaultTiming::kBefore, FaultEffect::kError,
                  Status::FailedPrecondition("injected fencing"));
  a->injector.Arm(FaultPoint::kJoin, 1, FaultTiming::kBefore, FaultEffect::kError,
                  Status::Unavailable("injected join failure"));
  int appended = 0;
  for (int i = 0; appended < 10; ++i) {
    std::string domain = "d" + std::to_string(i) + ".example";
    if (std::count(first.begin(), first.end(), PartitionForKey(domain, kWorldPartitions)) == 0) {
      continue;
    }
    world.AppendEvent(domain, false);
    ++appended;
  }
  ASSERT_TRUE(world.RunUntil([&] {
    return a->injector.fired() == 2 && a->loop->ready() && world.CaughtUp() &&
           a->loop->owned().size() == 2;
  }));
  ASSERT_NE(a->loop->owned(), first) << "the test needs a's new partitions to be idle";
  for (int i = 0; i < 3; ++i) world.StepAll();
  EXPECT_TRUE(a->loop->Health().ok()) << a->loop->Health().ToString();
  EXPECT_EQ(world.Differences(), "");
}

// Gauges after a member gives up: it restores nothing and owns nothing, so
// it neither restores nor lags. A restore that failed left
// catchall_aggregate_restoring_partitions at 1, and a rejoin left the lag
// of the partitions it had (found by a review of the loop, thirteenth
// session).
TEST(ClusterGaugeTest, AMemberWhoseRestoreFailsForGoodIsNotRestoring) {
  ScopedTempDir dir;
  AggregationWorld world(Mode::kCluster, dir.path(), SmallCommits());
  auto* a = world.Start("a");
  world.AppendEvents(300, 20, 81);
  ASSERT_TRUE(world.RunUntilCaughtUp());
  auto* b = world.Start("b");
  // Every attempt to restore b's first partitions fails writing its state.
  b->injector.ArmRepeated(FaultPoint::kStoreWrite, 1, 3, FaultTiming::kBefore,
                          Status::IoError("injected write failure"));
  ASSERT_TRUE(world.RunUntil([&] { return b->injector.fired() == 3; }));
  EXPECT_TRUE(b->loop->owned().empty());
  EXPECT_THAT(b->metrics.Serialize(),
              ::testing::HasSubstr("catchall_aggregate_restoring_partitions 0\n"));
  ASSERT_TRUE(world.RunUntilCaughtUp());
  EXPECT_EQ(world.Differences(), "");
  EXPECT_FALSE(a->loop->owned().empty());
}

TEST(ClusterGaugeTest, AMemberThatRejoinsShowsNoLag) {
  ScopedTempDir dir;
  AggregationWorld world(Mode::kCluster, dir.path(), SmallCommits());
  auto* a = world.Start("a");
  ASSERT_TRUE(world.RunUntil([&] { return a->loop->ready(); }));
  for (uint32_t i = 0; i < 40; ++i) world.AppendEvents(10, 20, 90 + i);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the gauges are due
  a->loop->Step();
  ASSERT_THAT(a->metrics.Serialize(),
              ::testing::Not(::testing::HasSubstr("catchall_aggregate_lag_records 0\n")))
      << "the test needs a lag shown before the rejoin";
  // Fenced, then unable to join again for a while (a broker outage).
  a->injector.Arm(FaultPoint::kCommit, 1, FaultTiming::kBefore, FaultEffect::kError,
                  Status::FailedPrecondition("injected fencing"));
  a->injector.ArmRepeated(FaultPoint::kJoin, 1, 1000, FaultTiming::kBefore,
                          Status::Unavailable("injected: no broker"));
  for (int i = 0; i < 20 && a->injector.fired() < 3; ++i) a->loop->Step();
  ASSERT_GE(a->injector.fired(), 3) << "the fencing or the failed joins were not reached";
  EXPECT_THAT(a->metrics.Serialize(), ::testing::HasSubstr("catchall_aggregate_lag_records 0\n"));
  EXPECT_THAT(a->metrics.Serialize(),
              ::testing::HasSubstr("catchall_aggregate_owned_partitions 0\n"));
}

// Found by a probe: an embedded node whose store refused writes (a flush
// failed on a full disk) rejoined again and again and showed a lag of 0
// while acknowledged events went uncounted.
TEST(EmbeddedGaugeTest, ANodeWhoseStoreRefusesWritesKeepsShowingItsLag) {
  ScopedTempDir dir;
  AggregationWorld world(Mode::kEmbedded, dir.path(), SmallCommits());
  auto* a = world.Start("a");
  ASSERT_TRUE(world.RunUntil([&] { return a->loop->ready(); }));
  for (uint32_t i = 0; i < 40; ++i) world.AppendEvents(10, 20, 90 + i);
  // The log shares the store: armed once the events are in.
  a->injector.ArmRepeated(FaultPoint::kStoreWrite, 1, 1000, FaultTiming::kBefore,
                          Status::IoError("injected: the store refuses writes"));
  for (int i = 0; i < 20 && a->injector.fired() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the gauges are due
    a->loop->Step();
  }
  ASSERT_GE(a->injector.fired(), 3) << "the failing writes were not reached";
  const std::string text = a->metrics.Serialize();
  ASSERT_THAT(text, ::testing::HasSubstr("\ncatchall_aggregate_lag_records "));
  EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr("catchall_aggregate_lag_records 0\n")));
}

// Cluster mode: faults while partitions move between aggregators.
class RebalanceFaultTest : public ::testing::TestWithParam<Fault> {};

TEST_P(RebalanceFaultTest, CountsStayExactWhenARebalanceOrRestoreFails) {
  const Fault& fault = GetParam();
  ScopedTempDir dir;
  AggregationOptions o;
  o.commit_interval = 1ms;
  o.commit_max_records = 30;
  o.poll_max_records = 30;
  o.ready_without_assignment = 50ms;
  o.retry_delay = 10ms;
  // A crash during the restore leaves its reads failing until it gives up
  // (the world steps the loops on the test's thread, so nothing stops it
  // sooner): 60 s of every CI run at the default.
  o.restore_stall_timeout = 2s;
  AggregationWorld world(Mode::kCluster, dir.path(), o);
  auto* a = world.Start("a");
  world.AppendEvents(300, 20, 31);
  ASSERT_TRUE(world.RunUntilCaughtUp());
  world.AppendEvents(200, 20, 32);  // pending when b arrives
  // The fault meets `a` giving partitions up (its revoke commit or poll),
  // or `b` taking them on (its restore: reading the logs, writing the state).
  auto* b = world.Start("b");
  bool on_b = fault.point == FaultPoint::kReaderPoll || fault.point == FaultPoint::kStoreWrite;
  auto* victim = on_b ? b : a;
  victim->injector.Arm(fault.point, fault.nth, fault.timing, fault.effect,
                       Status(fault.code, "injected " + fault.name));
  ASSERT_TRUE(world.RunUntil([&] {
    if (victim->injector.crashed()) return true;
    return a->loop->owned().size() == 2 && b->loop->owned().size() == 2;
  })) << "the rebalance never settled";
  EXPECT_GE(victim->injector.fired(), 1) << "the armed fault was never reached";
  // A restore whose reads all fail waits between them (it spun, and logged a
  // warning per read, until its 60 s stall timeout): at most one read per
  // 200 ms of each of its two logs, with room to spare.
  EXPECT_LT(victim->injector.calls(FaultPoint::kReaderPoll), 1000)
      << "a failing restore read spins";
  if (victim->injector.crashed()) world.Kill(victim);
  world.AppendEvents(300, 20, 31);  // retries
  ASSERT_TRUE(world.RunUntilCaughtUp());
  EXPECT_EQ(world.Differences(), "") << fault.name;
}

INSTANTIATE_TEST_SUITE_P(Faults, RebalanceFaultTest,
                         ::testing::Values(Fault{"RevokeCommitFails",
                                                 FaultPoint::kCommit,
                                                 1,
                                                 FaultTiming::kBefore,
                                                 FaultEffect::kError,
                                                 Code::kUnavailable,
                                                 {}},
                                           Fault{"RevokeCommitAborted",
                                                 FaultPoint::kCommit,
                                                 1,
                                                 FaultTiming::kBefore,
                                                 FaultEffect::kError,
                                                 Code::kAborted,
                                                 {}},
                                           Fault{"CrashInTheRevokeCommit",
                                                 FaultPoint::kCommit,
                                                 1,
                                                 FaultTiming::kBefore,
                                                 FaultEffect::kCrash,
                                                 Code::kIoError,
                                                 {}},
                                           Fault{"CrashRightAfterTheRevokeCommit",
                                                 FaultPoint::kCommit,
                                                 1,
                                                 FaultTiming::kAfter,
                                                 FaultEffect::kCrash,
                                                 Code::kIoError,
                                                 {}},
                                           Fault{"CrashInTheRebalancingPoll",
                                                 FaultPoint::kPoll,
                                                 1,
                                                 FaultTiming::kBefore,
                                                 FaultEffect::kCrash,
                                                 Code::kIoError,
                                                 {}},
                                           Fault{"RestoreReadFails",
                                                 FaultPoint::kReaderPoll,
                                                 2,
                                                 FaultTiming::kBefore,
                                                 FaultEffect::kError,
                                                 Code::kUnavailable,
                                                 {}},
                                           Fault{"CrashDuringRestore",
                                                 FaultPoint::kReaderPoll,
                                                 2,
                                                 FaultTiming::kBefore,
                                                 FaultEffect::kCrash,
                                                 Code::kIoError,
                                                 {}},
                                           Fault{"CrashWritingTheRestoredState",
                                                 FaultPoint::kStoreWrite,
                                                 1,
                                                 FaultTiming::kBefore,
                                                 FaultEffect::kCrash,
                                                 Code::kIoError,
                                                 {}}),
                         [](const auto& test) { return test.param.name; });

// Kafka serves a rebalance inside its poll, between records it had already
// fetched. When the revoke commit there aborts, the loop drops its work and
// seeks the partitions it keeps back to their committed offsets; the
// records fetched before that seek came after the dropped work, and
// applying them moved the partition's position past it: the dropped
// records were then skipped as "already applied" when read again, and lost
// (found by a review of the loop, thirteenth session).
TEST(RebalanceInsidePollTest, AnAbortedRevokeCommitInsideAPollLosesNothing) {
  ScopedTempDir dir;
  AggregationOptions o = SmallCommits();
  o.commit_interval = std::chrono::hours(1);  // nothing commits but the revoke
  o.commit_max_records = 1'000'000;
  o.poll_max_records = 1'000;  // a poll reads every partition's new records
  AggregationWorld world(Mode::kCluster, dir.path(), o);
  auto* a = world.Start("a");
  ASSERT_TRUE(world.RunUntil([&] { return a->loop->ready(); }));
  world.AppendEvents(200, 40, 71);
  a->loop->Step();  // applied, pending
  a->loop->Step();
  world.AppendEvents(100, 40, 72);
  // The next poll reads those 100, then b joins, then the rest of the poll
  // revokes half of a's partitions and the revoke commit aborts.
  AggregationWorld::Process* b = nullptr;
  a->injector.SetMidPollHook([&] {
    b = world.Start("b");
    b->loop->Step();
  });
  a->injector.Arm(FaultPoint::kPoll, 1, FaultTiming::kBefore, FaultEffect::kSplit);
  a->injector.Arm(FaultPoint::kCommit, 1, FaultTiming::kBefore, FaultEffect::kError,
                  Status::Aborted("injected abort"));
  a->loop->Step();
  ASSERT_EQ(a->injector.fired(), 2) << "the split poll or the aborted commit was not reached";
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(a->loop->owned().size(), 2u);
  a->injector.SetMidPollHook(nullptr);
  // Nothing commits by itself here: commit by hand until caught up.
  ASSERT_TRUE(world.RunUntil(
      [&] { return a->loop->CommitNow().ok() && b->loop->CommitNow().ok() && world.CaughtUp(); }));
  EXPECT_EQ(world.Differences(), "");
}

}  // namespace
}  // namespace catchall::test
