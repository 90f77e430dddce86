// The aggregation loop under injected faults, in both modes: every step of
// a commit (the transaction, the state write before and after it), joining,
// reading the committed offsets, polling, restoring and rebalancing fails
// or "crashes" the process there. After recovery (by the loop itself, or by
// a restart from whatever was durable) every domain counts each acknowledged
// event exactly once, retried ids included, and, in cluster mode, the
// changelog a query node reads says the same.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "aggregation_world.h"
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

}  // namespace
}  // namespace catchall::test
