#include "state/counter_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/changelog.h"
#include "engine/partitioner.h"
#include "test_util.h"

namespace catchall {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class CounterStoreTest : public ::testing::Test {
 protected:
  CounterStoreTest() { Open(); }

  void Open() {
    counters_.reset();
    other_.reset();
    store_.reset();
    Status s = KvStore::Open(
        test::SmallStoreOptions(dir_.path() + "/db", CounterStore::Columns(24h)), &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    counters_ = std::make_unique<CounterStore>(store_.get(), "catchall.events");
    other_ = std::make_unique<CounterStore>(store_.get(), "other.topic");
  }

  DomainCounts Get(std::string_view domain) {
    Result<DomainCounts> r = counters_->Get(domain);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : DomainCounts{999999, 999999};
  }

  // Applies a staged batch.
  void Write(KvWriteBatch* batch) {
    Status s = counters_->Write(batch);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void AddAll(const CountsByDomain& counts) {
    KvWriteBatch batch;
    for (const auto& [domain, c] : counts) counters_->AddCounts(domain, c, &batch);
    Write(&batch);
  }
  StateCheckpoint Checkpoint(const CounterStore& store, int32_t partition) {
    Result<StateCheckpoint> c = store.ReadCheckpoint(partition);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : StateCheckpoint{-99, -99, -99};
  }

  test::ScopedTempDir dir_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<CounterStore> counters_;
  std::unique_ptr<CounterStore> other_;  // same store, another source topic
};

// Embedded mode: the checkpoints and the group's offsets are written
// together, so a difference means damaged files (a black-box probe cut the
// MANIFEST, and the restarted server counted every event a second time).
TEST_F(CounterStoreTest, CheckAgainstLogRefusesCheckpointsTheLogDisagreesWith) {
  KvWriteBatch batch;
  counters_->PutCheckpoint(0, StateCheckpoint{1907, -1, -1}, &batch);
  counters_->PutCheckpoint(1, StateCheckpoint{5, -1, -1}, &batch);
  Write(&batch);
  const std::map<int32_t, int64_t> ends = {{0, 2000}, {1, 5}, {2, 0}};
  EXPECT_TRUE(counters_->CheckAgainstLog({{0, 1907}, {1, 5}}, ends).ok());
  // A partition without a committed offset predates them (an upgrade).
  EXPECT_TRUE(counters_->CheckAgainstLog({{0, 1907}}, ends).ok());
  EXPECT_TRUE(counters_->CheckAgainstLog({}, ends).ok());

  Status behind = counters_->CheckAgainstLog({{0, 1907}, {1, 5}, {2, 3}}, ends);
  EXPECT_EQ(behind.code(), Code::kCorruption);
  EXPECT_THAT(behind.message(), HasSubstr("partition 2's counters reflect the events below "
                                          "offset 0, but the log records them counted up to "
                                          "offset 3"));
  // Ahead of a group's offset: that group ran before another group name
  // did (kafka.group_id changed and changed back), not damage.
  EXPECT_TRUE(counters_->CheckAgainstLog({{0, 1000}}, ends).ok());
  // Counters past the log's end: the log lost records they counted.
  Status past = counters_->CheckAgainstLog({}, {{0, 1500}});
  EXPECT_EQ(past.code(), Code::kCorruption);
  EXPECT_THAT(past.message(), HasSubstr("but the log ends at offset 1500"));
  // Counters behind the log's first record: retention deleted events that
  // were never counted (a review: they were skipped without a word).
  EXPECT_TRUE(counters_->CheckAgainstLog({}, ends, {{0, 1907}, {1, 5}, {2, 0}}).ok());
  Status gap = counters_->CheckAgainstLog({}, ends, {{0, 1907}, {1, 6}});
  EXPECT_EQ(gap.code(), Code::kCorruption);
  EXPECT_THAT(gap.message(), HasSubstr("partition 1's counters reflect the events below offset 5, "
                                       "but the log holds them only from offset 6 on"));
}

// An ids record holding an id of a domain another partition owns (only a
// foreign producer writes one) is refused whole: taken, it made a later
// request with that key a retry (a black-box probe).
TEST_F(CounterStoreTest, AnIdsRecordWithAnotherPartitionsDomainIsRefusedWhole) {
  const int32_t home = PartitionForKey("a.com", 4);
  const int32_t other = (home + 1) % 4;
  IdBatchJson ids;
  ids.Add("a.com", "k1", 5);
  std::string value = ids.Take();
  KvWriteBatch batch;
  Result<size_t> refused =
      counters_->PutIdsOf(ConsumedRecord{other, 0, 0, kIdsBatchKey, value}, &batch, 4);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("holds an id of 'a.com'"));
  EXPECT_EQ(batch.Count(), 0u);
  Result<size_t> taken =
      counters_->PutIdsOf(ConsumedRecord{home, 0, 0, kIdsBatchKey, value}, &batch, 4);
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_EQ(*taken, 1u);
  EXPECT_EQ(batch.Count(), 1u);
}

TEST_F(CounterStoreTest, UnknownDomainHasZeroCounts) {
  EXPECT_EQ(Get("never.example"), (DomainCounts{0, 0}));
}

TEST_F(CounterStoreTest, AddedCountsSumUp) {
  AddAll({{"a.com", {3, 0}}, {"b.com", {0, 2}}});
  AddAll({{"a.com", {4, 1}}});
  EXPECT_EQ(Get("a.com"), (DomainCounts{7, 1}));
  EXPECT_EQ(Get("b.com"), (DomainCounts{0, 2}));
}

TEST_F(CounterStoreTest, PutCountsReplacesAndLaterAddsGoOnFromThere) {
  AddAll({{"a.com", {10, 0}}});
  KvWriteBatch batch;
  counters_->PutCounts("a.com", {4, 2}, &batch);
  counters_->PutCounts("new.com", {1, 0}, &batch);
  Write(&batch);
  EXPECT_EQ(Get("a.com"), (DomainCounts{4, 2}));
  EXPECT_EQ(Get("new.com"), (DomainCounts{1, 0}));
  AddAll({{"a.com", {1, 0}}});
  EXPECT_EQ(Get("a.com"), (DomainCounts{5, 2}));
}

TEST_F(CounterStoreTest, ACheckpointDefaultsToNothingCounted) {
  StateCheckpoint c = Checkpoint(*counters_, 3);
  EXPECT_EQ(c.events_offset, 0);
  EXPECT_EQ(c.changelog_offset, -1);
  EXPECT_EQ(c.ids_offset, -1);
}

TEST_F(CounterStoreTest, CountsIdsAndCheckpointsOfOneBatchAreWrittenTogether) {
  KvWriteBatch batch;
  counters_->AddCounts("a.com", {1, 0}, &batch);
  counters_->PutId(std::string("a.com\0id-1", 10), 1700000000123, &batch);
  counters_->PutCheckpoint(0, {17, -1, -1}, &batch);
  counters_->PutCheckpoint(2, {4, 9, 11}, &batch);
  EXPECT_EQ(Get("a.com"), (DomainCounts{0, 0})) << "nothing before the write";
  Write(&batch);

  EXPECT_EQ(Get("a.com"), (DomainCounts{1, 0}));
  const std::string id("a.com\0id-1", 10);
  const std::string other_id("b.com\0id-1", 10);
  std::vector<std::optional<int64_t>> ids;
  ASSERT_TRUE(counters_->IdTimestamps({id, other_id}, &ids).ok());
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], std::optional<int64_t>(1700000000123));
  EXPECT_FALSE(ids[1].has_value());
  EXPECT_EQ(Checkpoint(*counters_, 0).events_offset, 17);
  EXPECT_EQ(Checkpoint(*counters_, 0).changelog_offset, -1);
  EXPECT_EQ(Checkpoint(*counters_, 1).events_offset, 0);
  StateCheckpoint two = Checkpoint(*counters_, 2);
  EXPECT_EQ(two.events_offset, 4);
  EXPECT_EQ(two.changelog_offset, 9);
  EXPECT_EQ(two.ids_offset, 11);
}

