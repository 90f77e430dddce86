// Consumer groups and transactions of the local log: the consumer and
// committer sides of the log seam, as embedded mode and the aggregation
// tests use them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/local_log.h"
#include "engine/metrics.h"
#include "engine/partitioner.h"
#include "test_util.h"

namespace catchall {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace std::chrono_literals;

constexpr std::string_view kInput = "in";
constexpr std::string_view kOutput = "out";
constexpr int32_t kPartitions = 4;

// Records what the group did to a member, and gives start offsets.
class Listener : public RebalanceListener {
 public:
  std::map<int32_t, int64_t> OnAssigned(const std::vector<int32_t>& partitions) override {
    assigned.insert(assigned.end(), partitions.begin(), partitions.end());
    owned.insert(partitions.begin(), partitions.end());
    std::map<int32_t, int64_t> start;
    for (int32_t p : partitions) {
      if (start_at.count(p)) start[p] = start_at[p];
    }
    return start;
  }
  void OnRevoked(const std::vector<int32_t>& partitions) override {
    revoked.insert(revoked.end(), partitions.begin(), partitions.end());
    for (int32_t p : partitions) owned.erase(p);
    if (on_revoked) on_revoked();
  }
  void OnLost(const std::vector<int32_t>& partitions) override {
    lost.insert(lost.end(), partitions.begin(), partitions.end());
    for (int32_t p : partitions) owned.erase(p);
  }

  std::vector<int32_t> assigned, revoked, lost;
  std::set<int32_t> owned;
  std::map<int32_t, int64_t> start_at;
  std::function<void()> on_revoked;
};

class LocalGroupTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(10s); }

  void Open(std::chrono::milliseconds session_timeout, bool sync_writes = false) {
    log_.reset();
    store_.reset();
    options_.topics = {{std::string(kInput), kPartitions}, {std::string(kOutput), kPartitions}};
    options_.session_timeout = session_timeout;
    KvStoreOptions kv;
    kv.path = dir_.path() + "/db";
    kv.columns = LocalLog::Columns(options_);
    kv.columns.push_back({"state", ColumnKind::kPlain, {}});
    kv.block_cache_bytes = 8 << 20;
    kv.write_buffer_bytes = 4 << 20;
    kv.sync_writes = sync_writes;
    ASSERT_TRUE(KvStore::Open(kv, &store_).ok());
    ASSERT_TRUE(LocalLog::Open(options_, store_.get(), &metrics_, &log_).ok());
  }

  std::unique_ptr<GroupLog> Group(bool state_in_transaction = false) {
    std::unique_ptr<GroupLog> group;
    EXPECT_TRUE(log_->NewGroupLog("g", kInput, state_in_transaction, &group).ok());
    return group;
  }

  void Append(int n) {
    std::vector<LogRecord> records;
    records.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) records.push_back({"key-" + std::to_string(i), "v"});
    std::promise<Status> done;
    ASSERT_TRUE(
        log_->Appender(kInput)->Append(records, [&](const Status& s) { done.set_value(s); }).ok());
    ASSERT_TRUE(done.get_future().get().ok());
  }

  test::ScopedTempDir dir_;
  Metrics metrics_;
  LocalLogOptions options_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<LocalLog> log_;
};

struct Member {
  Listener listener;
  std::unique_ptr<LogConsumer> consumer;
  std::unique_ptr<LogCommitter> committer;
  RecordBatch batch;

  Member(GroupLog* group) {  // NOLINT(google-explicit-constructor)
    EXPECT_TRUE(group->Join(&listener, &consumer, &committer).ok());
  }
  void Poll() {
    batch.Clear();
    EXPECT_TRUE(consumer->Poll(0ms, 100000, &batch).ok());
  }
};

