#include "engine/kv_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/metrics.h"
#include "engine/store_metrics.h"
#include "support/threads.h"
#include "test_util.h"

namespace catchall {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Counters(std::initializer_list<uint64_t> values) {
  std::string s;
  for (uint64_t v : values) PutFixed64(&s, v);
  return s;
}

std::vector<uint64_t> DecodeCounters(const std::string& s) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i + 8 <= s.size(); i += 8) out.push_back(DecodeFixed64(s.data() + i));
  return out;
}

class KvStoreTest : public ::testing::Test {
 protected:
  KvStoreOptions Options() const {
    KvStoreOptions options;
    options.path = dir_.path() + "/db";
    options.columns = {{"plain", ColumnKind::kPlain, {}},
                       {"counters", ColumnKind::kCounters, {}},
                       {"log", ColumnKind::kLog, {}},
                       {"expiring", ColumnKind::kExpiring, std::chrono::hours(1)}};
    options.block_cache_bytes = 8 << 20;
    options.write_buffer_bytes = 4 << 20;
    return options;
  }

  void Open() { Open(Options()); }
  void Open(const KvStoreOptions& options) {
    store_.reset();
    Status s = KvStore::Open(options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    plain_ = store_->GetColumn("plain");
    counters_ = store_->GetColumn("counters");
    log_ = store_->GetColumn("log");
    ASSERT_TRUE(plain_.valid());
    ASSERT_TRUE(counters_.valid());
    ASSERT_TRUE(log_.valid());
  }

  void Put(Column c, std::string_view k, std::string_view v) {
    KvWriteBatch b;
    b.Put(c, k, v);
    ASSERT_TRUE(store_->Write(&b).ok());
  }
  void Merge(Column c, std::string_view k, std::string_view v) {
    KvWriteBatch b;
    b.Merge(c, k, v);
    ASSERT_TRUE(store_->Write(&b).ok());
  }
  std::string Get(Column c, std::string_view k) {
    std::string v;
    Status s = store_->Get(c, k, &v);
    if (s.code() == Code::kNotFound) return "<not found>";
    EXPECT_TRUE(s.ok()) << s.ToString();
    return v;
  }
  std::vector<std::string> Keys(KvIterator* it) {
    std::vector<std::string> keys;
    for (; it->Valid(); it->Next()) keys.emplace_back(it->key());
    EXPECT_TRUE(it->status().ok());
    return keys;
  }

  test::ScopedTempDir dir_;
  std::unique_ptr<KvStore> store_;
  Column plain_, counters_, log_;
};

TEST_F(KvStoreTest, PutGetAndNotFound) {
  Open();
  Put(plain_, "k1", "v1");
  Put(plain_, "k2", std::string("bin\0ary", 7));
  EXPECT_EQ(Get(plain_, "k1"), "v1");
  EXPECT_EQ(Get(plain_, "k2"), std::string("bin\0ary", 7));
  std::string v = "unchanged";
  Status s = store_->Get(plain_, "missing", &v);
  EXPECT_EQ(s.code(), Code::kNotFound);
  // Columns are separate key spaces.
  EXPECT_EQ(Get(log_, "k1"), "<not found>");
  Put(plain_, "k1", "v1b");
  EXPECT_EQ(Get(plain_, "k1"), "v1b");
  KvWriteBatch del;
  del.Delete(plain_, "k1");
  ASSERT_TRUE(store_->Write(&del).ok());
  EXPECT_EQ(Get(plain_, "k1"), "<not found>");
  EXPECT_EQ(Get(plain_, ""), "<not found>");
  Put(plain_, "", "empty key");
  EXPECT_EQ(Get(plain_, ""), "empty key");
}

// RocksDB refuses to stage a value of 4 GiB or more; the write used to
// succeed without it (a review: a local log group commit that large was
// acknowledged and gone after a restart). The value is an untouched
// anonymous mapping: no memory is used.
TEST_F(KvStoreTest, AWriteHoldingAChangeRocksDbRefusedWritesNothing) {
  Open();
  const size_t huge = (size_t{1} << 32) + 1;
  void* mapped = mmap(nullptr, huge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(mapped, MAP_FAILED);
  KvWriteBatch batch;
  batch.Put(plain_, "small", "kept out too");
  batch.Put(plain_, "huge", std::string_view(static_cast<const char*>(mapped), huge));
  Status s = store_->Write(&batch);
  munmap(mapped, huge);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), ::testing::HasSubstr("too large"));
  EXPECT_EQ(Get(plain_, "small"), "<not found>")
      << "a refused write is written whole or not at all";
  EXPECT_EQ(Get(plain_, "huge"), "<not found>");
  // The store itself is fine, and a cleared batch writes again.
  batch.Clear();
  batch.Put(plain_, "small", "v");
  ASSERT_TRUE(store_->Write(&batch).ok());
  EXPECT_EQ(Get(plain_, "small"), "v");
}

