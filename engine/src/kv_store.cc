#include "engine/kv_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/rate_limiter.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <vector>

#include "background_error_listener.h"
#include "rocks_info_log.h"
#include "write_stall_listener.h"

namespace catchall {

void PutFixed64(std::string* dst, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  dst->append(buf, 8);
}

uint64_t DecodeFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void PutBigEndian32(std::string* dst, uint32_t v) {
  char buf[4];
  for (int i = 0; i < 4; ++i) buf[i] = static_cast<char>((v >> (8 * (3 - i))) & 0xff);
  dst->append(buf, 4);
}

void PutBigEndian64(std::string* dst, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>((v >> (8 * (7 - i))) & 0xff);
  dst->append(buf, 8);
}

uint32_t DecodeBigEndian32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint64_t DecodeBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

namespace {

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }
rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  if (s.IsNoSpace()) return Status::NoSpace(s.ToString());
  if (s.IsIOError()) return Status::IoError(s.ToString());
  if (s.IsInvalidArgument()) return Status::InvalidArgument(s.ToString());
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return Status::Unavailable(s.ToString());
  return Status::Internal(s.ToString());
}

// Element-wise addition of little-endian uint64 vectors; operands of
// different lengths are treated as zero-extended.
class AddCountersOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* /*logger*/) const override {
    if (value.size() % 8 != 0 || (existing && existing->size() % 8 != 0)) return false;
    size_t n = std::max(value.size(), existing ? existing->size() : size_t{0}) / 8;
    new_value->clear();
    new_value->reserve(n * 8);
    for (size_t i = 0; i < n; ++i) {
      uint64_t a =
          (existing && i * 8 < existing->size()) ? DecodeFixed64(existing->data() + i * 8) : 0;
      uint64_t b = i * 8 < value.size() ? DecodeFixed64(value.data() + i * 8) : 0;
      PutFixed64(new_value, a + b);
    }
    return true;
  }
  const char* Name() const override { return "catchall.AddCounters"; }
};

// Drops kExpiring entries whose timestamp is older than now - ttl.
class ExpiryFilter : public rocksdb::CompactionFilter {
 public:
  explicit ExpiryFilter(std::chrono::milliseconds ttl) : ttl_(ttl) {}
  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    if (value.size() < 8) return false;
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    auto ts = static_cast<int64_t>(DecodeFixed64(value.data()));
    return ts < now - ttl_.count();
  }
  const char* Name() const override { return "catchall.ExpiryFilter"; }

 private:
  std::chrono::milliseconds ttl_;
};

class RocksIterator : public KvIterator {
 public:
  RocksIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string lower,
                std::string upper)
      : lower_(std::move(lower)), upper_(std::move(upper)) {
    rocksdb::ReadOptions ro;
    if (!lower_.empty()) {
      lower_slice_ = ToSlice(lower_);
      ro.iterate_lower_bound = &lower_slice_;
    }
    if (!upper_.empty()) {
      upper_slice_ = ToSlice(upper_);
      ro.iterate_upper_bound = &upper_slice_;
    }
    it_.reset(db->NewIterator(ro, cf));
  }
  void Seek(std::string_view key) override { it_->Seek(ToSlice(key)); }
  void SeekForPrev(std::string_view key) override { it_->SeekForPrev(ToSlice(key)); }
  void SeekToFirst() override { it_->SeekToFirst(); }
  bool Valid() const override { return it_->Valid(); }
  void Next() override { it_->Next(); }
  std::string_view key() const override { return View(it_->key()); }
  std::string_view value() const override { return View(it_->value()); }
  Status status() const override { return FromRocks(it_->status()); }

 private:
  // Bounds must outlive the iterator (ReadOptions keeps pointers to them).
  std::string lower_, upper_;
  rocksdb::Slice lower_slice_, upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

}  // namespace

struct KvWriteBatch::Rep {
  rocksdb::WriteBatch batch;
  bool keys_ascend = false;
  bool has_range_delete = false;
  // The first change RocksDB refused to stage (a key or value of 4 GiB or
  // more): KvStore::Write then writes nothing and says why. Staged changes
  // used to be assumed, so a refused value went missing from a write that
  // still succeeded (a review, seventeenth session).
  Status refused;

  void Note(const rocksdb::Status& s) {
    if (!s.ok() && refused.ok()) {
      refused = Status::InvalidArgument(
          fmt::format("a change of the write was refused: {}", s.ToString()));
    }
  }
};