TEST_F(LocalGroupTest, ALoneMemberOwnsEveryPartitionFromTheBeginning) {
  Append(40);
  auto group = Group();
  Member m(group.get());
  m.Poll();
  EXPECT_THAT(m.listener.assigned, ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(m.batch.records().size(), 40u);
  std::map<int32_t, int64_t> committed;
  ASSERT_TRUE(m.consumer->Committed({0, 1}, &committed).ok());
  EXPECT_EQ(committed[0], kOffsetBeginning);
  EXPECT_EQ(m.consumer->Lag({{0, 0}}), log_->EndOffset(kInput, 0));
}

// catchall_log_bytes_total counts every append's bytes, also of appends
// written in the same round as a transaction: those after it were counted
// as 0 bytes (found by a review, thirteenth session).
TEST_F(LocalGroupTest, EveryAppendsBytesAreCountedBesideTransactions) {
  // Synced writes keep the writer thread busy, so that the queue it takes
  // holds transactions and appends together.
  Open(10s, /*sync_writes=*/true);
  auto group = Group();
  Member m(group.get());
  m.Poll();
  constexpr int kAppends = 1000;
  std::atomic<int> answered{0};
  std::thread appender([&] {
    for (int i = 0; i < kAppends; ++i) {
      // 5 + 5 + 8 bytes each (key, value, their lengths).
      while (!log_->Appender(kInput)
                  ->Append({{"key-1", "value"}}, [&](const Status&) { ++answered; })
                  .ok()) {
        std::this_thread::sleep_for(1ms);  // the write queue is full
      }
    }
  });
  bool committed = true;
  while (committed && answered.load() < kAppends) {
    LogTransaction txn;
    txn.offsets = {{0, 0}};
    committed = m.committer->Commit(&txn).ok();
  }
  appender.join();
  ASSERT_TRUE(committed);
  EXPECT_THAT(metrics_.Serialize(),
              HasSubstr("catchall_log_bytes_total " + std::to_string(kAppends * 18) + "\n"));
}

TEST_F(LocalGroupTest, ACommitWritesRecordsOffsetsAndStateAtOnce) {
  Append(20);
  auto group = Group(/*state_in_transaction=*/true);
  Member m(group.get());
  m.Poll();
  ASSERT_TRUE(m.committer->state_in_transaction());
  KvWriteBatch state;
  state.Put(store_->GetColumn("state"), "counter", "42");
  LogTransaction txn;
  txn.records = {{std::string(kOutput), 2, "k", "first"}, {std::string(kOutput), 2, "k", "second"}};
  txn.offsets = {{0, 3}, {1, 4}};
  txn.state = &state;
  Status s = m.committer->Commit(&txn);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(log_->Committed("g", kInput), (std::map<int32_t, int64_t>{{0, 3}, {1, 4}}));
  std::string value;
  ASSERT_TRUE(store_->Get(store_->GetColumn("state"), "counter", &value).ok());
  EXPECT_EQ(value, "42");
  EXPECT_EQ(log_->EndOffset(kOutput, 2), 2);
  EXPECT_EQ(m.committer->CommittedEnd(kOutput, 2), 2);
  EXPECT_EQ(m.committer->CommittedEnd(kOutput, 1), -1);
  // Committed offsets survive a restart of the log.
  m.consumer.reset();
  Open(10s);
  EXPECT_EQ(log_->Committed("g", kInput), (std::map<int32_t, int64_t>{{0, 3}, {1, 4}}));
}

// Commits `offsets` of kInput under group `name` with a member of its own.
void CommitAs(LocalLog* log, const std::string& name, std::map<int32_t, int64_t> offsets) {
  std::unique_ptr<GroupLog> group;
  ASSERT_TRUE(log->NewGroupLog(name, kInput, false, &group).ok());
  Member m(group.get());
  m.Poll();
  LogTransaction txn;
  txn.offsets = std::move(offsets);
  ASSERT_TRUE(m.committer->Commit(&txn).ok());
}

TEST_F(LocalGroupTest, MaxCommittedIsTheHighestOffsetOfAnyGroup) {
  Append(20);
  CommitAs(log_.get(), "a", {{0, 1}, {1, 4}});
  CommitAs(log_.get(), "b", {{0, 3}, {2, 2}});
  EXPECT_EQ(log_->MaxCommitted(kInput), (std::map<int32_t, int64_t>{{0, 3}, {1, 4}, {2, 2}}));
  EXPECT_TRUE(log_->MaxCommitted(kOutput).empty());
}

// A group nobody consumes as any more holds the retention floor where it
// left it. Resetting makes one group the only one, at the offsets given:
// the floor follows them, for good (after a reopen too). The group kept
// may have had no offsets at all (serve ran under another name only) or
// stale ones (it ran under this name first, then another).
class LocalGroupResetTest : public LocalGroupTest, public ::testing::WithParamInterface<bool> {};

TEST_P(LocalGroupResetTest, ResettingTheGroupsMovesTheRetentionFloorToTheOffsetsGiven) {
  const bool kept_was_stale = GetParam();
  Append(20);
  const int32_t p = 0;
  const int64_t end = log_->EndOffset(kInput, p);
  ASSERT_GT(end, 1);
  if (kept_was_stale) CommitAs(log_.get(), "g", {{p, 1}});
  CommitAs(log_.get(), "old", {{p, 1}});
  Open(10s);  // as serve starts: no group log open yet
  auto later = std::chrono::system_clock::now() + 365 * 24h;
  ASSERT_TRUE(log_->EnforceRetention(later).ok());
  EXPECT_LE(log_->StartOffset(kInput, p), 1) << "offset 1 is still needed";

  Result<std::vector<std::string>> dropped = log_->ResetGroups("g", kInput, {{p, end}});
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_THAT(*dropped, ElementsAre("old"));
  EXPECT_THAT(log_->Committed("old", kInput), IsEmpty());
  EXPECT_EQ(log_->Committed("g", kInput), (std::map<int32_t, int64_t>{{p, end}}));
  // Everything of the partition is consumed by "g": the newest batch stays.
  Append(4);
  ASSERT_TRUE(log_->EnforceRetention(later).ok());
  EXPECT_GT(log_->StartOffset(kInput, p), 1);

  Open(10s);
  EXPECT_THAT(log_->Committed("old", kInput), IsEmpty()) << "deleted from the store too";
  EXPECT_EQ(log_->Committed("g", kInput), (std::map<int32_t, int64_t>{{p, end}}));
}

INSTANTIATE_TEST_SUITE_P(KeptGroup, LocalGroupResetTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "HadStaleOffsets" : "HadNone";
                         });

