#include "state/counter_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "test_util.h"

namespace catchall {
namespace {

using ::testing::ElementsAre;
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

  void Commit(const CounterDelta& delta) {
    Status s = counters_->Commit(delta);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  test::ScopedTempDir dir_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<CounterStore> counters_;
  std::unique_ptr<CounterStore> other_;  // same store, another source topic
};

TEST_F(CounterStoreTest, UnknownDomainHasZeroCounts) {
  EXPECT_EQ(Get("never.example"), (DomainCounts{0, 0}));
}

TEST_F(CounterStoreTest, CommitAddsDeltasToStoredCounts) {
  CounterDelta first;
  first.counts["a.com"] = {3, 0};
  first.counts["b.com"] = {0, 2};
  Commit(first);
  CounterDelta second;
  second.counts["a.com"] = {4, 1};
  Commit(second);
  EXPECT_EQ(Get("a.com"), (DomainCounts{7, 1}));
  EXPECT_EQ(Get("b.com"), (DomainCounts{0, 2}));
}

TEST_F(CounterStoreTest, CommitReplacesCountsWithAbsoluteValues) {
  CounterDelta added;
  added.counts["a.com"] = {10, 0};
  Commit(added);
  CounterDelta absolute;
  absolute.absolute["a.com"] = {4, 2};
  absolute.absolute["new.com"] = {1, 0};
  Commit(absolute);
  EXPECT_EQ(Get("a.com"), (DomainCounts{4, 2}));
  EXPECT_EQ(Get("new.com"), (DomainCounts{1, 0}));
  // Later deltas add to the absolute value.
  CounterDelta more;
  more.counts["a.com"] = {1, 0};
  Commit(more);
  EXPECT_EQ(Get("a.com"), (DomainCounts{5, 2}));
}

TEST_F(CounterStoreTest, OffsetsDefaultToZeroAndChangelogOffsetsToMinusOne) {
  Result<int64_t> committed = counters_->CommittedOffset(3);
  ASSERT_TRUE(committed.ok());
  EXPECT_EQ(*committed, 0);
  Result<int64_t> changelog = counters_->ChangelogOffset(3);
  ASSERT_TRUE(changelog.ok());
  EXPECT_EQ(*changelog, -1);
}

TEST_F(CounterStoreTest, CommitStoresCountsIdsAndOffsetsTogether) {
  CounterDelta delta;
  delta.counts["a.com"] = {1, 0};
  delta.absolute["b.com"] = {5, 5};
  delta.ids[std::string("a.com\0id-1", 10)] = 1700000000123;
  delta.offsets[0] = 17;
  delta.offsets[2] = 4;
  delta.changelog_offsets[2] = 9;
  Commit(delta);

  EXPECT_EQ(Get("a.com"), (DomainCounts{1, 0}));
  EXPECT_EQ(Get("b.com"), (DomainCounts{5, 5}));
  Result<std::optional<int64_t>> id = counters_->IdTimestamp(std::string("a.com\0id-1", 10));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, std::optional<int64_t>(1700000000123));
  Result<std::optional<int64_t>> other_id = counters_->IdTimestamp(std::string("b.com\0id-1", 10));
  ASSERT_TRUE(other_id.ok());
  EXPECT_FALSE(other_id->has_value());
  EXPECT_EQ(*counters_->CommittedOffset(0), 17);
  EXPECT_EQ(*counters_->CommittedOffset(1), 0);
  EXPECT_EQ(*counters_->CommittedOffset(2), 4);
  EXPECT_EQ(*counters_->ChangelogOffset(2), 9);
  EXPECT_EQ(*counters_->ChangelogOffset(0), -1);
}

TEST_F(CounterStoreTest, LaterCommitsMoveOffsetsOfTheirPartitionsOnly) {
  CounterDelta first;
  first.offsets[0] = 10;
  first.offsets[1] = 20;
  Commit(first);
  CounterDelta second;
  second.offsets[1] = 25;
  Commit(second);
  EXPECT_EQ(*counters_->CommittedOffset(0), 10);
  EXPECT_EQ(*counters_->CommittedOffset(1), 25);
}

TEST_F(CounterStoreTest, OffsetsAreTrackedPerSourceTopic) {
  CounterDelta delta;
  delta.offsets[0] = 42;
  delta.changelog_offsets[0] = 7;
  Commit(delta);
  EXPECT_EQ(*other_->CommittedOffset(0), 0);
  EXPECT_EQ(*other_->ChangelogOffset(0), -1);
  EXPECT_EQ(*counters_->CommittedOffset(0), 42);
}

TEST_F(CounterStoreTest, CommittedStateSurvivesReopening) {
  CounterDelta delta;
  delta.counts["a.com"] = {2, 1};
  delta.offsets[1] = 3;
  Commit(delta);
  Open();
  EXPECT_EQ(Get("a.com"), (DomainCounts{2, 1}));
  EXPECT_EQ(*counters_->CommittedOffset(1), 3);
}

TEST_F(CounterStoreTest, MultiGetAnswersInRequestOrderWithZerosForUnknown) {
  CounterDelta delta;
  delta.counts["a.com"] = {1, 0};
  delta.counts["b.com"] = {0, 2};
  delta.counts["c.com"] = {3, 3};
  Commit(delta);
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
