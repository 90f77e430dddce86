// CounterStore: per-domain counters, the remembered idempotency ids, and a
// checkpoint per partition saying which log positions they reflect, kept in
// a KvStore.
//
// It only reads; changes are staged into a KvWriteBatch (Add/Put...) that
// the aggregation loop commits: inside the log's transaction in embedded
// mode, or right after it in cluster mode (the store is then a cache of the
// changelog, see aggregation_loop.h). Thread-safe.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/hash/hash.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/counts_table.h"
#include "engine/domain_status.h"
#include "engine/kv_store.h"
#include "engine/log.h"
#include "engine/status_reader.h"

namespace catchall {

// Hashes std::string and std::string_view alike, so that maps keyed by
// std::string can be searched with a view (no allocation per lookup).
// absl's own transparent string hash takes absl::string_view, which
// Debian's build does not alias to std::string_view; absl::Hash of a
// std::string_view is std::hash's value with absl's mixing on top, which
// the open-addressing tables below want.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return absl::Hash<std::string_view>{}(s); }
};

// Per-domain counters keyed by domain. An open-addressing table (absl's):
// the aggregator's delta gets a new domain per event under spread-out
// traffic, and std::unordered_map's node per entry (an allocation, then a
// cache miss per entry when the commit walks and sorts them) was ~10% of a
// cluster aggregator's CPU on the uniform drain (perf; docs/benchmarks.md).
using CountsByDomain = absl::flat_hash_map<std::string, DomainCounts, StringHash, std::equal_to<>>;

// What the events since the last commit changed.
struct CounterDelta {
  // Added to the counters.
  CountsByDomain counts;
  // IdKey(domain, id) -> log timestamp of the event that carried it.
  absl::flat_hash_map<std::string, int64_t, StringHash, std::equal_to<>> ids;
  // partition -> next offset to consume.
  std::unordered_map<int32_t, int64_t> offsets;

  bool empty() const { return counts.empty() && ids.empty() && offsets.empty(); }
  void Clear() {
    counts.clear();
    ids.clear();
    offsets.clear();
  }
};

// Where a partition's state stands.
struct StateCheckpoint {
  // Next events offset the state reflects (0: nothing counted yet).
  int64_t events_offset = 0;
  // Cluster mode: where a restore of the changelog and the ids log resumes
  // (-1: from their beginning). Earlier than needed is fine: their records
  // are idempotent (absolute counters, ids).
  int64_t changelog_offset = -1;
  int64_t ids_offset = -1;
};

class CounterStore : public StatusReader {
 public:
  // The column of the partitions' checkpoints (and the topics the store
  // is bound to, app/node_common.h).
  static constexpr std::string_view kOffsetsColumn = "state.offsets";
  // Columns the KvStore must be opened with. Ids older than `id_window` are
  // dropped by compaction.
  static std::vector<ColumnSpec> Columns(std::chrono::seconds id_window);

  // `store` must outlive this. `source` names the topic whose offsets are
  // tracked (e.g. "catchall.events").
  CounterStore(KvStore* store, std::string source);

  Result<DomainCounts> Get(std::string_view domain) const override;
  Status MultiGet(const std::vector<std::string>& domains,
                  std::vector<DomainCounts>* out) const override;
  Status MultiGetViews(const std::vector<std::string_view>& domains,
                       std::vector<DomainCounts>* out) const {
    return counts_table_.MultiGetViews(domains, out);
  }
  Result<StateCheckpoint> ReadCheckpoint(int32_t partition) const;
  // The log timestamp stored for each IdKey(domain, id), if any; cheaper
  // when the keys ascend.
  Status IdTimestamps(const std::vector<std::string_view>& id_keys,
                      std::vector<std::optional<int64_t>>* out) const;

  // Staging changes into `batch`.
  void AddCounts(std::string_view domain, const DomainCounts& counts, KvWriteBatch* batch) const;
  void PutCounts(std::string_view domain, const DomainCounts& counts, KvWriteBatch* batch) const;
  void PutId(std::string_view id_key, int64_t timestamp_ms, KvWriteBatch* batch) const;
  // Stages every id an ids log record carries (ForEachIdInRecord) and
  // returns how many; Corruption, with nothing staged, when the record does
  // not decode or, with `partitions` (the events topic's count, which
  // routes the ids log's records; 0: unchecked),
  // holds an id of a domain another partition owns. Restores and warm
  // standbys read the ids log through it.
  Result<size_t> PutIdsOf(const ConsumedRecord& record, KvWriteBatch* batch,
                          int32_t partitions = 0) const;
  void PutCheckpoint(int32_t partition, const StateCheckpoint& checkpoint,
                     KvWriteBatch* batch) const;
  // Embedded mode writes the state's checkpoints and the group's committed
  // offsets in one atomic write, so no partition's checkpoint is behind
  // its committed offset (`committed`; a partition absent there predates
  // committed offsets; ahead is fine: another group name ran since), past
  // the log's end (`ends`: next offset per partition) or before the first
  // record the log still holds (`starts`; absent: 0): retention deletes
  // only what was counted. Corruption naming the first partition where
  // that fails: the files were damaged or partly restored, and counting on
  // would count events twice or never.
  Status CheckAgainstLog(const std::map<int32_t, int64_t>& committed,
                         const std::map<int32_t, int64_t>& ends,
                         const std::map<int32_t, int64_t>& starts = {}) const;
  // Applies a staged batch (cluster mode; embedded mode commits it in the
  // log's transaction).
  Status Write(KvWriteBatch* batch) { return store_->Write(batch); }

  // The counters' column (for ChangelogApplier).
  Column counts_column() const { return counts_; }

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
