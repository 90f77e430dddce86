// RecentCounts: the counters a query node applied from the changelog since
// its last checkpoint, held in memory ahead of its store.
//
// Why: inserting each changelog record into RocksDB's memtable cost a
// query node most of its CPU per record (a skip-list search over ~900,000
// entries, docs/benchmarks.md). A hash table takes the record for a
// fraction of that; a checkpoint later sorts the table once and hands it to
// the store as a table file (KvStore::IngestSorted).
//
// A lookup sees the newest value: the active table, then the frozen one a
// checkpoint is writing, then (if neither has the domain) the store. The
// frozen table is dropped only after the store holds it, so a value never
// goes missing between the two. Put, Delete and Freeze come from one thread;
// SortedFrozen and Release from any one thread between a Freeze and the
// next; Find from any thread.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <memory_resource>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/domain_status.h"

namespace catchall {

class RecentCounts {
 public:
  // `expected_domains`: how many domains the active table takes before a
  // checkpoint freezes it. Its tables are sized for that many up front, so
  // that Put never rehashes a shard below it: a rehash holds the shard's
  // lock over every entry, and lookups of that shard waited for it (GET
  // P99 6 ms at 100,000 records/s on a 10M-domain node, docs/benchmarks.md).
  explicit RecentCounts(size_t expected_domains = 0);

  // A domain's newest counters; empty when the changelog deleted it.
  using Value = std::optional<DomainCounts>;
  // (domain, value) in ascending domain order; views into the frozen table.
  using SortedEntries = std::vector<std::pair<std::string_view, const Value*>>;

  void Put(std::string_view domain, const DomainCounts& counts);
  void Delete(std::string_view domain);
  // A hint, for the writer to give a few records ahead: starts loading the
  // slots a Put or Delete of `domain` will probe, so that the cache misses
  // of several records overlap instead of coming one after the other.
  // REQUIRES: called by the writer (the thread that calls Put, Delete and
  // Freeze), which alone changes the active tables and so may read them
  // without the shard's lock.
  void Prefetch(std::string_view domain) const;

  // True if `domain` changed since the last checkpoint the store holds;
  // *value is then its newest value.
  bool Find(std::string_view domain, Value* value) const;

  // Domains in the active table.
  size_t size() const { return size_.load(std::memory_order_relaxed); }
  // Domains in the frozen table (0 when none is): a checkpoint's, not in
  // the store until it is written.
  size_t frozen_size() const { return frozen_size_.load(std::memory_order_relaxed); }
  bool frozen() const { return frozen_.load(std::memory_order_acquire); }
  // The fewest domains a shard's active table takes without rehashing.
  size_t shard_capacity() const;

  // REQUIRES: !frozen(). Freezes the active table for a checkpoint and
  // starts an empty one. Cheap: the writer thread reads on at once.
  void Freeze();
  // REQUIRES: frozen(). The frozen entries in domain order (the sort is the
  // checkpoint's work, on its own thread); views valid until Release().
  SortedEntries SortedFrozen() const;
  // Drops the frozen table: the store holds it now.
  void Release();

 private:
  // A shard's domains: an open-addressing table (absl's flat_hash_map)
  // whose keys point into an arena the table owns. perf of a query node
  // applying 100,000 records/s put ~24% of its CPU in inserts into a node-based
  // std::unordered_map<std::string, ...> (two allocations and a few cache
  // misses per new domain) and ~6% in freeing the frozen one, entry by entry
  // (docs/benchmarks.md). Here an insert is a probe of one group of slots
  // and a copy of the name into the arena, and dropping the table frees a
  // few large blocks: 17-20% less CPU per applied record.
  struct Table {
    absl::flat_hash_map<std::string_view, Value> map;  // keys live in `names`
    std::unique_ptr<std::pmr::monotonic_buffer_resource> names =
        std::make_unique<std::pmr::monotonic_buffer_resource>(size_t{1} << 20);
  };
  // Shards, so that a lookup rarely waits for the writer.
  struct Shard {
    mutable std::shared_mutex mu;
    Table active;  // GUARDED_BY(mu)
    Table frozen;  // GUARDED_BY(mu) for changes; SortedFrozen reads it unlocked
  };
  static constexpr size_t kShards = 16;

  Shard& ShardOf(std::string_view domain) const;
  // An empty table sized for a shard's share of the expected domains.
  Table NewActiveTable() const;
  void Set(std::string_view domain, Value value);

  size_t per_shard_;  // expected domains per shard, with room for unevenness
  mutable std::array<Shard, kShards> shards_;
  std::atomic<size_t> size_{0};
  std::atomic<size_t> frozen_size_{0};
  std::atomic<bool> frozen_{false};
};

}  // namespace catchall
