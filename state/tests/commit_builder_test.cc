// BuildCommit in cluster mode over a real store: what one commit sends to
// the changelog and the ids log.
#include "commit_builder.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/changelog.h"
#include "engine/partitioner.h"
#include "test_util.h"

namespace catchall {
namespace {

using namespace std::chrono_literals;

constexpr size_t kMaxIdRecordBytes = 128 << 10;  // commit_builder.cc's bound

class CommitBuilderTest : public ::testing::Test {
 protected:
  CommitBuilderTest() {
    Status s = KvStore::Open(
        test::SmallStoreOptions(dir_.path() + "/db", CounterStore::Columns(24h)), &store_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    counters_ = std::make_unique<CounterStore>(store_.get(), "catchall.events");
  }

  // A delta of `n` events, each of its own domain with an id of ~100 bytes.
  static CounterDelta DeltaWithIds(int n) {
    CounterDelta delta;
    for (int i = 0; i < n; ++i) {
      std::string domain = "d";
      domain.append(std::to_string(i)).append(".example");
      delta.counts[domain] = DomainCounts{1, 0};
      std::string id(90, 'x');
      id.append("-").append(std::to_string(i));
      delta.ids[IdKey(domain, id)] = 1000 + i;
    }
    delta.offsets[0] = static_cast<int64_t>(n);
    return delta;
  }

  LogTransaction Build(const CounterDelta& delta, int32_t partitions) {
    PublishOptions publish;
    publish.partitions = partitions;
    LogTransaction txn;
    KvWriteBatch state;
    Status s = BuildCommit(
        delta, {}, *counters_, &publish, [](int32_t) { return StateCheckpoint{}; }, &txn, &state);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return txn;
  }

  test::ScopedTempDir dir_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<CounterStore> counters_;
};

TEST_F(CommitBuilderTest, ManyIdsOfOnePartitionGoInRecordsOfAtMost128KiB) {
  constexpr int kIds = 5000;  // ~600 KB of ids: at least five records
  CounterDelta delta = DeltaWithIds(kIds);
  LogTransaction txn = Build(delta, 1);
  std::set<std::string> ids;
  size_t batches = 0;
  for (const OutputRecord& r : txn.records) {
    if (r.topic != kIdsTopic || r.key != kIdsBatchKey) continue;
    ++batches;
    // The record is closed once it reaches the bound: one entry may go past it.
    EXPECT_LT(r.value.size(), kMaxIdRecordBytes + 1024) << "record " << batches;
    Status read = ForEachIdInRecord(ConsumedRecord{r.partition, 0, 0, r.key, r.value},
                                    [&](std::string_view domain, std::string_view id, int64_t ts) {
                                      std::string key = IdKey(domain, id);
                                      EXPECT_EQ(delta.ids.at(key), ts);
                                      EXPECT_TRUE(ids.insert(key).second) << "sent twice";
                                    });
    EXPECT_TRUE(read.ok()) << read.ToString();
  }
  EXPECT_GE(batches, 5u);
  EXPECT_LE(batches, 6u) << "records were closed well before the bound";
  EXPECT_EQ(ids.size(), static_cast<size_t>(kIds)) << "every id, in exactly one record";
}

TEST_F(CommitBuilderTest, EachIdGoesToItsDomainsPartitionAndEachPartitionGetsACheckpoint) {
  constexpr int32_t kPartitions = 4;
  CounterDelta delta = DeltaWithIds(200);
  delta.offsets = {{0, 10}, {2, 30}};
  LogTransaction txn = Build(delta, kPartitions);
  size_t ids = 0;
  std::map<std::string, std::set<int32_t>> checkpoints;  // topic -> partitions
  for (const OutputRecord& r : txn.records) {
    if (r.key == kChangelogCheckpointKey) {
      checkpoints[r.topic].insert(r.partition);
      continue;
    }
    if (r.topic == kStatusTopic) {
      EXPECT_EQ(r.partition, PartitionForKey(r.key, kPartitions)) << r.key;
      continue;
    }
    ASSERT_EQ(r.topic, kIdsTopic);
    ASSERT_EQ(r.key, kIdsBatchKey);
    Status read = ForEachIdInRecord(ConsumedRecord{r.partition, 0, 0, r.key, r.value},
                                    [&](std::string_view domain, std::string_view, int64_t) {
                                      EXPECT_EQ(r.partition, PartitionForKey(domain, kPartitions))
                                          << domain;
                                      ++ids;
                                    });
    EXPECT_TRUE(read.ok()) << read.ToString();
  }
  EXPECT_EQ(ids, 200u);
  std::set<int32_t> advanced = {0, 2};
  EXPECT_EQ(checkpoints[std::string(kStatusTopic)], advanced);
  EXPECT_EQ(checkpoints[std::string(kIdsTopic)], advanced);
  EXPECT_EQ(txn.offsets, (std::map<int32_t, int64_t>{{0, 10}, {2, 30}}));
}

// A partition added to the events topic has no changelog partition: a
// checkpoint record for it failed every transaction ("Unknown partition"),
// and the aggregator stopped counting (an operations probe, twelfth
// session). Its offset is committed without one.
TEST_F(CommitBuilderTest, APartitionBeyondTheChangelogsGetsItsOffsetButNoCheckpointRecord) {
  CounterDelta delta;
  delta.offsets[1] = 10;
  delta.offsets[2] = 7;  // added to the events topic in place: 2 counted since the start
  LogTransaction txn = Build(delta, /*partitions=*/2);
  EXPECT_EQ(txn.offsets.size(), 2u);
  EXPECT_EQ(txn.offsets[2], 7);
  std::set<int32_t> checkpointed;
  for (const OutputRecord& r : txn.records) {
    EXPECT_EQ(r.key, kChangelogCheckpointKey);
    checkpointed.insert(r.partition);
  }
  EXPECT_EQ(checkpointed, std::set<int32_t>{1});
  EXPECT_EQ(txn.records.size(), 2u) << "one checkpoint in the changelog and one in the ids log";
}

}  // namespace
}  // namespace catchall