TEST_F(CounterStoreTest, AnUnknownResumeOffsetKeepsTheStoredOne) {
  KvWriteBatch batch;
  counters_->PutCheckpoint(1, {10, 5, 6}, &batch);
  Write(&batch);
  KvWriteBatch later;
  counters_->PutCheckpoint(1, {25, -1, -1}, &later);
  Write(&later);
  StateCheckpoint c = Checkpoint(*counters_, 1);
  EXPECT_EQ(c.events_offset, 25);
  EXPECT_EQ(c.changelog_offset, 5);
  EXPECT_EQ(c.ids_offset, 6);
}

TEST_F(CounterStoreTest, CheckpointsAreKeptPerSourceTopic) {
  KvWriteBatch batch;
  counters_->PutCheckpoint(0, {42, 7, 8}, &batch);
  Write(&batch);
  EXPECT_EQ(Checkpoint(*other_, 0).events_offset, 0);
  EXPECT_EQ(Checkpoint(*other_, 0).changelog_offset, -1);
  EXPECT_EQ(Checkpoint(*counters_, 0).events_offset, 42);
}

TEST_F(CounterStoreTest, WrittenStateSurvivesReopening) {
  KvWriteBatch batch;
  counters_->AddCounts("a.com", {2, 1}, &batch);
  counters_->PutCheckpoint(1, {3, -1, -1}, &batch);
  Write(&batch);
  Open();
  EXPECT_EQ(Get("a.com"), (DomainCounts{2, 1}));
  EXPECT_EQ(Checkpoint(*counters_, 1).events_offset, 3);
}

TEST_F(CounterStoreTest, MultiGetAnswersInRequestOrderWithZerosForUnknown) {
  AddAll({{"a.com", {1, 0}}, {"b.com", {0, 2}}, {"c.com", {3, 3}}});
  std::vector<DomainCounts> out = {{77, 77}};  // stale content must be replaced
  Status s = counters_->MultiGet({"c.com", "unknown.com", "a.com", "b.com", "a.com"}, &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_THAT(out, ElementsAre(DomainCounts{3, 3}, DomainCounts{0, 0}, DomainCounts{1, 0},
                               DomainCounts{0, 2}, DomainCounts{1, 0}));
}

TEST_F(CounterStoreTest, MultiGetOfNothingIsEmpty) {
  std::vector<DomainCounts> out = {{1, 1}};
  ASSERT_TRUE(counters_->MultiGet({}, &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST_F(CounterStoreTest, CountsEncodingRoundTrips) {
  DomainCounts c{1234567890123, 42};
  std::string encoded = EncodeCounts(c);
  EXPECT_EQ(encoded.size(), 16u);
  EXPECT_EQ(DecodeCounts(encoded), c);
}

}  // namespace
}  // namespace catchall