// What fills a data dir, as the metrics report it: writes land in the
// write-ahead log first, a flush puts them in a table file.
TEST_F(KvStoreTest, BackgroundStatsReportTheLogAndTableBytesOnDisk) {
  Open();
  EXPECT_EQ(store_->BackgroundStats().table_bytes, 0u);
  KvWriteBatch b;
  for (int i = 0; i < 1000; ++i) b.Put(plain_, "key" + std::to_string(i), std::string(100, 'v'));
  ASSERT_TRUE(store_->Write(&b).ok());
  KvBackgroundStats written = store_->BackgroundStats();
  EXPECT_GT(written.wal_bytes, 100'000u) << "1,000 values of 100 bytes";
  EXPECT_EQ(written.table_bytes, 0u);
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_GT(store_->BackgroundStats().table_bytes, 0u);
}

TEST_F(KvStoreTest, UnknownColumnIsInvalid) {
  Open();
  EXPECT_FALSE(store_->GetColumn("nope").valid());
  EXPECT_FALSE(Column().valid());
}

TEST_F(KvStoreTest, MergeAddsCountersElementWise) {
  Open();
  Merge(counters_, "d", Counters({1, 0}));
  EXPECT_EQ(DecodeCounters(Get(counters_, "d")), (std::vector<uint64_t>{1, 0}));
  Merge(counters_, "d", Counters({2, 5}));
  Merge(counters_, "d", Counters({10, 0}));
  EXPECT_EQ(DecodeCounters(Get(counters_, "d")), (std::vector<uint64_t>{13, 5}));
  // Many operands in one batch, including large values.
  KvWriteBatch b;
  for (int i = 0; i < 100; ++i) b.Merge(counters_, "d", Counters({1, 1u << 20}));
  ASSERT_TRUE(store_->Write(&b).ok());
  EXPECT_EQ(DecodeCounters(Get(counters_, "d")),
            (std::vector<uint64_t>{113, 5 + 100u * (1u << 20)}));
}

TEST_F(KvStoreTest, MergeOfDifferentLengthsZeroExtends) {
  Open();
  Merge(counters_, "a", Counters({1, 2}));
  Merge(counters_, "a", Counters({10, 20, 30}));
  EXPECT_EQ(DecodeCounters(Get(counters_, "a")), (std::vector<uint64_t>{11, 22, 30}));
  Merge(counters_, "a", Counters({100}));
  EXPECT_EQ(DecodeCounters(Get(counters_, "a")), (std::vector<uint64_t>{111, 22, 30}));
}

TEST_F(KvStoreTest, MergeOnTopOfPutAndAfterDelete) {
  Open();
  Put(counters_, "k", Counters({5, 5}));
  Merge(counters_, "k", Counters({1, 2}));
  EXPECT_EQ(DecodeCounters(Get(counters_, "k")), (std::vector<uint64_t>{6, 7}));
  KvWriteBatch b;
  b.Delete(counters_, "k");
  b.Merge(counters_, "k", Counters({3, 0}));
  ASSERT_TRUE(store_->Write(&b).ok());
  EXPECT_EQ(DecodeCounters(Get(counters_, "k")), (std::vector<uint64_t>{3, 0}));
}

TEST_F(KvStoreTest, MergeSurvivesFlushAndReopen) {
  Open();
  Merge(counters_, "k", Counters({1, 1}));
  ASSERT_TRUE(store_->Flush().ok());
  Merge(counters_, "k", Counters({2, 0}));
  Open();
  Merge(counters_, "k", Counters({4, 0}));
  EXPECT_EQ(DecodeCounters(Get(counters_, "k")), (std::vector<uint64_t>{7, 1}));
}

// Flips every bit of the byte at `offset` of the file `path`.
void FlipByte(const std::string& path, std::streamoff offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char byte = 0;
  f.get(byte);
  f.seekp(offset);
  f.put(static_cast<char>(byte ^ 0xff));
}

// The write-ahead log's one file in the store's directory (the writes
// since the last flush are there only).
std::string OnlyWalFile(const std::string& path) {
  std::string wal;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    if (entry.path().extension() != ".log" || entry.file_size() == 0) continue;
    EXPECT_TRUE(wal.empty()) << "more than one write-ahead log with data";
    wal = entry.path().string();
  }
  return wal;
}

// One of the store's table files ("" if there is none).
std::string AnyTableFile(const std::string& path) {
  std::string table;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    if (entry.path().extension() == ".sst") table = entry.path().string();
  }
  return table;
}

// A write-ahead log damaged before its end (a byte flipped in the middle)
// must not open silently as of the damage, dropping what follows it: a
// black-box probe saw the restarted server serve lower counts with nothing
// logged. With sync_writes (every acknowledged write on disk) it is
// refused unless recover_damaged_wal asks for exactly that; without, a
// power loss can leave such a log, so it opens as of the damage, saying so.
TEST_F(KvStoreTest, AWalDamagedBeforeItsEndIsRefusedUnlessRecoveryIsAsked) {
  KvStoreOptions synced = Options();
  synced.sync_writes = true;
  Open(synced);
  for (int i = 0; i < 200; ++i) Put(plain_, fmt::format("k{:03}", i), std::string(1000, 'v'));
  store_.reset();  // no flush: the writes are in the log only
  const std::string wal = OnlyWalFile(dir_.path() + "/db");
  ASSERT_FALSE(wal.empty());
  const auto size = std::filesystem::file_size(wal);
  FlipByte(wal, static_cast<std::streamoff>(size / 2));
  std::unique_ptr<KvStore> refused;
  Status s = KvStore::Open(synced, &refused);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();

  KvStoreOptions recover = synced;
  recover.recover_damaged_wal = true;
  Open(recover);
  EXPECT_EQ(Get(plain_, "k000"), std::string(1000, 'v'));
  EXPECT_EQ(Get(plain_, "k199"), "<not found>") << "written after the damage";
}

TEST_F(KvStoreTest, AWalDamagedBeforeItsEndOpensAsOfTheDamageWithoutSyncedWrites) {
  Open();  // sync_writes off, the default
  for (int i = 0; i < 200; ++i) Put(plain_, fmt::format("k{:03}", i), std::string(1000, 'v'));
  store_.reset();
  const std::string wal = OnlyWalFile(dir_.path() + "/db");
  ASSERT_FALSE(wal.empty());
  const auto size = std::filesystem::file_size(wal);
  FlipByte(wal, static_cast<std::streamoff>(size / 2));
  Open();
  EXPECT_EQ(Get(plain_, "k000"), std::string(1000, 'v'));
  EXPECT_EQ(Get(plain_, "k199"), "<not found>") << "written after the damage";
}

// Found by a probe: without CURRENT, RocksDB started an empty store and
// deleted the old one's files; the server served every count as 0.
TEST_F(KvStoreTest, AStoreWithoutItsCurrentFileIsRefusedAndKeptAsItIs) {
  Open();
  Put(plain_, "flushed", "1");
  ASSERT_TRUE(store_->Flush().ok());
  Put(plain_, "logged", "2");
  store_.reset();
  const std::string db = dir_.path() + "/db";
  ASSERT_TRUE(std::filesystem::remove(db + "/CURRENT"));
  auto files = [&] {
    std::set<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(db)) {
      names.insert(entry.path().filename().string());
    }
    return names;
  };
  const std::set<std::string> before = files();
  std::unique_ptr<KvStore> refused;
  Status s = KvStore::Open(Options(), &refused);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("no CURRENT file"));
  EXPECT_THAT(s.message(), HasSubstr(".sst, "));  // the data's files come first
  EXPECT_EQ(files(), before) << "a refused open must leave every file in place";

  // A directory holding a file RocksDB would take for its own is refused
  // too; a new one, and one holding anything else, is not.
  const std::string other = dir_.path() + "/other";
  std::filesystem::create_directories(other);
  std::ofstream(other + "/notes.txt") << "unrelated\n";
  KvStoreOptions options = Options();
  options.path = other;
  Open(options);
  store_.reset();
  const std::string stray = dir_.path() + "/stray";
  std::filesystem::create_directories(stray);
  std::ofstream(stray + "/000001.log") << "unrelated\n";
  options.path = stray;
  s = KvStore::Open(options, &refused);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_TRUE(std::filesystem::exists(stray + "/000001.log"));

  // What a creation cut short leaves (a full disk at the first start:
  // RocksDB writes MANIFEST-000001 before CURRENT) opens again.
  const std::string cut = dir_.path() + "/cut";
  std::filesystem::create_directories(cut);
  std::ofstream(cut + "/MANIFEST-000001") << "x";
  std::ofstream(cut + "/IDENTITY") << "x";
  options.path = cut;
  Open(options);
  Put(plain_, "k", "v");
  EXPECT_EQ(Get(plain_, "k"), "v");
}

