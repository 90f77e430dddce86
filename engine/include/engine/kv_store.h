// KvStore: the on-disk key-value store every catchall component keeps its
// data in (local log, counters, materialized statuses). It is RocksDB
// underneath; RocksDB's headers and types stay inside kv_store.cc.
//
// One KvStore is one database directory with named columns. Writes of one
// KvWriteBatch are atomic across columns, and everything shares one
// write-ahead log, so after a crash the store holds a prefix of the writes,
// in order. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/status.h"

namespace catchall {

enum class ColumnKind {
  kPlain,     // point lookups and scans
  kCounters,  // values are little-endian uint64 vectors; Merge adds element-wise
  kLog,       // append-mostly, scanned in key order, trimmed with DeleteRange
  kExpiring,  // values start with a little-endian int64 epoch-ms timestamp;
              // compaction drops entries older than `ttl`
};

struct ColumnSpec {
  std::string name;
  ColumnKind kind = ColumnKind::kPlain;
  std::chrono::milliseconds ttl{0};  // kExpiring only
};

struct KvStoreOptions {
  std::string path;
  std::vector<ColumnSpec> columns;
  size_t block_cache_bytes = 256 << 20;
  size_t write_buffer_bytes = 64 << 20;
  // fsync the write-ahead log on every write (survives power loss, not only
  // process crashes).
  bool sync_writes = false;
  // false: writes skip the write-ahead log, and every column is flushed
  // together (RocksDB's atomic_flush), so a crash leaves the store as of
  // its last flush, the same point in every column, and loses the writes
  // after it. Only for a store whose content can be rebuilt from elsewhere
  // (a cluster aggregator's, from the changelog). Implies !sync_writes.
  bool write_ahead_log = true;
  // How a write-ahead log damaged before its end is read at open (a torn
  // last record, what a crash leaves, is always dropped). true: the store
  // opens as of the last write before the damage; the writes after it are
  // dropped. false: with sync_writes, Open fails with Corruption (every
  // acknowledged write was synced: such damage is the disk's); without,
  // the store opens as with true and logs an error naming the damage (a
  // power loss can leave unsynced pages unwritten between written ones,
  // and a node must come back after one). RocksDB's point-in-time
  // recovery, used before, dropped the writes silently: a black-box probe
  // flipped one byte of a log after a kill -9 and the restarted server
  // served lower counts, with nothing logged.
  bool recover_damaged_wal = false;
  // Flush and compaction threads; 0 or negative means 1.
  int background_jobs = 2;
  // Bytes per second that flushes and compactions may write (0: no limit).
  uint64_t background_write_rate = 0;
  // Compaction threads at the lowest CPU priority (nice 19).
  bool compaction_low_priority = false;
  // Flush threads at nice 19 too: they then run on the cores' idle time.
  // A flush that falls behind for long lets memtables pile up until RocksDB
  // stalls writes (KvBackgroundStats::write_stalls shows it).
  bool flush_low_priority = false;
};

// What the store's background work is doing, for metrics.
struct KvBackgroundStats {
  uint64_t pending_compaction_bytes = 0;  // RocksDB's estimate, all columns
  uint64_t running_compactions = 0;
  uint64_t running_flushes = 0;
  uint64_t write_stalls = 0;       // times writes were slowed or stopped
  double write_stall_seconds = 0;  // time they were, in all
  uint64_t table_bytes = 0;        // table files on disk, all columns
  uint64_t wal_bytes = 0;          // write-ahead log files on disk
};

class KvStore;

// Handle to a column of a KvStore; valid while the store is open. Copyable.
class Column {
 public:
  Column() = default;
  bool valid() const { return handle_ != nullptr; }
  bool operator==(const Column&) const = default;

 private:
  friend class KvStore;
  friend class KvWriteBatch;
  explicit Column(void* handle) : handle_(handle) {}
  void* handle_ = nullptr;  // the RocksDB column family handle, owned by the store
};

// A set of writes applied atomically by KvStore::Write. Not thread-safe.
class KvWriteBatch {
 public:
  KvWriteBatch();
  ~KvWriteBatch();
  KvWriteBatch(KvWriteBatch&&) noexcept;
  KvWriteBatch& operator=(KvWriteBatch&&) noexcept;

  void Put(Column column, std::string_view key, std::string_view value);
  // For kCounters columns: adds `value` (uint64 vector) to the stored value.
  void Merge(Column column, std::string_view key, std::string_view value);
  void Delete(Column column, std::string_view key);
  // Deletes keys in [begin, end).
  void DeleteRange(Column column, std::string_view begin, std::string_view end);
  // Says that, within each column, keys were added in ascending order: the
  // write then inserts each key into the memtable from where the previous
  // one went instead of from the top (~5-10% less CPU per key for large
  // batches). Only a hint: any order stays correct. Ignored for a batch
  // holding a DeleteRange; Clear() forgets it.
  void MarkKeysAscending();
  size_t Count() const;
  size_t ByteSize() const;
  void Clear();

