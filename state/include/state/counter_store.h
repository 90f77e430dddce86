// CounterStore: per-domain counters, the consumed log offsets they reflect,
// and the remembered event ids, kept in a KvStore.
//
// Commit() writes counter deltas, the ids seen and the new offsets in one
// atomic batch: that is the exactly-once step. After a crash the store holds
// the counters of exactly the events before its offsets, so resuming the log
// from those offsets neither loses nor double-counts an event.
// Thread-safe; reads may run concurrently with a commit.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/counts_table.h"
#include "engine/domain_status.h"
#include "engine/kv_store.h"
#include "engine/status_reader.h"

namespace catchall {

// Hashes std::string and std::string_view alike, so that maps keyed by
// std::string can be searched with a view (no allocation per lookup).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Per-domain counters keyed by domain.
using CountsByDomain = std::unordered_map<std::string, DomainCounts, StringHash, std::equal_to<>>;

// Everything one commit changes.
struct CounterDelta {
  // Added to the stored counters (embedded mode).
  CountsByDomain counts;
  // Replace the stored counters (cluster mode: values already in the
  // changelog).
  CountsByDomain absolute;
  // (domain + '\0' + id) -> log timestamp of the event that carried it.
  std::unordered_map<std::string, int64_t> ids;
  // partition -> next offset to consume.
  std::unordered_map<int32_t, int64_t> offsets;
  // partition -> next changelog offset the state reflects (cluster mode).
  std::unordered_map<int32_t, int64_t> changelog_offsets;

  bool empty() const {
    return counts.empty() && absolute.empty() && ids.empty() && offsets.empty() &&
           changelog_offsets.empty();
  }
  void Clear() {
    counts.clear();
    absolute.clear();
    ids.clear();
    offsets.clear();
    changelog_offsets.clear();
  }
};

class CounterStore : public StatusReader {
 public:
  // Columns the KvStore must be opened with. Ids older than `id_window` are
  // dropped by compaction.
  static std::vector<ColumnSpec> Columns(std::chrono::seconds id_window);

  // `store` must outlive this. `source` names the topic whose offsets are
  // tracked (e.g. "catchall.events").
  CounterStore(KvStore* store, std::string source);

  Result<DomainCounts> Get(std::string_view domain) const override;
  Status MultiGet(const std::vector<std::string>& domains,
                  std::vector<DomainCounts>* out) const override;

  // Next offset to consume of `partition`, or 0 when nothing was committed.
  Result<int64_t> CommittedOffset(int32_t partition) const;
  // Next changelog offset the state of `partition` reflects, or -1 when the
  // state was never checkpointed (cluster mode).
  Result<int64_t> ChangelogOffset(int32_t partition) const;
  // The log timestamp stored for `id_key` (domain + '\0' + id), if any.
  Result<std::optional<int64_t>> IdTimestamp(std::string_view id_key) const;

  // Applies `delta` atomically: counts are added, ids and offsets stored.
  Status Commit(const CounterDelta& delta);

  // Approximate number of domains and bytes used, for metrics.
  uint64_t ApproximateDomains() const;
  uint64_t ApproximateBytes() const;

 private:
  std::string OffsetKey(int32_t partition) const;
  Result<int64_t> ReadOffset(const std::string& key, int64_t missing) const;

  KvStore* store_;
  std::string source_;
  Column counts_;
  Column offsets_;
  Column ids_;
  CountsTable counts_table_;
};

}  // namespace catchall
