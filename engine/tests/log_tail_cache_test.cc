// LogTailCache: the local log's in-memory tail of each partition.
#include "log_tail_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace catchall {
namespace {

std::vector<int64_t> Bases(const std::vector<LogTailCache::Entry>& entries) {
  std::vector<int64_t> out;
  out.reserve(entries.size());
  for (const auto& e : entries) out.push_back(e.base);
  return out;
}

TEST(LogTailCacheTest, FindsTheBatchesFromAnOffsetOnOldestFirst) {
  LogTailCache cache(2, 1 << 20);
  cache.Add(0, 0, 3, "abc");
  cache.Add(0, 3, 2, "de");
  cache.Add(0, 5, 4, "fghi");
  std::vector<LogTailCache::Entry> got;
  ASSERT_TRUE(cache.Find(0, 4, 100, &got));
  EXPECT_EQ(Bases(got), (std::vector<int64_t>{3, 5})) << "offset 4 is in the batch from 3";
  EXPECT_EQ(*got[1].blob, "fghi");
  got.clear();
  ASSERT_TRUE(cache.Find(0, 9, 100, &got)) << "the end: cached, nothing newer";
  EXPECT_TRUE(got.empty());
  EXPECT_FALSE(cache.Find(1, 0, 100, &got)) << "nothing cached of partition 1";
  EXPECT_FALSE(cache.Find(7, 0, 100, &got)) << "no such partition";
}

TEST(LogTailCacheTest, StopsOnceTheBatchesHoldEnoughRecords) {
  LogTailCache cache(1, 1 << 20);
  for (int64_t base = 0; base < 50; base += 10) cache.Add(0, base, 10, "0123456789");
  std::vector<LogTailCache::Entry> got;
  ASSERT_TRUE(cache.Find(0, 15, 12, &got));
  // 5 records from the batch at 10, then 10 from the one at 20: enough.
  EXPECT_EQ(Bases(got), (std::vector<int64_t>{10, 20}));
}

TEST(LogTailCacheTest, FindsTheRightBatchNearTheEndAndFarBehindIt) {
  // 100 batches of 1-3 records: a reader a few batches behind is found by
  // walking back from the end, one further behind by a binary search; both
  // must start at the batch that holds `from`.
  LogTailCache cache(1, 1 << 20);
  std::vector<int64_t> bases;
  int64_t base = 0;
  for (int i = 0; i < 100; ++i) {
    auto count = static_cast<uint32_t>(1 + i % 3);
    cache.Add(0, base, count, "x");
    bases.push_back(base);
    base += count;
  }
  for (int64_t from = 0; from <= base; ++from) {
    std::vector<LogTailCache::Entry> got;
    ASSERT_TRUE(cache.Find(0, from, 1, &got)) << from;
    if (from == base) {
      EXPECT_TRUE(got.empty()) << "at the end nothing is newer";
      continue;
    }
    ASSERT_EQ(got.size(), 1U) << from;
    int64_t expected = *(std::upper_bound(bases.begin(), bases.end(), from) - 1);
    EXPECT_EQ(got[0].base, expected) << "from " << from;
    EXPECT_LE(got[0].base, from);
    EXPECT_GT(got[0].base + got[0].count, from);
  }
}

TEST(LogTailCacheTest, KeepsTheNewestWithinItsBytesAndSendsOlderReadsToTheStore) {
  LogTailCache cache(1, 10);
  cache.Add(0, 0, 1, "aaaa");
  cache.Add(0, 1, 1, "bbbb");
  cache.Add(0, 2, 1, "cccc");  // 12 bytes: the oldest goes
  std::vector<LogTailCache::Entry> got;
  EXPECT_FALSE(cache.Find(0, 0, 100, &got)) << "evicted: the reader must use the store";
  EXPECT_TRUE(got.empty());
  ASSERT_TRUE(cache.Find(0, 1, 100, &got));
  EXPECT_EQ(Bases(got), (std::vector<int64_t>{1, 2}));
  // A batch bigger than the budget is still kept: the newest always is.
  cache.Add(0, 3, 1, std::string(64, 'x'));
  got.clear();
  ASSERT_TRUE(cache.Find(0, 3, 100, &got));
  EXPECT_EQ(Bases(got), (std::vector<int64_t>{3}));
}

TEST(LogTailCacheTest, ABatchThatDoesNotContinueThePartitionReplacesIt) {
  LogTailCache cache(1, 1 << 20);
  cache.Add(0, 0, 2, "ab");
  cache.Add(0, 5, 1, "f");  // a gap: 2..4 were never cached
  std::vector<LogTailCache::Entry> got;
  EXPECT_FALSE(cache.Find(0, 2, 100, &got)) << "the gap must come from the store";
  EXPECT_FALSE(cache.Find(0, 0, 100, &got));
  ASSERT_TRUE(cache.Find(0, 5, 100, &got));
  EXPECT_EQ(Bases(got), (std::vector<int64_t>{5}));
}

}  // namespace
}  // namespace catchall