KvWriteBatch::KvWriteBatch() : rep_(std::make_unique<Rep>()) {}
KvWriteBatch::~KvWriteBatch() = default;
KvWriteBatch::KvWriteBatch(KvWriteBatch&&) noexcept = default;
KvWriteBatch& KvWriteBatch::operator=(KvWriteBatch&&) noexcept = default;

// The RocksDB implementation of KvStore.
class RocksKvStore final : public KvStore {
 public:
  static Status Open(const KvStoreOptions& options, std::unique_ptr<KvStore>* store);
  ~RocksKvStore() override {
    if (db_) {
      for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
      db_->Close().PermitUncheckedError();
      db_.reset();
    }
    if (dir_lock_ >= 0) close(dir_lock_);  // releases the directory's lock
  }

  Column GetColumn(std::string_view name) const override {
    for (size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return MakeColumn(handles_[i]);
    }
    return Column();
  }
  Status Get(Column column, std::string_view key, std::string* value) const override;
  Status MultiGet(Column column, const std::vector<std::string_view>& keys,
                  std::vector<std::optional<std::string>>* values) const override;
  Status Write(KvWriteBatch* batch) override;
  Status IngestSorted(const std::vector<SortedRun>& runs) override;
  Status WriteHealth() const override {
    {
      std::lock_guard<std::mutex> lock(failure_mu_);
      if (!write_failure_.ok()) return write_failure_;
    }
    Status background = background_errors_->error();
    if (background.ok()) return background;
    // A table that does not read back stays so across restarts (a probe
    // followed the old advice to restart, in vain).
    std::string_view advice = "restart catchall once the cause is fixed";
    if (background.code() == Code::kNoSpace) advice = "free disk space and restart catchall";
    if (background.code() == Code::kCorruption) {
      advice =
          "the data dir is damaged, and a restart does not mend it: keep it aside and restore a "
          "backup, or for a cluster role start on an empty dir, which restores from Kafka "
          "(docs/operations.md, \"A damaged data dir\")";
    }
    return Status(background.code(), fmt::format("{}; {}", background.message(), advice));
  }
  Status ReadHealth() const override {
    std::lock_guard<std::mutex> lock(failure_mu_);
    return read_failure_;
  }
  std::unique_ptr<KvIterator> NewIterator(Column column, std::string lower,
                                          std::string upper) const override;
  Status Flush() override;
  Status SyncWal() override;
  Status CompactColumn(Column column) override;
  uint64_t EstimateKeys(Column column) const override;
  uint64_t LiveBytes(Column column) const override;
  uint64_t MemoryBytes() const override;
  KvBackgroundStats BackgroundStats() const override;
  bool WritesMayWait() const override { return sync_ || stalls_->stalled(); }

