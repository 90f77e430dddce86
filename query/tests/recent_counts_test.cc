// RecentCounts: the query node's in-memory table of what changed since its
// last checkpoint.
#include "recent_counts.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace catchall {
namespace {

RecentCounts::Value Found(const RecentCounts& recent, std::string_view domain) {
  RecentCounts::Value value;
  EXPECT_TRUE(recent.Find(domain, &value)) << domain << " is not in the table";
  return value;
}

TEST(RecentCountsTest, TheLastChangeOfADomainWinsAndADeletionIsRemembered) {
  RecentCounts recent;
  recent.Put("a.example", {1, 0});
  recent.Put("a.example", {5, 2});
  recent.Put("gone.example", {3, 0});
  recent.Delete("gone.example");
  EXPECT_EQ(recent.size(), 2u);
  EXPECT_EQ(Found(recent, "a.example"), (DomainCounts{5, 2}));
  EXPECT_EQ(Found(recent, "gone.example"), std::nullopt);
  RecentCounts::Value value;
  EXPECT_FALSE(recent.Find("never.example", &value));
}

// Every shard's active table is sized for its share of the expected domains,
// at the start and after each Freeze, so that Puts up to a checkpoint never
// rehash a shard under its lock.
TEST(RecentCountsTest, ActiveTablesAreSizedForTheExpectedDomains) {
  RecentCounts unsized;
  RecentCounts recent(160'000);
  EXPECT_LT(unsized.shard_capacity(), 10'000u);
  EXPECT_GE(recent.shard_capacity(), 10'000u);
  for (int i = 0; i < 1000; ++i) recent.Put("d" + std::to_string(i) + ".example", {1, 0});
  recent.Freeze();
  EXPECT_GE(recent.shard_capacity(), 10'000u) << "the table a Freeze starts is sized too";
  recent.Release();
  recent.Put("after.example", {1, 0});
  recent.Freeze();
  EXPECT_GE(recent.shard_capacity(), 10'000u);
}

TEST(RecentCountsTest, TablesTakeTheExpectedDomainsWithoutGrowing) {
  RecentCounts recent(160'000);
  const size_t capacity = recent.shard_capacity();
  // ~8,750 per shard, within what each was sized for: no shard grows (a
  // growth rehashes the shard under its lock while lookups wait).
  for (int i = 0; i < 140'000; ++i) recent.Put("d" + std::to_string(i) + ".example", {1, 0});
  EXPECT_EQ(recent.size(), 140'000u);
  EXPECT_EQ(recent.shard_capacity(), capacity);
}

TEST(RecentCountsTest, TheTableKeepsItsOwnCopyOfEachName) {
  RecentCounts recent;
  std::string name = "first.example";
  recent.Put(name, {1, 0});
  recent.Put(name, {2, 0});     // an update keeps the one entry
  name.replace(0, 5, "other");  // the caller's buffer is reused
  recent.Put(name, {7, 0});
  RecentCounts::Value value;
  ASSERT_TRUE(recent.Find("first.example", &value));
  EXPECT_EQ(value, (DomainCounts{2, 0}));
  recent.Freeze();
  RecentCounts::SortedEntries entries = recent.SortedFrozen();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].first, "first.example");
  EXPECT_EQ(entries[1].first, "other.example");
  EXPECT_EQ(*entries[1].second, (DomainCounts{7, 0}));
}

TEST(RecentCountsTest, FreezeSortsTheTableAndTheNewTableHidesTheFrozenOne) {
  RecentCounts recent;
  std::vector<std::string> domains = {"m.example", "b.example", "z.example", "a.example"};
  for (size_t i = 0; i < domains.size(); ++i) recent.Put(domains[i], {i + 1, 0});
  recent.Delete("b.example");
  recent.Freeze();
  EXPECT_TRUE(recent.frozen());
  RecentCounts::SortedEntries entries = recent.SortedFrozen();
  EXPECT_EQ(recent.size(), 0u);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].first, "a.example");
  EXPECT_EQ(*entries[0].second, (DomainCounts{4, 0}));
  EXPECT_EQ(entries[1].first, "b.example");
  EXPECT_EQ(*entries[1].second, std::nullopt);
  EXPECT_EQ(entries[2].first, "m.example");
  EXPECT_EQ(entries[3].first, "z.example");
  // Frozen values are still found, newer ones first.
  EXPECT_EQ(Found(recent, "m.example"), (DomainCounts{1, 0}));
  recent.Put("m.example", {9, 9});
  EXPECT_EQ(Found(recent, "m.example"), (DomainCounts{9, 9}));
  EXPECT_EQ(*entries[2].second, (DomainCounts{1, 0})) << "the frozen entry changed";
  recent.Release();
  EXPECT_FALSE(recent.frozen());
  RecentCounts::Value value;
  EXPECT_FALSE(recent.Find("z.example", &value)) << "released entries are the store's";
  EXPECT_EQ(Found(recent, "m.example"), (DomainCounts{9, 9}));
}

// Lookups from another thread while the writer changes, freezes and
// releases: the domain is put again after each freeze and before each
// release, so one table or the other always holds it, and a lookup must
// never miss it (as it would if a freeze or a release left a moment when
// neither did).
TEST(RecentCountsTest, LookupsDuringWritesAndFreezesFindEveryKeptDomain) {
  RecentCounts recent;
  recent.Put("kept.example", {1, 0});
  std::atomic<bool> done{false};
  std::atomic<int> misses{0};
  std::thread reader([&] {
    RecentCounts::Value value;
    while (!done.load()) {
      if (!recent.Find("kept.example", &value)) misses.fetch_add(1);
    }
  });
  for (uint64_t round = 0; round < 200; ++round) {
    for (uint64_t i = 0; i < 100; ++i) recent.Put("d" + std::to_string(i), {round, i});
    recent.Put("kept.example", {round + 1, 0});
    recent.Freeze();
    recent.Put("kept.example", {round + 1, 1});
    recent.Release();
  }
  done.store(true);
  reader.join();
  EXPECT_EQ(misses.load(), 0);
}

}  // namespace
}  // namespace catchall