 private:
  friend class RocksKvStore;
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

// Changes to one column in key order, for KvStore::IngestSorted.
struct SortedRun {
  Column column;
  // Keys strictly ascending (bytewise); an empty optional deletes the key.
  std::vector<std::pair<std::string_view, std::optional<std::string_view>>> entries;
};

// Forward iterator over one column within [lower, upper). Not thread-safe.
class KvIterator {
 public:
  virtual ~KvIterator() = default;
  virtual void Seek(std::string_view key) = 0;         // first key >= key
  virtual void SeekForPrev(std::string_view key) = 0;  // last key <= key
  virtual void SeekToFirst() = 0;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  // REQUIRES: Valid(). Views valid until the iterator moves.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Not OK if iteration stopped on an error rather than at the end.
  virtual Status status() const = 0;
};

// The store's interface. KvStore::Open gives the RocksDB implementation; a
// test can put a fault-injecting twin in front of it (engine/testing/).
class KvStore {
 public:
  // Opens (creating if missing) the RocksDB store at options.path with
  // exactly the listed columns.
  static Status Open(const KvStoreOptions& options, std::unique_ptr<KvStore>* store);
  virtual ~KvStore() = default;

  // REQUIRES: `name` was listed in the options.
  virtual Column GetColumn(std::string_view name) const = 0;

  // NotFound when absent.
  virtual Status Get(Column column, std::string_view key, std::string* value) const = 0;
  // values->at(i) is empty when keys[i] is absent. Returns the first error.
  // Cheaper when `keys` ascend (bytewise): the store need not sort them.
  virtual Status MultiGet(Column column, const std::vector<std::string_view>& keys,
                          std::vector<std::optional<std::string>>* values) const = 0;
  // After a write failed on a disk error, every later Write fails at once
  // with that error (see WriteHealth): RocksDB 7.8 cannot resume a
  // write-ahead log that failed (facebook/rocksdb#11643), and writing to it
  // again aborts the process. InvalidArgument, with nothing written, when
  // the batch holds a change RocksDB refused to stage (a key or value of
  // 4 GiB or more).
  virtual Status Write(KvWriteBatch* batch) = 0;
  // Writes each run as a table file and adds them all to the store in one
  // step, atomic across columns and crashes: afterwards every reader sees
  // all of the runs, or (on an error) none. The runs replace what the store
  // held for their keys, like a Write of the same changes, but skip the
  // memtables and the write-ahead log: the cost per key is a sort the
  // caller did and a sequential file write, not a skip-list insert. For
  // large runs (hundreds of thousands of keys); each call adds a file to
  // level 0 for compactions to merge.
  virtual Status IngestSorted(const std::vector<SortedRun>& runs) = 0;
  // OK, or the disk error that stopped writes until the process restarts.
  virtual Status WriteHealth() const = 0;
  // OK, or the first Corruption a Get or MultiGet met (a table file that
  // does not read back: a damaged disk or file). It stays: the file does
  // not heal, so a node reports itself not ready rather than keep
  // answering 503 to every lookup that reaches it (a probe's /readyz said
  // ready while every GET failed).
  virtual Status ReadHealth() const = 0;
  // `lower`/`upper` bound the iteration (empty: unbounded).
  virtual std::unique_ptr<KvIterator> NewIterator(Column column, std::string lower = {},
                                                  std::string upper = {}) const = 0;
  // Forces the memtables to disk and syncs the WAL; used on clean shutdown.
  virtual Status Flush() = 0;
  // Makes every write so far durable on disk (its write-ahead log synced),
  // without flushing memtables. Ok at once with synced writes;
  // FailedPrecondition without a write-ahead log; the write health's error
  // after a failed write.
  virtual Status SyncWal() = 0;
  // Compacts the whole column now, running its compaction filter over every
  // entry (a kExpiring column drops what is past its ttl). Compaction runs by
  // itself in the background; this is for tests and maintenance.
  virtual Status CompactColumn(Column column) = 0;
  // Estimated number of keys and bytes on disk of a column, for metrics.
  virtual uint64_t EstimateKeys(Column column) const = 0;
  virtual uint64_t LiveBytes(Column column) const = 0;
  // Total bytes of the memtables and block cache, for metrics.
  virtual uint64_t MemoryBytes() const = 0;
  virtual KvBackgroundStats BackgroundStats() const = 0;
  // True while a write may have to wait for the disk: every write is synced,
  // or RocksDB is slowing or stopping writes (a stall) until flushes and
  // compactions catch up. Threads that must not block ask before writing.
  virtual bool WritesMayWait() const = 0;

 protected:
  static Column MakeColumn(void* handle) { return Column(handle); }
  static void* ColumnHandle(Column column) { return column.handle_; }
};

// Little-endian fixed-width encodings used in stored values and keys.
void PutFixed64(std::string* dst, uint64_t v);
uint64_t DecodeFixed64(const char* p);
// Big-endian encodings keep numeric order in keys.
void PutBigEndian32(std::string* dst, uint32_t v);
void PutBigEndian64(std::string* dst, uint64_t v);
uint32_t DecodeBigEndian32(const char* p);
uint64_t DecodeBigEndian64(const char* p);

}  // namespace catchall