 private:
  rocksdb::ColumnFamilyHandle* Cf(Column column) const {
    return static_cast<rocksdb::ColumnFamilyHandle*>(ColumnHandle(column));
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<rocksdb::CompactionFilter>> filters_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<WriteStallListener> stalls_;
  std::shared_ptr<BackgroundErrorListener> background_errors_;
  bool sync_ = false;
  bool disable_wal_ = false;
  int dir_lock_ = -1;  // the data directory, flock()ed while the store is open
  // The store's directory, where its write-ahead log files are too.
  std::string path_;
  // Where IngestSorted writes its table files before RocksDB takes them.
  std::string ingest_dir_;
  std::atomic<uint64_t> ingest_files_{0};
  // Records a Corruption `read` met in read_failure_; returns `read`.
  Status NoteRead(Status read) const;

  mutable std::mutex failure_mu_;
  Status write_failure_;         // GUARDED_BY(failure_mu_)
  mutable Status read_failure_;  // GUARDED_BY(failure_mu_)
};

namespace {
rocksdb::ColumnFamilyHandle* Cf(void* handle) {
  return static_cast<rocksdb::ColumnFamilyHandle*>(handle);
}
}  // namespace

void KvWriteBatch::Put(Column column, std::string_view key, std::string_view value) {
  rep_->Note(rep_->batch.Put(Cf(column.handle_), ToSlice(key), ToSlice(value)));
}
void KvWriteBatch::Merge(Column column, std::string_view key, std::string_view value) {
  rep_->Note(rep_->batch.Merge(Cf(column.handle_), ToSlice(key), ToSlice(value)));
}
void KvWriteBatch::Delete(Column column, std::string_view key) {
  rep_->Note(rep_->batch.Delete(Cf(column.handle_), ToSlice(key)));
}
void KvWriteBatch::DeleteRange(Column column, std::string_view begin, std::string_view end) {
  rep_->Note(rep_->batch.DeleteRange(Cf(column.handle_), ToSlice(begin), ToSlice(end)));
  rep_->has_range_delete = true;
}
void KvWriteBatch::MarkKeysAscending() { rep_->keys_ascend = true; }
size_t KvWriteBatch::Count() const { return rep_->batch.Count(); }
size_t KvWriteBatch::ByteSize() const { return rep_->batch.GetDataSize(); }
void KvWriteBatch::Clear() {
  rep_->batch.Clear();
  rep_->keys_ascend = false;
  rep_->has_range_delete = false;
  rep_->refused = Status::Ok();
}

namespace {

// Whether `name` is a file RocksDB makes and deletes as its own once it
// opens a store in its directory: numbered logs, tables and blobs,
// MANIFEST and OPTIONS files. MANIFEST-000001 alone is what a creation cut
// short (a full disk at the first start) leaves, and opens again.
bool IsStoreFile(const std::string& name) {
  auto numbered = [&](std::string_view prefix, std::string_view suffix) {
    if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) ||
        !name.ends_with(suffix)) {
      return false;
    }
    std::string_view digits(name);
    digits = digits.substr(prefix.size(), digits.size() - prefix.size() - suffix.size());
    return std::all_of(digits.begin(), digits.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
  };
  return numbered("", ".log") || numbered("", ".sst") || numbered("", ".blob") ||
         (numbered("MANIFEST-", "") && name != "MANIFEST-000001") || numbered("OPTIONS-", "");
}

// Without CURRENT, RocksDB (create_if_missing) starts an empty store in the
// directory and deletes the files of the one that was there: a probe
// removed CURRENT from a data dir of 60,000 acknowledged events, and the
// server started ready with every count at 0 and every table file gone; a
// --data-dir pointed at a directory holding an unrelated 000001.log lost
// that file. Refused instead, before anything is written.
Status CheckStoreFilesHaveCurrent(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::path(path) / "CURRENT", ec)) return Status::Ok();
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
    std::string name = entry.path().filename().string();
    if (IsStoreFile(name)) found.push_back(std::move(name));
  }
  if (ec) {
    return Status::IoError(fmt::format("cannot list data directory '{}': {}", path, ec.message()));
  }
  if (found.empty()) return Status::Ok();  // new, or a creation cut short
  std::sort(found.begin(), found.end());   // tables and logs first: the data
  const size_t count = found.size();
  found.resize(std::min<size_t>(count, 3));
  return Status::Corruption(fmt::format(
      "data directory '{}' holds {} file(s) of a store ({}{}) but no CURRENT file, which names "
      "the store's MANIFEST: opening it would start an empty store and delete them. The data "
      "dir is damaged (docs/operations.md, \"A damaged data dir\": keep it aside and restore "
      "a backup, or for a cluster role start on an empty dir, which restores from Kafka), or it "
      "is not a catchall data dir: point --data-dir at an empty or new one",
      path, count, fmt::join(found, ", "), count > found.size() ? ", ..." : ""));
}

}  // namespace

Status KvStore::Open(const KvStoreOptions& options, std::unique_ptr<KvStore>* store) {
  return RocksKvStore::Open(options, store);
}