// The sync leaves nothing behind: a key written for it pinned every
// write-ahead log file from then on, through a flush and a clean shutdown
// (a review).
// Only the store's own leftovers go at open: the ingest directory's files
// were removed whole, a user's too (a review).
TEST_F(KvStoreTest, OpeningRemovesOnlyItsOwnLeftoverIngestFiles) {
  const std::string ingest = dir_.path() + "/db/ingest";
  std::filesystem::create_directories(ingest);
  std::ofstream(ingest + "/12.sst") << "left by a crash";
  std::ofstream(ingest + "/notes.txt") << "a user's";
  Open();
  EXPECT_FALSE(std::filesystem::exists(ingest + "/12.sst"));
  EXPECT_TRUE(std::filesystem::exists(ingest + "/notes.txt"));
  store_.reset();
  std::filesystem::remove(ingest + "/notes.txt");
  std::ofstream(ingest + "/13.sst") << "left by a crash";
  Open();
  EXPECT_FALSE(std::filesystem::exists(ingest)) << "an ingest dir of leftovers alone goes";
}

TEST_F(KvStoreTest, SyncWalSyncsLeavesNoLogFileAliveOrSaysThereIsNoLog) {
  Open();
  for (int i = 0; i < 3; ++i) {
    Put(plain_, fmt::format("k{}", i), "v");
    EXPECT_TRUE(store_->SyncWal().ok());
  }
  ASSERT_TRUE(store_->Flush().ok());
  // The flush leaves only a new, empty log (obsolete ones may go a moment
  // after it returns).
  std::vector<std::string> logs;
  for (int attempt = 0; attempt < 100; ++attempt) {
    logs.clear();
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path() + "/db")) {
      if (entry.path().extension() == ".log" && entry.file_size() > 0) {
        logs.push_back(entry.path().filename().string());
      }
    }
    if (logs.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(logs.empty()) << "log files with data after a flush: "
                            << ::testing::PrintToString(logs);
  Open();
  EXPECT_EQ(Get(plain_, "k2"), "v");
  KvStoreOptions without = Options();
  without.path = dir_.path() + "/nowal";
  without.write_ahead_log = false;
  Open(without);
  EXPECT_EQ(store_->SyncWal().code(), Code::kFailedPrecondition);
}

// What a crash leaves, a last record cut short, still opens by default,
// without that record.
TEST_F(KvStoreTest, AWalCutInItsLastRecordOpensWithoutIt) {
  Open();
  for (int i = 0; i < 20; ++i) Put(plain_, fmt::format("k{:03}", i), std::string(1000, 'v'));
  store_.reset();
  const std::string wal = OnlyWalFile(dir_.path() + "/db");
  ASSERT_FALSE(wal.empty());
  std::filesystem::resize_file(wal, std::filesystem::file_size(wal) - 10);
  Open();
  EXPECT_EQ(Get(plain_, "k018"), std::string(1000, 'v'));
  EXPECT_EQ(Get(plain_, "k019"), "<not found>");
}

// A table file that does not read back makes the reads that reach it
// Corruption, and the store says so from then on (a node's /readyz reads
// it): a probe flipped a byte of the counters' file and /readyz said ready
// while every GET failed.
TEST_F(KvStoreTest, AReadThatMeetsADamagedTableMakesTheStoreUnhealthyForReads) {
  Open();
  for (int i = 0; i < 100; ++i) Put(plain_, fmt::format("k{:03}", i), std::string(100, 'v'));
  ASSERT_TRUE(store_->Flush().ok());
  store_.reset();
  const std::string table = AnyTableFile(dir_.path() + "/db");
  ASSERT_FALSE(table.empty());
  FlipByte(table, 100);  // in the first data block
  Open();
  EXPECT_TRUE(store_->ReadHealth().ok()) << "nothing read yet";
  std::string value;
  Status read = store_->Get(plain_, "k000", &value);
  ASSERT_EQ(read.code(), Code::kCorruption) << read.ToString();
  Status health = store_->ReadHealth();
  EXPECT_EQ(health.code(), Code::kCorruption);
  EXPECT_THAT(health.message(), HasSubstr("the data dir is damaged"));
  EXPECT_TRUE(store_->WriteHealth().ok()) << "writes still go on";
}

// Found by a probe: a damaged table that a compaction met made every
// write fail with "restart catchall once the cause is fixed"; a restart
// mends nothing there. The advice is now the damaged data dir's.
TEST_F(KvStoreTest, ACompactionThatMeetsADamagedTableSaysTheDataDirIsDamaged) {
  Open();
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 100; ++i) Put(plain_, fmt::format("k{:03}", i), std::string(100, 'v'));
    ASSERT_TRUE(store_->Flush().ok());
  }
  store_.reset();
  const std::string table = AnyTableFile(dir_.path() + "/db");
  ASSERT_FALSE(table.empty());
  FlipByte(table, 100);  // in the first data block
  Open();
  Metrics metrics;
  ExportStoreMetrics(store_.get(), &metrics);
  EXPECT_THAT(metrics.Serialize(), HasSubstr("catchall_store_write_failed 0\n"));
  EXPECT_FALSE(store_->CompactColumn(plain_).ok());
  // The gauge an operator alerts on follows.
  EXPECT_THAT(metrics.Serialize(), HasSubstr("catchall_store_write_failed 1\n"));
  Status health = store_->WriteHealth();
  EXPECT_EQ(health.code(), Code::kCorruption) << health.ToString();
  EXPECT_THAT(health.message(), HasSubstr("the data dir is damaged"));
  EXPECT_THAT(health.message(), Not(HasSubstr("once the cause is fixed")));
}