TEST_F(LocalGroupTest, GroupsAreResetOnlyBeforeAnyGroupLogOpens) {
  auto group = Group();
  EXPECT_EQ(log_->ResetGroups("g", kInput, {}).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(log_->ResetGroups("g", "no-such-topic", {}).status().code(), Code::kNotFound);
}

TEST_F(LocalGroupTest, WithoutStateInTransactionAStateBatchIsRefused) {
  auto group = Group(/*state_in_transaction=*/false);
  Member m(group.get());
  m.Poll();
  KvWriteBatch state;
  LogTransaction txn;
  txn.state = &state;
  EXPECT_EQ(m.committer->Commit(&txn).code(), Code::kInvalidArgument);
}

TEST_F(LocalGroupTest, CommittedOffsetsAreTheRetentionFloorAndRelieveBackpressure) {
  log_.reset();
  store_.reset();
  options_.max_unconsumed_records = 5;
  options_.topics = {{std::string(kInput), 1}, {std::string(kOutput), 1}};
  KvStoreOptions kv;
  kv.path = dir_.path() + "/db2";
  kv.columns = LocalLog::Columns(options_);
  ASSERT_TRUE(KvStore::Open(kv, &store_).ok());
  ASSERT_TRUE(LocalLog::Open(options_, store_.get(), nullptr, &log_).ok());
  Append(6);
  EXPECT_EQ(log_->Appender(kInput)->Append({{"x", "y"}}, [](const Status&) {}).code(),
            Code::kUnavailable);
  auto group = Group();
  Member m(group.get());
  m.Poll();
  LogTransaction txn;
  txn.offsets = {{0, 6}};
  ASSERT_TRUE(m.committer->Commit(&txn).ok());
  Append(1);  // accepted again: the consumer caught up
}

TEST_F(LocalGroupTest, ASecondMemberTakesHalfAfterTheFirstRevokesIt) {
  Append(40);
  auto group = Group();
  Member a(group.get());
  a.Poll();
  ASSERT_EQ(a.listener.owned.size(), 4u);
  Member b(group.get());
  b.Poll();  // nothing is free yet: a has not let go
  EXPECT_THAT(b.listener.assigned, IsEmpty());
  // a commits what it has when it gives partitions up.
  bool committed_on_revoke = false;
  a.listener.on_revoked = [&] {
    LogTransaction txn;
    for (int32_t p : a.listener.revoked) txn.offsets[p] = 1;
    committed_on_revoke = a.committer->Commit(&txn).ok();
  };
  a.Poll();
  EXPECT_TRUE(committed_on_revoke);
  EXPECT_EQ(a.listener.revoked.size(), 2u);
  b.Poll();
  EXPECT_EQ(b.listener.owned.size(), 2u);
  for (int32_t p : b.listener.owned) EXPECT_EQ(a.listener.owned.count(p), 0u);
  for (const ConsumedRecord& r : b.batch.records()) {
    EXPECT_TRUE(b.listener.owned.count(r.partition));
  }
  // b starts the partitions it took at a's committed offsets.
  for (const ConsumedRecord& r : b.batch.records()) EXPECT_GE(r.offset, 1);
}

TEST_F(LocalGroupTest, AMemberThatStopsPollingIsFencedAndLearnsItLostItsPartitions) {
  Open(100ms);
  Append(10);
  auto group = Group();
  Member zombie(group.get());
  zombie.Poll();
  ASSERT_EQ(zombie.listener.owned.size(), 4u);
  std::this_thread::sleep_for(300ms);  // past the session timeout
  Member b(group.get());
  b.Poll();
  EXPECT_EQ(b.listener.owned.size(), 4u) << "the silent member's partitions moved";
  LogTransaction txn;
  txn.offsets = {{0, 1}};
  txn.records = {{std::string(kOutput), 0, "k", "from the zombie"}};
  Status s = zombie.committer->Commit(&txn);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("fenced"));
  EXPECT_EQ(log_->EndOffset(kOutput, 0), 0) << "nothing of a fenced transaction is written";
  EXPECT_TRUE(log_->Committed("g", kInput).empty());
  zombie.Poll();
  EXPECT_EQ(zombie.listener.lost.size(), 4u);
}