Status RocksKvStore::Open(const KvStoreOptions& options, std::unique_ptr<KvStore>* store) {
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    // A symbolic link to nothing made it "File exists" (a black-box probe,
    // twelfth session): say where it points.
    std::error_code link_error;
    std::filesystem::path target = std::filesystem::read_symlink(options.path, link_error);
    if (!link_error && !std::filesystem::exists(options.path, link_error)) {
      return Status::IoError(fmt::format(
          "cannot create data directory '{}': it is a symbolic link to '{}', which does not "
          "exist; create that directory or point the link elsewhere",
          options.path, target.string()));
    }
    return Status::IoError(
        fmt::format("cannot create data directory '{}': {}", options.path, ec.message()));
  }
  std::unique_ptr<RocksKvStore> rep(new RocksKvStore());
  // RocksDB locks its LOCK file; deleting that file let a second process
  // open the same dir (a probe: both wrote, and the store then failed to
  // open, its files gone under each other). A lock on the directory itself
  // cannot be deleted away; held until the store is destroyed.
  rep->path_ = options.path;
  rep->dir_lock_ = open(options.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rep->dir_lock_ < 0 || flock(rep->dir_lock_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    if (error == EWOULDBLOCK) {
      return Status::FailedPrecondition(fmt::format(
          "cannot open store '{}': the directory is locked by another process", options.path));
    }
    return Status::IoError(fmt::format("cannot open store '{}': cannot lock the directory: {}",
                                       options.path, std::system_category().message(error)));
  }
  CATCHALL_RETURN_IF_ERROR(CheckStoreFilesHaveCurrent(options.path));
  rep->disable_wal_ = !options.write_ahead_log;
  rep->sync_ = options.sync_writes && options.write_ahead_log;
  rep->cache_ = rocksdb::NewLRUCache(options.block_cache_bytes);

  rocksdb::DBOptions db_options;
  // Without the write-ahead log, only flushes make writes durable; flushing
  // the columns one by one could leave one column ahead of another after a
  // crash (a checkpoint in the offsets column newer than the counters it
  // describes).
  db_options.atomic_flush = !options.write_ahead_log;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = std::max(1, options.background_jobs);
  rep->stalls_ = std::make_shared<WriteStallListener>();
  db_options.listeners.push_back(rep->stalls_);
  rep->background_errors_ = std::make_shared<BackgroundErrorListener>();
  db_options.listeners.push_back(rep->background_errors_);
  if (options.background_write_rate > 0) {
    // Auto-tuned: the limit moves between a twentieth of the rate and the
    // rate itself with the backlog, so that quiet times compact slowly and
    // a backlog still drains.
    db_options.rate_limiter.reset(rocksdb::NewGenericRateLimiter(
        static_cast<int64_t>(options.background_write_rate), /*refill_period_us=*/100'000,
        /*fairness=*/10, rocksdb::RateLimiter::Mode::kWritesOnly, /*auto_tuned=*/true));
  }
  // Env::Default()'s pools are the process's: one store per process.
  auto lower = [](rocksdb::Env::Priority pool, std::string_view threads) -> Status {
    rocksdb::Status lowered =
        rocksdb::Env::Default()->LowerThreadPoolCPUPriority(pool, rocksdb::CpuPriority::kLow);
    if (lowered.ok()) return Status::Ok();
    return Status::FailedPrecondition(
        fmt::format("cannot lower the {} threads' priority: {}", threads, lowered.ToString()));
  };
  if (options.compaction_low_priority) {
    CATCHALL_RETURN_IF_ERROR(lower(rocksdb::Env::LOW, "compaction"));
  }
  if (options.flush_low_priority) {
    CATCHALL_RETURN_IF_ERROR(lower(rocksdb::Env::HIGH, "flush"));
  }
  db_options.max_total_wal_size = 4 * options.write_buffer_bytes;
  db_options.keep_log_file_num = 3;
  db_options.max_log_file_size = 16 << 20;
  // RocksDB's own info log aborts the process on the line after a failed
  // write (rocks_info_log.h), which a full disk makes certain.
  db_options.info_log =
      std::make_shared<RocksInfoLog>(options.path, db_options.max_log_file_size,
                                     db_options.keep_log_file_num, db_options.info_log_level);
  // A last record cut short (what a crash leaves) is dropped; damage before
  // the end fails the open (see the fallback below Open, and
  // KvStoreOptions::recover_damaged_wal).
  db_options.wal_recovery_mode = options.recover_damaged_wal
                                     ? rocksdb::WALRecoveryMode::kPointInTimeRecovery
                                     : rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // Writers insert into the memtables side by side, so that a small write
  // (a group commit of PUTs) does not wait for a large one (a commit of
  // thousands of counters) to finish its inserts. The price is that a
  // snapshot or iterator may see a later write before an earlier one lands;
  // nothing here needs more: every reader reads what finished writing
  // before (the log up to its published end, the state of its own writes),
  // and counters are independent of each other. Atomicity after a crash
  // is the write-ahead log's, unchanged.
  db_options.unordered_write = true;

  auto supported = rocksdb::GetSupportedCompressions();
  auto has = [&](rocksdb::CompressionType t) {
    return std::find(supported.begin(), supported.end(), t) != supported.end();
  };
  rocksdb::CompressionType fast =
      has(rocksdb::kLZ4Compression) ? rocksdb::kLZ4Compression : rocksdb::kSnappyCompression;
  rocksdb::CompressionType strong = has(rocksdb::kZSTD) ? rocksdb::kZSTD : fast;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  for (const ColumnSpec& spec : options.columns) {
    rocksdb::ColumnFamilyOptions cf;
    cf.write_buffer_size = options.write_buffer_bytes;
    cf.max_write_buffer_number = 4;
    cf.compression = fast;
    cf.bottommost_compression = strong;
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rep->cache_;
    // Index and bloom filter blocks stay in the table readers, always in
    // memory (~1.25 bytes per key for the filter): in the shared block
    // cache they were evicted by data blocks and log scans, and with ten
    // million domains every lookup then re-read and re-checksummed a
    // multi-megabyte filter block (~1 ms per GET).
    table.cache_index_and_filter_blocks = false;
    table.format_version = 5;
    // A bloom filter over the memtable as well: most lookups (an id never
    // seen, a domain not yet counted) miss, and without it each miss walks
    // the memtable's skiplist. 2% of the memtable's size: a counter or id
    // entry takes 45-80 bytes there, so that is 7-13 bits per key (about 1%
    // false positives). At 10% (36-64 bits per key) each memtable's filter
    // was 6.4 MB, and setting its bits on insert, a cache miss each, was
    // ~4.5% of a cluster aggregator's CPU (perf, uniform drain); 2% took
    // 2-3% off its CPU per event, and lookups that miss cost the same
    // (catchall-micro CounterStoreGet/missing 172-173 ns against 175-183).
    cf.memtable_prefix_bloom_size_ratio = spec.kind == ColumnKind::kLog ? 0 : 0.02;
    cf.memtable_whole_key_filtering = spec.kind != ColumnKind::kLog;
    switch (spec.kind) {
      case ColumnKind::kCounters:
        cf.merge_operator = std::make_shared<AddCountersOperator>();
        table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
        cf.optimize_filters_for_hits = false;
        break;
      case ColumnKind::kExpiring: {
        auto filter = std::make_unique<ExpiryFilter>(spec.ttl);
        cf.compaction_filter = filter.get();
        rep->filters_.push_back(std::move(filter));
        table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
        break;
      }
      case ColumnKind::kLog:
        table.block_size = 64 << 10;
        // Log records are deleted after retention, yet each flush spans
        // every partition and so overlaps all of L1: compactions rewrite
        // the log again and again. ZSTD there cost ~6 ms of CPU per MB
        // (perf and RocksDB's LOG after a 30M-event load); LZ4 on every
        // level keeps the rewrite cheap (docs/benchmarks.md, "the tail").
        cf.bottommost_compression = fast;
        break;
      case ColumnKind::kPlain: table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10)); break;
    }
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    descriptors.emplace_back(spec.name, cf);
    rep->names_.push_back(spec.name);
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &raw);
  if (s.IsCorruption() && !options.sync_writes &&
      db_options.wal_recovery_mode != rocksdb::WALRecoveryMode::kPointInTimeRecovery) {
    // Without a sync per write, a power loss (or a volume snapshot) can
    // leave a page of the log unwritten before one that was: damage before
    // the end that no crash of the process leaves. Refusing to start there
    // would keep a default node down after every power cut, so the store
    // opens as of the damage, and says so where an operator looks; with
    // sync_writes every acknowledged write was on disk, and such damage is
    // refused (recover_damaged_wal accepts it).
    const std::string damage = s.ToString();
    db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    handles.clear();
    s = rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &raw);
    if (s.ok()) {
      spdlog::error(
          "store '{}': its write-ahead log is damaged before its end ({}); opened as of the "
          "damage: the writes after it are lost (acknowledged events among them, unless a power "
          "loss with storage.sync_writes=false left them unwritten anyway). docs/operations.md, "
          "\"A damaged data dir\"",
          options.path, damage);
    }
  }
  if (!s.ok()) {
    // Columns that exist on disk but are not listed make Open fail; that
    // means the directory belongs to another role or version.
    return Status(FromRocks(s).code(),
                  fmt::format("cannot open store '{}': {}", options.path, s.ToString()));
  }
  rep->db_.reset(raw);
  // handles[0] is "default", which we do not use.
  rep->db_->DestroyColumnFamilyHandle(handles[0]).PermitUncheckedError();
  rep->handles_.assign(handles.begin() + 1, handles.end());
  // Table files of an ingest that did not finish (a crash, a full disk)
  // are of no use: nothing refers to them. Only now, holding the store's
  // lock, may they be removed. (The directory is made when first used.)
  rep->ingest_dir_ = (std::filesystem::path(options.path) / "ingest").string();
  // What an earlier run left of its own files (<n>.sst), and nothing else:
  // a --data-dir pointed by mistake at a directory with an ingest/ of the
  // user's lost all of it to a remove_all (a review).
  for (const auto& entry : std::filesystem::directory_iterator(rep->ingest_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.ends_with(".sst") &&
        std::all_of(name.begin(), name.end() - 4,
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
  std::filesystem::remove(rep->ingest_dir_, ec);  // only if nothing else is left
  *store = std::move(rep);
  return Status::Ok();
}

Status RocksKvStore::Get(Column column, std::string_view key, std::string* value) const {
  return NoteRead(FromRocks(db_->Get(rocksdb::ReadOptions(), Cf(column), ToSlice(key), value)));
}

Status RocksKvStore::NoteRead(Status read) const {
  if (read.code() != Code::kCorruption) return read;
  std::lock_guard<std::mutex> lock(failure_mu_);
  if (read_failure_.ok()) {
    read_failure_ = Status::Corruption(
        fmt::format("{}; the data dir is damaged: restore it (docs/operations.md, \"A damaged "
                    "data dir\")",
                    read.message()));
  }
  return read;
}

Status RocksKvStore::MultiGet(Column column, const std::vector<std::string_view>& keys,
                              std::vector<std::optional<std::string>>* values) const {
  values->assign(keys.size(), std::nullopt);
  // RocksDB sorts the keys (by pointer, comparing each pair) unless told
  // they ascend; the aggregator's commit reads them in key order already.
  // Checking is one comparison per key, and the sort was ~2.5% of a
  // cluster aggregator's CPU under uniform traffic (perf).
  const bool ascending = std::is_sorted(keys.begin(), keys.end());
  // In chunks: RocksDB grows a vector of ~150 bytes per key (its
  // KeyContext) without reserving it, and a commit reads tens of thousands
  // of keys, so each call mapped megabytes of fresh pages (page faults and
  // zeroing were ~2% of a cluster aggregator's CPU, perf of the uniform
  // drain). Chunks this size reuse memory the allocator already has;
  // RocksDB reads in batches of 32 keys inside anyway.
  constexpr size_t kChunk = 512;
  const size_t chunk = std::min(keys.size(), kChunk);
  // Each chunk reads the latest state: a read of many keys while writes
  // land is not one point in time. Under unordered_write (see Open) an
  // explicit snapshot does not make it one either: a test that read two
  // keys always written together, in different chunks of one read at one
  // snapshot, saw them differ in 33 of 200 runs (of 300 reads each).
  // Nothing here needs more: each counter and id stands alone.
  std::vector<rocksdb::Slice> slices(chunk);
  std::vector<rocksdb::PinnableSlice> pinned(chunk);
  std::vector<rocksdb::Status> statuses(chunk);
  Status first;
  for (size_t begin = 0; begin < keys.size(); begin += chunk) {
    const size_t n = std::min(chunk, keys.size() - begin);
    // RocksDB resets each PinnableSlice (and releases the last chunk's pins)
    // before it reads into it.
    for (size_t i = 0; i < n; ++i) slices[i] = ToSlice(keys[begin + i]);
    db_->MultiGet(rocksdb::ReadOptions(), Cf(column), n, slices.data(), pinned.data(),
                  statuses.data(), ascending);
    for (size_t i = 0; i < n; ++i) {
      if (statuses[i].ok()) {
        (*values)[begin + i].emplace(pinned[i].data(), pinned[i].size());
      } else if (!statuses[i].IsNotFound()) {
        // The first error is returned; a Corruption behind another error
        // still marks the store damaged (ReadHealth).
        Status error = FromRocks(statuses[i]);
        if (first.ok()) {
          first = std::move(error);
        } else {
          NoteRead(std::move(error)).PermitUnchecked();
        }
      }
    }
  }
  return NoteRead(first);
}

Status RocksKvStore::Write(KvWriteBatch* batch) {
  CATCHALL_RETURN_IF_ERROR(WriteHealth());
  CATCHALL_RETURN_IF_ERROR(batch->rep_->refused);
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  wo.disableWAL = disable_wal_;
  // Concurrent (unordered_write) inserts search the skip list from its top
  // for every key; with this hint each insert of a batch starts from where
  // the batch's previous one went. That pays only when the keys ascend (it
  // costs a little otherwise, and for tiny batches), so the writer says so.
  // Measured on writes of 2,000 keys over 10M domains (catchall-micro
  // --benchmark_filter=StoreWrite): sorted with the hint 4.8-5.1 ms, in
  // hash order without it 5.2 ms, sorted without it 5.25 ms. Never with a
  // range deletion: RocksDB keeps one hint per memtable for point and range
  // entries alike, and a range tombstone could be linked into the point
  // entries' skip list (facebook/rocksdb#5118, fixed only for the
  // single-writer path).
  wo.memtable_insert_hint_per_batch = batch->rep_->keys_ascend && !batch->rep_->has_range_delete;
  Status s = FromRocks(db_->Write(wo, &batch->rep_->batch));
  if (s.code() == Code::kNoSpace || s.code() == Code::kIoError) {
    std::lock_guard<std::mutex> lock(failure_mu_);
    if (write_failure_.ok()) {
      // The cause in the operator's words: a probe's read-only data dir
      // (EPERM) was told to find space on the disk.
      write_failure_ = Status(
          s.code(), fmt::format("{}; the store takes no more writes until catchall is restarted {}",
                                s.message(),
                                s.code() == Code::kNoSpace
                                    ? "with space on the disk"
                                    : "once the data dir is writable again (the disk, its "
                                      "permissions, its mount)"));
    }
  }
  return s;
}

Status RocksKvStore::IngestSorted(const std::vector<SortedRun>& runs) {
  CATCHALL_RETURN_IF_ERROR(WriteHealth());
  std::error_code ec;
  std::filesystem::create_directories(ingest_dir_, ec);
  if (ec) return Status::IoError(fmt::format("cannot create '{}': {}", ingest_dir_, ec.message()));
  std::vector<rocksdb::IngestExternalFileArg> args;
  // Our copies of the files, removed on every way out: RocksDB removes
  // them when it took them (move_files) and leaves them when it failed.
  std::vector<std::string> written;
  struct RemoveWritten {
    std::vector<std::string>* files;
    ~RemoveWritten() {
      std::error_code ignored;
      for (const std::string& f : *files) std::filesystem::remove(f, ignored);
    }
  } remove_written{&written};
  for (const SortedRun& run : runs) {
    if (run.entries.empty()) continue;  // a table file cannot be empty
    rocksdb::ColumnFamilyHandle* cf = Cf(run.column);
    // The column's own options, so the file is compressed and filtered as
    // its flushes would be. The file's pages stay in the page cache: lookups
    // read it as soon as it is ingested, and RocksDB's default (dropping
    // them every MB written) made each lookup of a domain in it a disk read;
    // a query node applying 100,000 records/s answered GETs with a P99 of
    // 0.7-1.3 s (benchmarks/query/run.sh, docs/benchmarks.md).
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), db_->GetOptions(cf), cf,
                                  /*invalidate_page_cache=*/false);
    std::string file = fmt::format("{}/{}.sst", ingest_dir_, ingest_files_.fetch_add(1));
    rocksdb::Status s = writer.Open(file);
    if (s.ok()) written.push_back(file);
    for (size_t i = 0; s.ok() && i < run.entries.size(); ++i) {
      const auto& [key, value] = run.entries[i];
      s = value ? writer.Put(ToSlice(key), ToSlice(*value)) : writer.Delete(ToSlice(key));
    }
    if (s.ok()) s = writer.Finish();
    if (!s.ok()) return FromRocks(s);
    rocksdb::IngestExternalFileArg arg;
    arg.column_family = cf;
    arg.external_files = {file};
    // RocksDB links the file into the store and removes ours; the file's
    // sequence number lives in the store's manifest, not rewritten into it.
    arg.options.move_files = true;
    arg.options.write_global_seqno = false;
    args.push_back(std::move(arg));
  }
  if (args.empty()) return Status::Ok();
  // All columns' files in one version edit: atomic across them.
  return FromRocks(db_->IngestExternalFiles(args));
}