TEST_F(KvStoreTest, MalformedMergeOperandIsAnErrorNotAWrongSum) {
  Open();
  Merge(counters_, "bad", Counters({1}));
  Merge(counters_, "bad", "12345");  // not a multiple of 8 bytes
  std::string v;
  Status s = store_->Get(counters_, "bad", &v);
  EXPECT_FALSE(s.ok()) << "read " << v.size() << " bytes";
}

TEST_F(KvStoreTest, MultiGet) {
  Open();
  Put(plain_, "a", "1");
  Put(plain_, "c", "3");
  std::vector<std::optional<std::string>> values = {std::string("stale")};
  ASSERT_TRUE(store_->MultiGet(plain_, {"a", "b", "c", "a"}, &values).ok());
  ASSERT_EQ(values.size(), 4u);
  EXPECT_EQ(values[0], "1");
  EXPECT_EQ(values[1], std::nullopt);
  EXPECT_EQ(values[2], "3");
  EXPECT_EQ(values[3], "1");
  ASSERT_TRUE(store_->MultiGet(plain_, {}, &values).ok());
  EXPECT_TRUE(values.empty());
  // Merged values are resolved by MultiGet too.
  Merge(counters_, "m", Counters({1}));
  Merge(counters_, "m", Counters({2}));
  ASSERT_TRUE(store_->MultiGet(counters_, {"m", "n"}, &values).ok());
  ASSERT_TRUE(values[0].has_value());
  EXPECT_EQ(DecodeCounters(*values[0]), (std::vector<uint64_t>{3}));
  EXPECT_FALSE(values[1].has_value());
}

// Keys that ascend are handed to RocksDB as sorted (it asserts that they are,
// in builds with assertions); values still come back in the keys' order,
// from the memtable and from files alike, duplicates included. Bytes above
// 0x7f sort after ASCII, as RocksDB's bytewise order has them.
TEST_F(KvStoreTest, MultiGetOfAscendingKeysAnswersEachInPlace) {
  Open();
  Put(plain_, "a", "1");
  Put(plain_, "\x80z", "high");
  ASSERT_TRUE(store_->Flush().ok());
  Put(plain_, "c", "3");
  std::vector<std::optional<std::string>> values;
  ASSERT_TRUE(store_->MultiGet(plain_, {"a", "a", "b", "c", "\x80z"}, &values).ok());
  EXPECT_EQ(values, (std::vector<std::optional<std::string>>{"1", "1", std::nullopt, "3", "high"}));
  ASSERT_TRUE(store_->MultiGet(plain_, {"\x80z", "a"}, &values).ok());
  EXPECT_EQ(values, (std::vector<std::optional<std::string>>{"high", "1"}));
}

// A read of more keys than RocksDB is handed at once (MultiGet goes in
// chunks of a few hundred) still answers every key in its place, whether
// the keys ascend or not, from files and the memtable.
TEST_F(KvStoreTest, MultiGetOfThousandsOfKeysAnswersEachInPlace) {
  Open();
  std::vector<std::string> keys;
  for (int i = 0; i < 1300; ++i) keys.push_back(fmt::format("k{:05d}", i));
  for (int i = 0; i < 1300; ++i) {
    if (i % 3 != 0) Put(plain_, keys[i], fmt::format("v{}", i));
    if (i == 650) ASSERT_TRUE(store_->Flush().ok());
  }
  auto expected = [](int i) -> std::optional<std::string> {
    if (i % 3 == 0) return std::nullopt;
    return fmt::format("v{}", i);
  };
  std::vector<int> order(keys.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  for (bool ascending : {true, false}) {
    if (!ascending) std::reverse(order.begin(), order.end());
    std::vector<std::string_view> asked;
    for (int i : order) asked.emplace_back(keys[i]);
    std::vector<std::optional<std::string>> values;
    ASSERT_TRUE(store_->MultiGet(plain_, asked, &values).ok());
    ASSERT_EQ(values.size(), asked.size());
    for (size_t j = 0; j < order.size(); ++j) {
      EXPECT_EQ(values[j], expected(order[j])) << asked[j] << (ascending ? " ascending" : "");
    }
  }
}

TEST_F(KvStoreTest, BatchAcrossColumnsAppliesTogether) {
  Open();
  KvWriteBatch b;
  b.Put(plain_, "offset", "42");
  b.Merge(counters_, "d", Counters({1, 0}));
  b.Put(log_, "x", "y");
  EXPECT_EQ(b.Count(), 3u);
  EXPECT_GT(b.ByteSize(), 0u);
  ASSERT_TRUE(store_->Write(&b).ok());
  EXPECT_EQ(Get(plain_, "offset"), "42");
  EXPECT_EQ(DecodeCounters(Get(counters_, "d")), (std::vector<uint64_t>{1, 0}));
  EXPECT_EQ(Get(log_, "x"), "y");
  b.Clear();
  EXPECT_EQ(b.Count(), 0u);
  ASSERT_TRUE(store_->Write(&b).ok());  // an empty batch is fine

  KvWriteBatch moved_from;
  moved_from.Put(plain_, "m", "1");
  KvWriteBatch moved = std::move(moved_from);
  EXPECT_EQ(moved.Count(), 1u);
  ASSERT_TRUE(store_->Write(&moved).ok());
  EXPECT_EQ(Get(plain_, "m"), "1");
}

// Writers insert side by side (unordered_write), so a reader may see part of
// a batch while it lands. What the log and the state rely on: once Write has
// returned, every reader sees all of the batch, in every column, even while
// other threads are writing.
TEST_F(KvStoreTest, AFinishedWriteIsWhollyVisibleWhileOthersWrite) {
  Open();
  std::atomic<uint64_t> finished{0};
  std::atomic<bool> stop{false};
  std::atomic<int> violations{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (!stop.load()) {
      const uint64_t done = finished.load();
      if (done == 0) continue;
      std::string a, b;
      Status sa = store_->Get(plain_, "v", &a);
      Status sb = store_->Get(log_, "v", &b);
      if (!sa.ok() || !sb.ok() || DecodeFixed64(a.data()) < done ||
          DecodeFixed64(b.data()) < done) {
        ++violations;
      }
      ++reads;
    }
  });
  // Large batches from another thread, beside the small ones.
  std::thread bulk([&] {
    for (int round = 0; round < 20 && !stop.load(); ++round) {
      KvWriteBatch batch;
      for (int i = 0; i < 5000; ++i) {
        batch.Merge(counters_, fmt::format("d{}", round * 5000 + i), Counters({1, 0}));
      }
      if (!store_->Write(&batch).ok()) ADD_FAILURE() << "bulk write " << round << " failed";
    }
  });
  for (uint64_t i = 1; i <= 3000; ++i) {
    std::string v;
    PutFixed64(&v, i);
    KvWriteBatch batch;
    batch.Put(plain_, "v", v);
    batch.Put(log_, "v", v);
    if (!store_->Write(&batch).ok()) {
      ADD_FAILURE() << "write " << i << " failed";
      break;
    }
    finished.store(i);
  }
  bulk.join();
  stop.store(true);
  reader.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(DecodeCounters(Get(counters_, "d99999")), (std::vector<uint64_t>{1, 0}));
}

