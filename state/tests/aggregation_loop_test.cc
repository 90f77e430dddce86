// The aggregation loop in both modes, over real stores and the local log:
// counting, idempotency ids, dead letters, restarts, rebalances and
// restores. (Its failure paths: aggregation_fault_test.cc.)
#include "state/aggregation_loop.h"

#include <absl/cleanup/cleanup.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "aggregation_world.h"
#include "engine/changelog.h"
#include "engine/partitioner.h"
#include "state/partition_owners.h"
#include "test_util.h"

namespace catchall::test {
namespace {

using testing::FaultEffect;
using testing::FaultPoint;
using testing::FaultTiming;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class AggregationLoopTest : public ::testing::TestWithParam<Mode> {
 protected:
  AggregationLoopTest() : world_(GetParam(), dir_.path(), SmallCommits()) {}

  void ExpectExact() {
    ASSERT_TRUE(world_.RunUntilCaughtUp()) << "never caught up";
    EXPECT_EQ(world_.Differences(), "");
  }

  ScopedTempDir dir_;
  AggregationWorld world_;
};

TEST_P(AggregationLoopTest, CountsDeliveredAndBouncedPerDomain) {
  world_.Start();
  world_.AppendEvent("a.com", false);
  world_.AppendEvent("a.com", true);
  world_.AppendEvent("a.com", true);
  world_.AppendEvent("b.com", false);
  ExpectExact();
  EXPECT_EQ(world_.Visible()["a.com"], (DomainCounts{1, 2}));
  EXPECT_EQ(world_.Visible()["b.com"], (DomainCounts{1, 0}));
}

TEST_P(AggregationLoopTest, CountsALoadOfEventsExactlyWithIdsAndRetries) {
  world_.AppendEvents(600, 30, 1);
  world_.Start();
  ExpectExact();
  world_.AppendEvents(400, 30, 2);
  ExpectExact();
}

TEST_P(AggregationLoopTest, AnIdRetriedLaterIsCountedOnce) {
  world_.Start();
  world_.AppendEvent("a.com", false, "evt-1");
  ExpectExact();
  world_.AppendEvent("a.com", false, "evt-1");
  world_.AppendEvent("a.com", false, "evt-2");
  ExpectExact();
  EXPECT_EQ(world_.Visible()["a.com"], (DomainCounts{2, 0}));
}

TEST_P(AggregationLoopTest, MalformedRecordsAreDeadLetteredAndLaterEventsCount) {
  world_.Start();
  world_.AppendMalformed("a.com", "not json");
  world_.AppendMalformed("B.com", R"({"domain":"B.com","type":"delivered"})");
  world_.AppendEvent("a.com", false);
  ExpectExact();
  EXPECT_EQ(world_.DeadLetters(), 2u);
  std::string metrics = world_.processes().front()->metrics.Serialize();
  EXPECT_THAT(metrics,
              HasSubstr("catchall_aggregate_records_total{outcome=\"dead_lettered\"} 2\n"));
  EXPECT_THAT(metrics, HasSubstr("catchall_aggregate_records_total{outcome=\"counted\"} 1\n"));
}

TEST_P(AggregationLoopTest, ACleanRestartResumesWithoutDoubleCounting) {
  auto* first = world_.Start();
  world_.AppendEvents(300, 20, 3);
  ExpectExact();
  world_.Stop(first);
  // Logged while no aggregator runs, retries of counted ids among them.
  world_.AppendEvents(300, 20, 3);
  world_.AppendEvents(200, 20, 4);
  world_.Start();
  ExpectExact();
}

TEST_P(AggregationLoopTest, AKilledAggregatorRestartsFromItsLastCommit) {
  auto* first = world_.Start();
  world_.AppendEvents(500, 20, 5);
  // Part of the way: some commits done, some work pending.
  ASSERT_TRUE(
      world_.RunUntil([&] { return first->injector.calls(testing::FaultPoint::kCommit) >= 3; }));
  world_.Kill(first);
  world_.AppendEvents(200, 20, 6);
  world_.Start();
  ExpectExact();
}

TEST_P(AggregationLoopTest, ReadyOnlyOnceItCanServe) {
  world_.AppendEvents(300, 10, 7);
  auto* p = world_.Start();
  EXPECT_FALSE(p->loop->ready());
  ASSERT_TRUE(world_.RunUntil([&] { return p->loop->ready(); })) << "never became ready";
  if (GetParam() == Mode::kEmbedded) {
    // Embedded mode is ready only once the backlog found at start is
    // counted, so that a client never reads counts from before a restart.
    EXPECT_EQ(world_.Differences(), "");
  }
  EXPECT_TRUE(p->loop->Health().ok());
}

TEST_P(AggregationLoopTest, ConsumptionPausesWhileTheGateIsClosedAndResumes) {
  Status gate = Status::NoSpace("the disk is nearly full");
  AggregationOptions options = SmallCommits();
  options.may_consume = [&gate] { return gate; };
  ScopedTempDir dir;
  AggregationWorld world(GetParam(), dir.path(), options);
  auto* p = world.Start();
  world.AppendEvents(200, 10, 41);
  for (int i = 0; i < 20; ++i) world.StepAll();
  EXPECT_EQ(world.log()->Committed(kWorldGroup, kEventsTopic).size(), 0u)
      << "nothing may be consumed (or committed) while paused";
  EXPECT_EQ(p->loop->Health().code(), Code::kNoSpace);
  gate = Status::Ok();
  ASSERT_TRUE(world.RunUntilCaughtUp());
  EXPECT_EQ(world.Differences(), "");
  EXPECT_TRUE(p->loop->Health().ok());
}

TEST_P(AggregationLoopTest, AJoinWithoutTheEventsTopicFails) {
  auto* p = world_.Start();
  std::unique_ptr<GroupLog> group;
  EXPECT_EQ(world_.log()->NewGroupLog("g", "no.such.topic", true, &group).code(), Code::kNotFound);
  (void)p;
}

// Embedded mode: a data dir of an earlier version has the state and its
// checkpoints but no committed offsets in the log. The state is the truth:
// counting resumes from its checkpoints, not from the log's start.
TEST(EmbeddedUpgradeTest, ResumesFromTheStatesCheckpointsWithoutGroupOffsets) {
  ScopedTempDir dir;
  AggregationWorld world(Mode::kEmbedded, dir.path(), SmallCommits());
  world.AppendEvents(300, 20, 51);
  auto* p = world.Start();
  ASSERT_TRUE(world.RunUntilCaughtUp());
  ASSERT_EQ(world.Differences(), "");
  world.Stop(p);
  // Drop the group's committed offsets, as an earlier version never wrote them.
  {
    KvStoreOptions options = SmallStoreOptions(dir.path() + "/embedded", {});
    for (auto& c : CounterStore::Columns(std::chrono::hours(24))) options.columns.push_back(c);
    LocalLogOptions log_options;
    log_options.topics = {{std::string(kEventsTopic), kWorldPartitions},
                          {std::string(kDeadLetterTopic), 1}};
    for (auto& c : LocalLog::Columns(log_options)) options.columns.push_back(c);
    std::unique_ptr<KvStore> store;
    ASSERT_TRUE(KvStore::Open(options, &store).ok());
    Column meta = store->GetColumn("log.meta");
    KvWriteBatch batch;
    batch.DeleteRange(meta, "committed/", "committed0");
    ASSERT_TRUE(store->Write(&batch).ok());
  }
  world.AppendEvents(100, 20, 52);
  world.Start();
  ASSERT_TRUE(world.RunUntilCaughtUp());
  EXPECT_EQ(world.Differences(), "") << "events before the upgrade counted again?";
}

// Cluster mode: a member that stops polling loses its partitions to
// another one (session timeout). It drops the uncommitted work of those
// and rewinds the rest, so that its next commit holds only partitions it
// still owns: nothing is fenced, nothing counted twice.
TEST(ClusterLostPartitionsTest, AMemberThatLostPartitionsCommitsTheRestWithoutBeingFenced) {
  ScopedTempDir dir;
  AggregationOptions options = SmallCommits();
  options.commit_interval = std::chrono::hours(1);  // commit only when told
  options.commit_max_records = 1000000;
  AggregationWorld world(Mode::kCluster, dir.path(), options);
  auto* a = world.Start("a");
  world.AppendEvents(200, 20, 61);
  for (int i = 0; i < 20; ++i) a->loop->Step();  // applied, not committed
  ASSERT_EQ(a->loop->owned().size(), 4u);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // past the session timeout
  auto* b = world.Start("b");
  b->loop->Step();  // b's join expires a and takes everything
  ASSERT_EQ(b->loop->owned().size(), 4u);
  a->loop->Step();  // a learns it lost everything
  EXPECT_TRUE(a->loop->owned().empty());
  world.Stop(b);  // the partitions go back to a
  a->loop->Step();
  ASSERT_EQ(a->loop->owned().size(), 4u);
  ASSERT_TRUE(a->loop->CommitNow().ok());
  ASSERT_TRUE(world.RunUntil([&] {
    a->loop->CommitNow().PermitUnchecked();
    std::map<int32_t, int64_t> committed = world.log()->Committed(kWorldGroup, kEventsTopic);
    for (int32_t p = 0; p < kWorldPartitions; ++p) {
      if (committed[p] != world.log()->EndOffset(kEventsTopic, p)) return false;
    }
    return true;
  }));
  EXPECT_EQ(world.Differences(), "");
  EXPECT_THAT(a->metrics.Serialize(), HasSubstr("catchall_aggregate_commit_failures_total 0\n"))
      << "a commit was fenced: lost partitions' work was still pending";
}

// After a broker outage an aggregator's session expired and it lost every
// partition, yet /readyz said ready for the ~11 s until the group gave them
// back (an operations probe, twelfth session). A member that lost all of
// its partitions is ready again as a new member is.
TEST(ClusterLostPartitionsTest, AMemberThatLostAllItsPartitionsIsNotReadyUntilItHoldsThemAgain) {
  ScopedTempDir dir;
  AggregationOptions options = SmallCommits();
  options.ready_without_assignment = std::chrono::hours(1);  // only partitions make it ready
  AggregationWorld world(Mode::kCluster, dir.path(), options);
  auto* a = world.Start("a");
  world.AppendEvents(200, 20, 61);
  ASSERT_TRUE(world.RunUntil([&] { return a->loop->ready(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // past the session timeout
  auto* b = world.Start("b");
  b->loop->Step();  // b's join expires a and takes everything
  a->loop->Step();  // a learns it lost everything
  ASSERT_TRUE(a->loop->owned().empty());
  EXPECT_FALSE(a->loop->ready()) << "ready while it owns no partition after losing them";
  EXPECT_THAT(a->metrics.Serialize(), HasSubstr("catchall_aggregate_ready 0\n"));
  world.Stop(b);  // the partitions go back to a
  ASSERT_TRUE(world.RunUntil([&] { return a->loop->ready(); }))
      << "not ready again once it holds its partitions";
  EXPECT_EQ(a->loop->owned().size(), 4u);
}

// The workers of one process share a store. A worker given partitions that
// another worker of the process still holds (evicted unawares, busy in a
// restore) restored and counted them while the other still wrote them, and
// the other's late writes overwrote its counters (a review). It now neither
// restores nor counts them until they are let go, then counts exactly.
TEST(ClusterWorkersTest, AWorkerTakesPartitionsOnlyOnceAnotherWorkerLetsThemGo) {
  ScopedTempDir dir;
  PartitionOwners owners(nullptr, std::chrono::milliseconds(20));
  ASSERT_TRUE(owners.Taking(9, {2}).ok());  // worker 9 of this process still holds partition 2
  AggregationOptions options = SmallCommits();
  options.ownership = &owners;
  AggregationWorld world(Mode::kCluster, dir.path(), options);
  auto* a = world.Start("a");
  world.AppendEvents(200, 20, 71);
  for (int i = 0; i < 30; ++i) a->loop->Step();
  EXPECT_TRUE(a->loop->owned().empty());
  EXPECT_FALSE(a->loop->ready());
  EXPECT_THAT(a->loop->Health().message(), HasSubstr("partition 2 was given to worker 0"));
  EXPECT_FALSE(world.CaughtUp());
  owners.Released(9, {2});
  ASSERT_TRUE(world.RunUntilCaughtUp());
  EXPECT_EQ(world.Differences(), "");
  EXPECT_EQ(a->loop->owned().size(), 4u);
}

// A member whose commit is fenced drops its work and rejoins with a new
// consumer. It said ready at once, before the group gave it anything back
// (the same gap as after losing all partitions, found reading the code in
// the twelfth session): a rolling restart that waits for /readyz would
// move on while its partitions were uncounted.
TEST(ClusterRejoinTest, AMemberThatRejoinsIsNotReadyUntilItHoldsPartitionsAgain) {
  ScopedTempDir dir;
  AggregationOptions options = SmallCommits();
  options.ready_without_assignment = std::chrono::hours(1);  // only partitions make it ready
  AggregationWorld world(Mode::kCluster, dir.path(), options);
  auto* a = world.Start("a");
  auto* b = world.Start("b");
  world.AppendEvents(200, 20, 62);
  ASSERT_TRUE(world.RunUntil(
      [&] { return a->loop->ready() && b->loop->ready() && a->loop->owned().size() == 2; }));
  a->injector.Arm(FaultPoint::kCommit, 1, FaultTiming::kBefore, FaultEffect::kError,
                  Status::FailedPrecondition("injected fencing"));
  world.AppendEvents(100, 20, 63);
  // Only a steps: b keeps the partitions a will be given after its rejoin
  // until b's own next poll lets go of them.
  for (int i = 0; i < 20 && a->injector.fired() == 0; ++i) a->loop->Step();
  ASSERT_EQ(a->injector.fired(), 1) << "the fenced commit was never reached";
  EXPECT_FALSE(a->loop->ready()) << "ready right after dropping its work";
  a->loop->Step();  // joins again; what it will own is still b's
  ASSERT_TRUE(a->loop->owned().empty());
  EXPECT_FALSE(a->loop->ready()) << "ready after a rejoin while it owns no partition";
  // Why it rejoined stays its health until it is ready again (a review:
  // cleared at the join, a failure that recurs showed only between
  // rejoins).
  EXPECT_THAT(a->loop->Health().ToString(), HasSubstr("injected fencing"));
  EXPECT_THAT(a->metrics.Serialize(), HasSubstr("catchall_aggregate_ready 0\n"));
  ASSERT_TRUE(world.RunUntil([&] { return a->loop->ready(); }))
      << "not ready again once it holds partitions";
  EXPECT_EQ(a->loop->owned().size(), 2u);
  ASSERT_TRUE(world.RunUntilCaughtUp());
  EXPECT_EQ(world.Differences(), "");
  EXPECT_TRUE(world.RunUntil([&] { return a->loop->Health().ok(); }))
      << "the rejoin's failure outlived a ready member: " << a->loop->Health().ToString();
}

// A member without partitions is ready after ready_without_assignment
// (more members than partitions). The wait must not run while no broker
// answers: a member that lost its partitions in a long outage was ready,
// owning none, the moment a broker answered again, before the group gave
// it anything back (found by a review of the loop, thirteenth session).
TEST(ClusterReadinessTest, TheWaitWithoutPartitionsStartsWhenTheLogIsReachable) {
  ScopedTempDir dir;
  AggregationOptions options = SmallCommits();
  // Far longer than a step (a 50 ms poll), so that "not ready at once"
  // cannot pass or fail by timing.
  options.ready_without_assignment = std::chrono::seconds(1);
  AggregationWorld world(Mode::kCluster, dir.path(), options);
  std::vector<AggregationWorld::Process*> holders;
  for (const char* m : {"a", "b", "c", "d"}) holders.push_back(world.Start(m));
  ASSERT_TRUE(world.RunUntil([&] {
    return std::all_of(holders.begin(), holders.end(),
                       [](auto* p) { return p->loop->owned().size() == 1; });
  }));
  auto* e = world.Start("e");  // a fifth member of a 4-partition topic
  e->group->SetUnreachable(Status::Unavailable("no Kafka broker is reachable"));
  auto outage_end = std::chrono::steady_clock::now() + 2 * options.ready_without_assignment;
  while (std::chrono::steady_clock::now() < outage_end) world.StepAll();
  EXPECT_TRUE(e->loop->owned().empty());
  EXPECT_FALSE(e->loop->ready()) << "ready while no broker answers";
  e->group->SetUnreachable(std::nullopt);
  e->loop->Step();
  EXPECT_FALSE(e->loop->ready()) << "ready at once when the broker answered again";
  ASSERT_TRUE(world.RunUntil([&] { return e->loop->ready(); })) << "never ready without partitions";
  EXPECT_TRUE(e->loop->owned().empty());
}

INSTANTIATE_TEST_SUITE_P(Modes, AggregationLoopTest,
                         ::testing::Values(Mode::kEmbedded, Mode::kCluster),
                         [](const auto& test) { return ModeName(test.param); });

// Cluster mode only: partitions move between aggregators, and the state and
// the ids move with them through the changelog and the ids log.
class ClusterAggregationTest : public ::testing::Test {
 protected:
  ClusterAggregationTest() : world_(Mode::kCluster, dir_.path(), SmallCommits()) {}
  ScopedTempDir dir_;
  AggregationWorld world_;
};

TEST_F(ClusterAggregationTest, ASecondAggregatorJoinsAndLeavesMidStreamWithExactCounts) {
  world_.Start("a");
  world_.AppendEvents(300, 30, 8);
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  auto* b = world_.Start("b");
  world_.AppendEvents(300, 30, 9);
  ASSERT_TRUE(world_.RunUntil([&] { return b->loop->owned().size() == 2; }))
      << "the newcomer never took over half the partitions";
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  EXPECT_EQ(world_.Differences(), "");
  world_.Stop(b);  // its partitions go back to a, whose cache of them is stale
  world_.AppendEvents(300, 30, 10);
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  EXPECT_EQ(world_.Differences(), "");
}

TEST_F(ClusterAggregationTest, ALostStateIsRestoredFromTheChangelog) {
  auto* a = world_.Start("a");
  world_.AppendEvents(400, 25, 11);
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  world_.Kill(a);
  // A new machine with an empty store takes over everything.
  auto* b = world_.Start("b");
  world_.AppendEvents(200, 25, 12);
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  EXPECT_EQ(world_.Differences(), "");
  EXPECT_THAT(b->metrics.Serialize(), HasSubstr("catchall_aggregate_restored_records_total"));
}

// The changelog and the ids log may have more partitions than the events
// topic; their records are routed by the events topic's count, and a
// restore checks them against that count, not the changelog's (a review).
TEST(ClusterAggregationWiderLogsTest, AStateIsRestoredFromLogsWithMorePartitions) {
  ScopedTempDir dir;
  AggregationWorld world(Mode::kCluster, dir.path(), SmallCommits(), kWorldPartitions + 2);
  auto* a = world.Start("a");
  world.AppendEvents(400, 25, 31);
  ASSERT_TRUE(world.RunUntilCaughtUp());
  world.Kill(a);
  auto* b = world.Start("b");       // an empty store: restores everything
  world.AppendEvents(400, 25, 31);  // the same ids again: retries, counted once
  ASSERT_TRUE(world.RunUntilCaughtUp());
  EXPECT_EQ(world.Differences(), "");
  EXPECT_THAT(b->metrics.Serialize(),
              HasSubstr("catchall_log_records_skipped_total{reader=\"restore\"} 0\n"));
}

// Records of the changelog and the ids log that do not decode (a tool wrote
// them by mistake): a restore skips them whole, counts them in a metric,
// and restores everything else exactly, the ids included.
TEST_F(ClusterAggregationTest, UndecodableChangelogAndIdsRecordsAreSkippedOnRestoreAndCounted) {
  auto* a = world_.Start("a");
  for (int d = 0; d < 20; ++d) {
    world_.AppendEvent("keyed" + std::to_string(d) + ".example", false, "key-" + std::to_string(d));
  }
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  world_.AppendTo(kStatusTopic, "keyed3.example", "not json");
  world_.AppendTo(kIdsTopic, std::string(kIdsBatchKey), R"({"ids":[["keyed4.example"]]})");
  world_.AppendTo(kIdsTopic, "keyed5.example", "{");
  world_.Kill(a);
  auto* b = world_.Start("b");    // an empty store: restores all four partitions
  for (int d = 0; d < 20; ++d) {  // retries: duplicates only if the ids were restored
    world_.AppendEvent("keyed" + std::to_string(d) + ".example", false, "key-" + std::to_string(d));
  }
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  EXPECT_EQ(world_.Differences(), "");
  for (int d = 0; d < 20; ++d) {
    EXPECT_EQ(b->counters->Get("keyed" + std::to_string(d) + ".example").value(),
              (DomainCounts{1, 0}))
        << "keyed" << d;
  }
  EXPECT_THAT(b->metrics.Serialize(),
              HasSubstr("catchall_log_records_skipped_total{reader=\"restore\"} 3\n"));
}

// Checkpoint records that no aggregator wrote (a tool, by mistake): one
// naming another partition than its own, one vouching for more than the
// group ever committed. Taken, either could end a restore before the
// previous owner's last transaction was readable on Kafka, and a probe lost
// the events committed after it; a restore skips both and counts them.
TEST_F(ClusterAggregationTest, CheckpointsNoAggregatorCouldHaveWrittenAreSkippedOnRestore) {
  auto* a = world_.Start("a");
  world_.AppendEvents(200, 20, 21);
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  const int32_t here = PartitionForKey(kChangelogCheckpointKey, kWorldPartitions);
  std::string elsewhere;
  AppendChangelogCheckpointJson((here + 1) % kWorldPartitions, 0, &elsewhere);
  std::string ahead;
  AppendChangelogCheckpointJson(here, 999999, &ahead);
  world_.AppendTo(kStatusTopic, std::string(kChangelogCheckpointKey), elsewhere);
  world_.AppendTo(kStatusTopic, std::string(kChangelogCheckpointKey), ahead);
  world_.Kill(a);
  // The restore's summary line counts them with the other skipped records
  // (it left skipped checkpoints out). The sink goes before b starts and
  // after it stops (a logger's sinks are not guarded), its stream living
  // as long as the process in case an assertion returns early.
  static std::ostringstream* log = new std::ostringstream;
  log->str("");
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*log);
  spdlog::default_logger()->sinks().push_back(sink);
  absl::Cleanup remove_sink = [] { spdlog::default_logger()->sinks().pop_back(); };
  auto* b = world_.Start("b");  // an empty store: restores every partition
  world_.AppendEvents(100, 20, 22);
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  EXPECT_EQ(world_.Differences(), "");
  EXPECT_THAT(b->metrics.Serialize(),
              HasSubstr("catchall_log_records_skipped_total{reader=\"restore\"} 2\n"));
  world_.Kill(b);
  std::string lines = log->str();
  size_t line = lines.find(fmt::format("partition {} restored in", here));
  ASSERT_NE(line, std::string::npos) << lines;
  EXPECT_THAT(lines.substr(line, lines.find('\n', line) - line), HasSubstr("(2 records skipped)"));
}

// The failover the issue describes: keyed events counted, the owner killed,
// the same keys retried through the survivor and counted once; then the
// partitions move back and a retry again counts once.
TEST_F(ClusterAggregationTest, IdsSurviveAFailoverAndAMoveBack) {
  auto* a = world_.Start("a");
  auto* b = world_.Start("b");
  ASSERT_TRUE(world_.RunUntil(
      [&] { return a->loop->owned().size() == 2 && b->loop->owned().size() == 2; }));
  for (int d = 0; d < 48; ++d) {
    for (int i = 0; i < 5; ++i) {
      world_.AppendEvent("keyed" + std::to_string(d) + ".example", false,
                         "key-" + std::to_string(d) + "-" + std::to_string(i));
    }
  }
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  ASSERT_EQ(world_.Differences(), "");
  std::vector<int32_t> moved = a->loop->owned();
  world_.Kill(a);
  ASSERT_TRUE(world_.RunUntil([&] { return b->loop->owned().size() == 4; }));
  auto retry_all = [&] {
    for (int d = 0; d < 48; ++d) {
      for (int i = 0; i < 5; ++i) {
        world_.AppendEvent("keyed" + std::to_string(d) + ".example", false,
                           "key-" + std::to_string(d) + "-" + std::to_string(i));
      }
    }
  };
  retry_all();  // every retry is a duplicate: nothing may change
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  EXPECT_EQ(world_.Differences(), "");
  for (int d = 0; d < 48; ++d) {
    EXPECT_EQ(world_.Visible()["keyed" + std::to_string(d) + ".example"], (DomainCounts{5, 0}));
  }
  // a comes back with its old store; b leaves; a restores what it missed.
  auto* back = world_.Start("a");
  world_.Stop(b);
  retry_all();
  ASSERT_TRUE(world_.RunUntilCaughtUp());
  EXPECT_EQ(back->loop->owned().size(), 4u);
  EXPECT_EQ(world_.Differences(), "");
  (void)moved;
}

// The ids log as versions before batch records wrote it (one record per
// id, aggregate.ids_log_batches=false, for rolling upgrades): a failover
// restores the ids from it, and retries still count once.
TEST(ClusterAggregationOneIdRecordsTest, IdsWrittenOneRecordEachSurviveAFailover) {
  ScopedTempDir dir;
  AggregationOptions options = SmallCommits();
  options.ids_log_batches = false;
  AggregationWorld world(Mode::kCluster, dir.path(), options);
  auto* a = world.Start("a");
  auto append_keyed = [&] {
    for (int d = 0; d < 24; ++d) {
      for (int i = 0; i < 3; ++i) {
        world.AppendEvent("one" + std::to_string(d) + ".example", i == 2,
                          "k-" + std::to_string(d) + "-" + std::to_string(i));
      }
    }
  };
  append_keyed();
  ASSERT_TRUE(world.RunUntilCaughtUp());
  world.Kill(a);
  world.Start("b");  // an empty store: everything is restored
  append_keyed();    // retries only
  ASSERT_TRUE(world.RunUntilCaughtUp());
  EXPECT_EQ(world.Differences(), "");
  EXPECT_EQ(world.Visible()["one0.example"], (DomainCounts{2, 1}));
}

}  // namespace
}  // namespace catchall::test