std::unique_ptr<KvIterator> RocksKvStore::NewIterator(Column column, std::string lower,
                                                      std::string upper) const {
  return std::make_unique<RocksIterator>(db_.get(), Cf(column), std::move(lower), std::move(upper));
}

Status RocksKvStore::Flush() {
  // Syncing a write-ahead log that failed aborts RocksDB 7.8; what was
  // acknowledged is in the log already.
  CATCHALL_RETURN_IF_ERROR(WriteHealth());
  rocksdb::FlushOptions fo;
  fo.wait = true;
  CATCHALL_RETURN_IF_ERROR(FromRocks(db_->Flush(fo, handles_)));
  return FromRocks(db_->SyncWAL());
}

Status RocksKvStore::SyncWal() {
  if (disable_wal_) {
    return Status::FailedPrecondition("the store keeps no write-ahead log: nothing to sync");
  }
  if (sync_) return Status::Ok();  // every write was synced
  CATCHALL_RETURN_IF_ERROR(WriteHealth());
  // A synced write rather than a bare DB::SyncWAL: both end in the same
  // fsync of every live log file, but a bare one runs beside the writers,
  // and a write failing meanwhile (a full disk) left the log's file in
  // error, on which RocksDB 7.8 asserts (a review). A synced write's sync
  // runs inside the write group, where no append runs beside it, and a
  // store stopped by a failed write refuses it first. It carries only log
  // data: a key in a memtable (the default column family's, which no flush
  // takes) kept every log file since alive, through a clean shutdown too
  // (a second review).
  rocksdb::WriteOptions options;
  options.sync = true;
  rocksdb::WriteBatch batch;
  rocksdb::Status put = batch.PutLogData("catchall.sync");
  if (!put.ok()) return FromRocks(put);
  return FromRocks(db_->Write(options, &batch));
}