TEST_F(KvStoreTest, IteratorRespectsBoundsAndSeeks) {
  Open();
  for (char c = 'a'; c <= 'j'; ++c) Put(log_, std::string(1, c), std::string(1, c) + "-value");

  auto all = store_->NewIterator(log_);
  all->SeekToFirst();
  EXPECT_EQ(Keys(all.get()).size(), 10u);

  auto it = store_->NewIterator(log_, "c", "f");  // [c, f)
  it->SeekToFirst();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->value(), "c-value");
  EXPECT_EQ(Keys(it.get()), (std::vector<std::string>{"c", "d", "e"}));

  it->Seek("a");  // below the lower bound: clamps to it
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "c");
  it->Seek("dd");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "e");
  it->Seek("f");
  EXPECT_FALSE(it->Valid());

  it->SeekForPrev("z");  // above the upper bound: last key inside
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "e");
  it->SeekForPrev("d");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "d");
  it->SeekForPrev("cc");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "c");
  it->SeekForPrev("b");
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());

  auto lower_only = store_->NewIterator(log_, "h");
  lower_only->SeekToFirst();
  EXPECT_EQ(Keys(lower_only.get()), (std::vector<std::string>{"h", "i", "j"}));
  auto upper_only = store_->NewIterator(log_, "", "b");
  upper_only->SeekToFirst();
  EXPECT_EQ(Keys(upper_only.get()), (std::vector<std::string>{"a"}));
  auto empty_range = store_->NewIterator(log_, "x", "z");
  empty_range->SeekToFirst();
  EXPECT_FALSE(empty_range->Valid());
}

TEST_F(KvStoreTest, DeleteRangeIsHalfOpen) {
  Open();
  for (char c = 'a'; c <= 'f'; ++c) Put(log_, std::string(1, c), "v");
  KvWriteBatch b;
  b.DeleteRange(log_, "b", "e");
  ASSERT_TRUE(store_->Write(&b).ok());
  auto it = store_->NewIterator(log_);
  it->SeekToFirst();
  EXPECT_EQ(Keys(it.get()), (std::vector<std::string>{"a", "e", "f"}));
  EXPECT_EQ(Get(log_, "b"), "<not found>");
  EXPECT_EQ(Get(log_, "e"), "v");
}

// MarkKeysAscending is a hint: keys marked ascending but added in any order,
// and a range deletion beside point writes of the same column, land exactly
// as without it (the hint is dropped for a batch with a range deletion).
TEST_F(KvStoreTest, KeysMarkedAscendingLandAsWrittenInAnyOrder) {
  Open();
  for (char c = 'a'; c <= 'f'; ++c) Put(log_, std::string(1, c), "old");
  KvWriteBatch b;
  b.MarkKeysAscending();
  for (const char* k : {"m", "k", "z", "a2", "m"}) b.Put(plain_, k, "v");
  b.Put(log_, "g", "new");
  b.DeleteRange(log_, "b", "e");
  b.Put(log_, "c", "after the range");
  b.Put(log_, "a", "new");
  ASSERT_TRUE(store_->Write(&b).ok());
  auto plain = store_->NewIterator(plain_);
  plain->SeekToFirst();
  EXPECT_EQ(Keys(plain.get()), (std::vector<std::string>{"a2", "k", "m", "z"}));
  auto log = store_->NewIterator(log_);
  log->SeekToFirst();
  EXPECT_EQ(Keys(log.get()), (std::vector<std::string>{"a", "c", "e", "f", "g"}));
  EXPECT_EQ(Get(log_, "a"), "new");
  EXPECT_EQ(Get(log_, "c"), "after the range");
  EXPECT_EQ(Get(log_, "d"), "<not found>");
  // Clear() forgets the mark along with the range deletion.
  b.Clear();
  for (char c = 'p'; c <= 'r'; ++c) b.Put(plain_, std::string(1, c), "v");
  ASSERT_TRUE(store_->Write(&b).ok());
  EXPECT_EQ(Get(plain_, "q"), "v");
}

TEST_F(KvStoreTest, ReopenPersistsEverything) {
  Open();
  Put(plain_, "p", "1");
  Merge(counters_, "c", Counters({9}));
  Put(log_, "l", "2");
  Open();  // closes the first store, opens again
  EXPECT_EQ(Get(plain_, "p"), "1");
  EXPECT_EQ(DecodeCounters(Get(counters_, "c")), (std::vector<uint64_t>{9}));
  EXPECT_EQ(Get(log_, "l"), "2");
  ASSERT_TRUE(store_->Flush().ok());
  Open();
  EXPECT_EQ(Get(plain_, "p"), "1");
  EXPECT_EQ(Get(log_, "l"), "2");
}