TEST_F(LocalGroupTest, AnAbandonedMemberFreesItsPartitionsWithoutCallbacks) {
  auto group = Group();
  auto a = std::make_unique<Member>(group.get());
  a->Poll();
  Listener* listener = &a->listener;
  ASSERT_EQ(listener->owned.size(), 4u);
  a->consumer.reset();  // as by a crash
  Member b(group.get());
  b.Poll();
  EXPECT_EQ(b.listener.owned.size(), 4u);
  EXPECT_THAT(listener->revoked, IsEmpty());
}

TEST_F(LocalGroupTest, CloseRevokesThroughTheListenerAndLeaves) {
  auto group = Group();
  Member a(group.get());
  a.Poll();
  a.consumer->Close();
  EXPECT_EQ(a.listener.revoked.size(), 4u);
  Member b(group.get());
  b.Poll();
  EXPECT_EQ(b.listener.owned.size(), 4u);
}

TEST_F(LocalGroupTest, SeekRewindsAnOwnedPartitionOnly) {
  Append(40);
  auto group = Group();
  Member m(group.get());
  m.listener.start_at = {{0, 1000}, {1, 1000}, {2, 1000}, {3, 1000}};  // past the end
  m.Poll();
  EXPECT_TRUE(m.batch.records().empty());
  ASSERT_TRUE(m.consumer->Seek(PartitionForKey("key-1", kPartitions), 0).ok());
  m.Poll();
  EXPECT_FALSE(m.batch.records().empty());
  EXPECT_EQ(m.consumer->Seek(kPartitions + 1, 0).code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace catchall