Status RocksKvStore::CompactColumn(Column column) {
  rocksdb::CompactRangeOptions options;
  // Rewrite the last level too, so that every entry meets the filter.
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return FromRocks(db_->CompactRange(options, Cf(column), nullptr, nullptr));
}

uint64_t RocksKvStore::EstimateKeys(Column column) const {
  uint64_t n = 0;
  db_->GetIntProperty(Cf(column), "rocksdb.estimate-num-keys", &n);
  return n;
}

uint64_t RocksKvStore::LiveBytes(Column column) const {
  uint64_t sst = 0;
  uint64_t mem = 0;
  db_->GetIntProperty(Cf(column), "rocksdb.live-sst-files-size", &sst);
  db_->GetIntProperty(Cf(column), "rocksdb.cur-size-all-mem-tables", &mem);
  return sst + mem;
}

uint64_t RocksKvStore::MemoryBytes() const {
  uint64_t mem = 0;
  for (auto* h : handles_) {
    uint64_t v = 0;
    db_->GetIntProperty(h, "rocksdb.cur-size-all-mem-tables", &v);
    mem += v;
  }
  return mem + cache_->GetUsage();
}

KvBackgroundStats RocksKvStore::BackgroundStats() const {
  KvBackgroundStats stats;
  for (auto* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, "rocksdb.estimate-pending-compaction-bytes", &v)) {
      stats.pending_compaction_bytes += v;
    }
    if (db_->GetIntProperty(h, "rocksdb.total-sst-files-size", &v)) stats.table_bytes += v;
  }
  // What fills a data dir besides the tables (a probe found nothing said
  // so): the write-ahead log, which a flush trims once it passes
  // max_total_wal_size, and which stays while the node is idle. Its files
  // (<number>.log in the store's directory) are summed from a listing:
  // RocksDB's GetSortedWalFiles stops file deletions, takes the DB mutex
  // and reads each file's first record (a review), too much for a scrape.
  std::error_code ec;
  for (std::filesystem::directory_iterator it(path_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool wal = name.size() > 4 && name.ends_with(".log") &&
                     std::isdigit(static_cast<unsigned char>(name.front())) != 0;
    if (!wal) continue;
    std::error_code size_error;  // a file deleted meanwhile is simply not counted
    const uintmax_t size = it->file_size(size_error);
    if (!size_error) stats.wal_bytes += size;
  }
  db_->GetIntProperty("rocksdb.num-running-compactions", &stats.running_compactions);
  db_->GetIntProperty("rocksdb.num-running-flushes", &stats.running_flushes);
  stats.write_stalls = stalls_->stalls();
  stats.write_stall_seconds = stalls_->stalled_seconds();
  return stats;
}

}  // namespace catchall