// An ingest lands over what the memtables and earlier files hold, deletes
// what it says to, leaves other keys alone, and outlives a reopen.
TEST_F(KvStoreTest, IngestedRunsReplaceAndDeleteAcrossColumnsAndPersist) {
  Open();
  Put(plain_, "a", "old-a");
  Put(plain_, "b", "old-b");
  Put(plain_, "z", "untouched");
  Put(log_, "0", "old-offset");
  ASSERT_TRUE(store_->Flush().ok());
  Put(plain_, "c", "in-memtable");
  SortedRun values{plain_, {{"a", "new-a"}, {"b", std::nullopt}, {"c", "new-c"}, {"d", "new-d"}}};
  SortedRun offsets{log_, {{"0", "new-offset"}}};
  Status s = store_->IngestSorted({values, offsets});
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto expect_ingested = [&] {
    EXPECT_EQ(Get(plain_, "a"), "new-a");
    EXPECT_EQ(Get(plain_, "b"), "<not found>");
    EXPECT_EQ(Get(plain_, "c"), "new-c");
    EXPECT_EQ(Get(plain_, "d"), "new-d");
    EXPECT_EQ(Get(plain_, "z"), "untouched");
    EXPECT_EQ(Get(log_, "0"), "new-offset");
  };
  expect_ingested();
  // RocksDB took the file: nothing of the ingest is left beside the store.
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path() + "/db/ingest"));
  // Later writes land over the ingested values.
  Put(plain_, "a", "newest-a");
  EXPECT_EQ(Get(plain_, "a"), "newest-a");
  Put(plain_, "a", "new-a");
  Open();
  expect_ingested();
}

// The fraction of `path`'s pages in the page cache (mincore).
double ResidentFraction(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return -1;
  struct stat st {};
  ::fstat(fd, &st);
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t size = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return -1;
  std::vector<unsigned char> resident((size + page - 1) / page);
  int rc = ::mincore(map, size, resident.data());
  ::munmap(map, size);
  if (rc != 0) return -1;
  return static_cast<double>(std::count_if(resident.begin(), resident.end(),
                                           [](unsigned char r) { return (r & 1) != 0; })) /
         static_cast<double>(resident.size());
}

// An ingested file stays in the page cache: lookups read it at once, and
// RocksDB's SstFileWriter by default drops its pages every MB (each lookup
// of a domain in it was a disk read). On tmpfs nothing is ever dropped, so
// there the test cannot tell and says so.
TEST_F(KvStoreTest, AnIngestedFileStaysInThePageCache) {
  struct statfs fs {};
  ASSERT_EQ(::statfs(dir_.path().c_str(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC) {
    GTEST_SKIP() << dir_.path() << " is on tmpfs: pages are never dropped";
  }
  Open();
  // ~8 MB of incompressible values: eight of SstFileWriter's 1 MB drops.
  std::vector<std::string> values;
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 8000; ++i) {
    std::string v(1024, '\0');
    for (char& c : v) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift: no compression
      c = static_cast<char>(x);
    }
    values.push_back(std::move(v));
  }
  SortedRun run{plain_, {}};
  std::vector<std::string> keys;
  for (int i = 0; i < 8000; ++i) keys.push_back(fmt::format("{:06}", i));
  for (int i = 0; i < 8000; ++i) run.entries.emplace_back(keys[i], values[i]);
  Status s = store_->IngestSorted({run});
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::string largest;
  uintmax_t largest_size = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path() + "/db")) {
    if (entry.path().extension() == ".sst" && entry.file_size() > largest_size) {
      largest = entry.path().string();
      largest_size = entry.file_size();
    }
  }
  ASSERT_GT(largest_size, 4u << 20) << "no ingested table file in " << dir_.path();
  EXPECT_GT(ResidentFraction(largest), 0.9) << largest;
  EXPECT_EQ(Get(plain_, "004321"), values[4321]);
}

// Keys out of order make the whole ingest fail: no column changes.
TEST_F(KvStoreTest, AnIngestThatFailsChangesNothing) {
  Open();
  Put(plain_, "a", "kept");
  SortedRun offsets{log_, {{"0", "moved"}}};
  SortedRun unsorted{plain_, {{"b", "1"}, {"a", "2"}}};
  Status s = store_->IngestSorted({offsets, unsorted});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(Get(plain_, "a"), "kept");
  EXPECT_EQ(Get(plain_, "b"), "<not found>");
  EXPECT_EQ(Get(log_, "0"), "<not found>");
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path() + "/db/ingest"));
  // Empty runs are nothing to do.
  EXPECT_TRUE(store_->IngestSorted({SortedRun{plain_, {}}}).ok());
}

TEST_F(KvStoreTest, SyncWritesPersist) {
  KvStoreOptions options = Options();
  options.sync_writes = true;
  Open(options);
  Put(plain_, "k", "v");
  Open(options);
  EXPECT_EQ(Get(plain_, "k"), "v");
}

// Opens a store with `options`, writes x=1 (plain) and y=[1] (counters),
// flushes, writes x=2 and z=2, and dies as kill -9 would: no close, no
// flush. Runs in a fresh process (a death test re-executes the binary), so
// that no RocksDB thread of this process is copied half-way.
void WriteFlushWriteAndDie(const KvStoreOptions& options) {
  std::unique_ptr<KvStore> store;
  if (!KvStore::Open(options, &store).ok()) _exit(2);
  Column plain = store->GetColumn("plain");
  KvWriteBatch first;
  first.Put(plain, "x", "1");
  first.Put(store->GetColumn("counters"), "y", Counters({1}));
  if (!store->Write(&first).ok() || !store->Flush().ok()) _exit(3);
  KvWriteBatch second;
  second.Put(plain, "x", "2");
  second.Put(plain, "z", "2");
  if (!store->Write(&second).ok()) _exit(4);
  _exit(0);
}

// kill -9 of a process that wrote through `options` after its last flush.
// A death test in the "threadsafe" style re-runs the calling test's body in
// a fresh process, whose fixture has a directory of its own: the child
// takes the parent's from the environment it inherits.
void CrashAfterAFlushAndAWrite(KvStoreOptions* options, const std::string& dir) {
  constexpr const char* kDirVariable = "CATCHALL_KV_CRASH_TEST_DIR";
  if (getenv(kDirVariable) == nullptr) setenv(kDirVariable, dir.c_str(), 1);
  options->path = std::string(getenv(kDirVariable)) + "/db";
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(WriteFlushWriteAndDie(*options), ::testing::ExitedWithCode(0), "");
  unsetenv(kDirVariable);
}

TEST_F(KvStoreTest, WithoutTheWriteAheadLogACrashKeepsTheLastFlushInEveryColumn) {
  KvStoreOptions options = Options();
  options.write_ahead_log = false;
  options.sync_writes = true;  // ignored without the log
  CrashAfterAFlushAndAWrite(&options, dir_.path());
  Open(options);
  EXPECT_EQ(Get(plain_, "x"), "1");
  EXPECT_EQ(Get(plain_, "z"), "<not found>");
  EXPECT_EQ(DecodeCounters(Get(counters_, "y")), (std::vector<uint64_t>{1}));
}

// The same crash with the log (the default) keeps the last write: the test
// above tells the two apart.
TEST_F(KvStoreTest, WithTheWriteAheadLogACrashKeepsEveryWrite) {
  KvStoreOptions options = Options();
  CrashAfterAFlushAndAWrite(&options, dir_.path());
  Open(options);
  EXPECT_EQ(Get(plain_, "x"), "2");
  EXPECT_EQ(Get(plain_, "z"), "2");
  EXPECT_EQ(DecodeCounters(Get(counters_, "y")), (std::vector<uint64_t>{1}));
}

TEST_F(KvStoreTest, OpeningWithoutAColumnThatExistsOnDiskFails) {
  Open();
  Put(plain_, "p", "1");
  store_.reset();
  KvStoreOptions fewer = Options();
  fewer.columns.pop_back();  // "expiring" exists on disk
  std::unique_ptr<KvStore> store;
  Status s = KvStore::Open(fewer, &store);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(store, nullptr);
  EXPECT_THAT(s.message(), HasSubstr(fewer.path));
}

TEST_F(KvStoreTest, OpeningWithAnExtraColumnCreatesIt) {
  Open();
  Put(plain_, "p", "1");
  store_.reset();
  KvStoreOptions more = Options();
  more.columns.push_back({"new", ColumnKind::kPlain, {}});
  Open(more);
  Column added = store_->GetColumn("new");
  ASSERT_TRUE(added.valid());
  EXPECT_EQ(Get(added, "p"), "<not found>");
  Put(added, "x", "y");
  EXPECT_EQ(Get(added, "x"), "y");
  EXPECT_EQ(Get(plain_, "p"), "1");
}

TEST_F(KvStoreTest, OpenFailsWhenThePathIsAFile) {
  std::string file = dir_.path() + "/a-file";
  std::ofstream(file) << "not a directory";
  KvStoreOptions options = Options();
  options.path = file + "/db";
  std::unique_ptr<KvStore> store;
  Status s = KvStore::Open(options, &store);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(file));
}

TEST_F(KvStoreTest, StatisticsGrowWithData) {
  Open();
  KvWriteBatch b;
  for (int i = 0; i < 1000; ++i) b.Put(plain_, "key" + std::to_string(i), std::string(100, 'v'));
  ASSERT_TRUE(store_->Write(&b).ok());
  EXPECT_GT(store_->EstimateKeys(plain_), 0u);
  EXPECT_GT(store_->LiveBytes(plain_), 0u);
  EXPECT_GT(store_->MemoryBytes(), 0u);
  EXPECT_EQ(store_->EstimateKeys(log_), 0u);
}

TEST_F(KvStoreTest, CompactionThreadsYieldTheCpuWhenAsked) {
  KvStoreOptions options = Options();
  options.compaction_low_priority = true;
  options.background_write_rate = 64 << 20;
  Open(options);
  for (int file = 0; file < 2; ++file) {
    KvWriteBatch b;
    for (int i = 0; i < 1000; ++i) b.Put(plain_, "key" + std::to_string(i), std::to_string(file));
    ASSERT_TRUE(store_->Write(&b).ok());
    ASSERT_TRUE(store_->Flush().ok());
  }
  // A compaction runs on the low-priority pool, which lowers its thread's
  // priority before it takes the job.
  ASSERT_TRUE(store_->CompactColumn(plain_).ok());
  std::vector<int> nice = testing::NiceOfThreads("rocksdb:low");
  ASSERT_FALSE(nice.empty()) << "no compaction thread found";
  for (int n : nice) EXPECT_EQ(n, 19);
  for (int n : testing::NiceOfThreads("rocksdb:high")) {
    EXPECT_EQ(n, 0) << "flushes must keep their priority";
  }
  EXPECT_EQ(Get(plain_, "key7"), "1");
  // The manual compaction may have scheduled another one behind it; both
  // end soon, and then nothing is left to do.
  KvBackgroundStats stats = store_->BackgroundStats();
  for (int i = 0; i < 1000 && stats.running_compactions > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    stats = store_->BackgroundStats();
  }
  EXPECT_EQ(stats.running_compactions, 0u);
  EXPECT_EQ(stats.pending_compaction_bytes, 0u) << "one compacted file leaves nothing to do";
  EXPECT_EQ(stats.write_stalls, 0u);
}

// Opens a store with the flush threads lowered, flushes a write, and exits
// 0 if the flush thread runs at nice 19, the compaction threads (not asked
// to) at 0, and the write reads back; else prints why and exits 1.
void FlushWithLoweredFlushThreadsAndExit(KvStoreOptions options) {
  options.flush_low_priority = true;
  std::unique_ptr<KvStore> store;
  if (!KvStore::Open(options, &store).ok()) _exit(2);
  Column plain = store->GetColumn("plain");
  KvWriteBatch b;
  for (int i = 0; i < 1000; ++i) b.Put(plain, "key" + std::to_string(i), "v");
  // A flush runs on the high-priority pool, which lowers its thread's
  // priority before it takes the job.
  if (!store->Write(&b).ok() || !store->Flush().ok()) _exit(3);
  bool ok = true;
  std::vector<int> flush = testing::NiceOfThreads("rocksdb:high");
  if (flush.empty()) {
    fprintf(stderr, "no flush thread found\n");
    ok = false;
  }
  for (int n : flush) {
    if (n != 19) fprintf(stderr, "a flush thread at nice %d, not 19\n", n);
    ok = ok && n == 19;
  }
  for (int n : testing::NiceOfThreads("rocksdb:low")) {
    if (n != 0) fprintf(stderr, "a compaction thread at nice %d, though not asked\n", n);
    ok = ok && n == 0;
  }
  std::string value;
  if (!store->Get(plain, "key7", &value).ok() || value != "v") {
    fprintf(stderr, "key7 did not read back\n");
    ok = false;
  }
  _exit(ok ? 0 : 1);
}

// Lowering a pool's priority is for the whole process (Env::Default()'s
// pools), so it runs in a child (a "threadsafe" death test re-executes the
// binary): the other tests of this binary, when run in one process, keep
// their threads' priorities.
TEST_F(KvStoreTest, FlushThreadsYieldTheCpuWhenAsked) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(FlushWithLoweredFlushThreadsAndExit(Options()), ::testing::ExitedWithCode(0), "");
}

// A kExpiring value: an epoch-ms timestamp `age` ago, then a payload.
std::string Stamped(std::chrono::milliseconds age) {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  std::string v;
  PutFixed64(&v, static_cast<uint64_t>((now - age).count()));
  v += "payload";
  return v;
}

TEST_F(KvStoreTest, CompactionDropsExpiredEntriesAndKeepsLiveOnes) {
  Open();
  Column expiring = store_->GetColumn("expiring");
  ASSERT_TRUE(expiring.valid());
  using std::chrono::hours;
  using std::chrono::minutes;
  Put(expiring, "expired", Stamped(hours(2)));          // ttl is 1 h
  Put(expiring, "just-expired", Stamped(minutes(61)));  // a minute past it
  Put(expiring, "live", Stamped(minutes(50)));
  Put(expiring, "fresh", Stamped(minutes(0)));
  Put(expiring, "short", "abc");  // no timestamp: never dropped
  ASSERT_TRUE(store_->Flush().ok());
  Status s = store_->CompactColumn(expiring);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Get(expiring, "expired"), "<not found>");
  EXPECT_EQ(Get(expiring, "just-expired"), "<not found>");
  EXPECT_NE(Get(expiring, "live"), "<not found>");
  EXPECT_NE(Get(expiring, "fresh"), "<not found>");
  EXPECT_EQ(Get(expiring, "short"), "abc");
  // Other kinds of column have no filter: old-looking values stay.
  Put(plain_, "old", Stamped(hours(2)));
  ASSERT_TRUE(store_->Flush().ok());
  ASSERT_TRUE(store_->CompactColumn(plain_).ok());
  EXPECT_NE(Get(plain_, "old"), "<not found>");
}

TEST(EncodingTest, Fixed64IsLittleEndian) {
  std::string s;
  PutFixed64(&s, 0x0102030405060708ULL);
  EXPECT_EQ(s, std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{1} << 63,
                     std::numeric_limits<uint64_t>::max()}) {
    std::string e;
    PutFixed64(&e, v);
    ASSERT_EQ(e.size(), 8u);
    EXPECT_EQ(DecodeFixed64(e.data()), v);
  }
}

TEST(EncodingTest, BigEndianRoundTrips) {
  std::string s;
  PutBigEndian32(&s, 0x01020304U);
  EXPECT_EQ(s, "\x01\x02\x03\x04");
  EXPECT_EQ(DecodeBigEndian32(s.data()), 0x01020304U);
  s.clear();
  PutBigEndian64(&s, 0x0102030405060708ULL);
  EXPECT_EQ(s, std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(DecodeBigEndian64(s.data()), 0x0102030405060708ULL);
  for (uint32_t v : {0U, 1U, 0x80U, 0xFFFFFFFFU}) {
    std::string e;
    PutBigEndian32(&e, v);
    EXPECT_EQ(DecodeBigEndian32(e.data()), v);
  }
}

TEST(EncodingTest, BigEndianKeysSortNumerically) {
  std::vector<uint64_t> values = {
      0,          1,         2,    9, 10, 255, 256, 65535, 65536, 1ULL << 32, (1ULL << 32) + 1,
      1ULL << 63, ~0ULL - 1, ~0ULL};
  std::vector<std::string> keys;
  for (uint64_t v : values) {
    std::string k;
    PutBigEndian32(&k, static_cast<uint32_t>(v % 3));  // a partition prefix
    PutBigEndian64(&k, v);
    keys.push_back(k);
  }
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());  // bytewise, like RocksDB
  for (size_t i = 1; i < sorted.size(); ++i) {
    uint32_t pa = DecodeBigEndian32(sorted[i - 1].data());
    uint32_t pb = DecodeBigEndian32(sorted[i].data());
    uint64_t va = DecodeBigEndian64(sorted[i - 1].data() + 4);
    uint64_t vb = DecodeBigEndian64(sorted[i].data() + 4);
    EXPECT_TRUE(pa < pb || (pa == pb && va < vb)) << i;
  }
}

TEST_F(KvStoreTest, BigEndianKeysIterateInNumericOrder) {
  Open();
  std::vector<uint64_t> values = {70000, 3, 256, 1ULL << 40, 0, 255, 65536, 1};
  KvWriteBatch b;
  for (uint64_t v : values) {
    std::string k;
    PutBigEndian64(&k, v);
    b.Put(log_, k, std::to_string(v));
  }
  ASSERT_TRUE(store_->Write(&b).ok());
  std::sort(values.begin(), values.end());
  auto it = store_->NewIterator(log_);
  std::vector<uint64_t> got;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    got.push_back(DecodeBigEndian64(it->key().data()));
  }
  EXPECT_EQ(got, values);
}

// A flush that meets a full disk stops RocksDB's writes (a background
// error) before any write of catchall's has failed: the store's health
// said OK, so /readyz said 200 on a quiet node until the next write
// failed (found by a review, thirteenth session). Needs root for a small
// tmpfs.
TEST_F(KvStoreTest, AFlushThatMeetsAFullDiskMakesTheStoreUnhealthy) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs (CI runs as root)";
  std::string disk = dir_.path() + "/disk";
  std::filesystem::create_directories(disk);
  ASSERT_EQ(std::system(("mount -t tmpfs -o size=8m tmpfs " + disk).c_str()), 0);
  struct Unmount {
    std::string path;
    ~Unmount() { (void)std::system(("umount -l " + path).c_str()); }
  } unmount{disk};
  KvStoreOptions options = Options();
  options.path = disk + "/db";
  Open(options);
  // 1 MiB in the memtable (and its write-ahead log), not yet in a table file.
  std::string value(1024, 'x');
  for (int i = 0; i < 1024; ++i) Put(plain_, fmt::format("key-{:05}", i), value);
  ASSERT_TRUE(store_->WriteHealth().ok());
  {
    std::ofstream filler(disk + "/filler", std::ios::binary);
    std::string block(1 << 16, '\0');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  Status flushed = store_->Flush();
  EXPECT_FALSE(flushed.ok()) << "the flush found room: the test showed nothing";
  Status health = store_->WriteHealth();
  EXPECT_EQ(health.code(), Code::kNoSpace) << health.ToString();
  EXPECT_THAT(health.message(), HasSubstr("flushing")) << health.ToString();
  EXPECT_EQ(Get(plain_, "key-00007"), value) << "reads go on";
  store_.reset();  // closed before the tmpfs goes
}

}  // namespace
}  // namespace catchall
