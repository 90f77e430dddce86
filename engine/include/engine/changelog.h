// The changelog and the ids log: what an aggregator publishes so that its
// state can be rebuilt anywhere, and the one place that applies it.
//
// catchall.domain-status (compacted), keyed by domain:
//   a domain record   {"domain":...,"status":...,"delivered":N,"bounced":M}
//                     (AppendDomainStatusJson, domain_status.h)
//   a tombstone       empty value: the domain is forgotten
//   a checkpoint      key "_checkpoint", one per partition a transaction
//                     advanced: the partition's records are complete up to
//                     that events offset (AppendChangelogCheckpointJson)
// catchall.ids (time-retained), the idempotency ids counted, plus the same
// checkpoints:
//   a batch of ids    key "_ids", {"ids":[["domain","id",N],...]}, the ids
//                     one transaction counted in one partition (IdBatchJson;
//                     what aggregators write)
//   one id            keyed by its domain, {"id":"...","ts":N} (what
//                     aggregators before batches wrote; still read)
// N is the log time of the event that carried the id. Readers of either
// topic skip what they do not need.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "engine/domain_status.h"
#include "engine/kv_store.h"
#include "engine/log.h"
#include "engine/status.h"

namespace catchall {

// An idempotency id as the ids log carries it.
struct IdRecord {
  std::string id;
  int64_t timestamp_ms = 0;  // log time of the event that carried it
};

// {"id":"...","ts":N}
void AppendIdRecordJson(std::string_view id, int64_t timestamp_ms, std::string* out);
Result<IdRecord> ParseIdRecordJson(std::string_view json);

// The ids log's key for a record that carries a batch of ids.
inline constexpr std::string_view kIdsBatchKey = "_ids";

// The value of one batch record of the ids log. Not thread-safe.
class IdBatchJson {
 public:
  void Add(std::string_view domain, std::string_view id, int64_t timestamp_ms);
  size_t ids() const { return ids_; }
  // Bytes of the value so far (to bound a record's size).
  size_t bytes() const { return json_.size(); }
  // The value, {"ids":[...]}; the builder starts over empty.
  std::string Take();

 private:
  std::string json_;
  size_t ids_ = 0;
};

// Calls `each(domain, id, timestamp_ms)` for every id an ids log record
// carries: those of a batch (key kIdsBatchKey), or the one of a record
// keyed by its domain. Checkpoint records carry none. Corruption, before
// any call, when the record does not decode.
Status ForEachIdInRecord(
    const ConsumedRecord& record,
    const std::function<void(std::string_view domain, std::string_view id, int64_t ts)>& each);

// The key an id is remembered under in a store: domain, NUL, id.
std::string IdKey(std::string_view domain, std::string_view id);

// What one changelog record did.
struct ChangelogEffect {
  enum Kind { kPut, kDelete, kCheckpoint, kSkipped } kind = kSkipped;
  int64_t events_offset = 0;  // kCheckpoint: the events offset it vouches for
  std::string problem;        // kSkipped: why
};

// What `record` means, without applying it: for a kPut, *counts holds the
// domain's counters (the record's key is the domain). With `partitions`
// (the events topic's count, by which the aggregators route changelog
// records; 0: unchecked), a domain's record in another
// partition than its key's is skipped: only something else than an
// aggregator writes one, and taken, it set the domain's counts on some
// readers and not on others (a black-box probe).
ChangelogEffect DecodeChangelogRecord(const ConsumedRecord& record, DomainCounts* counts,
                                      int32_t partitions = 0);

// Applies changelog records to a counts column (CountsTable's layout). The
// aggregator's restore and the query node's materialization both go through
// it, so they read the changelog the same way. Stateless; thread-safe.
class ChangelogApplier {
 public:
  // `partitions`: as DecodeChangelogRecord's.
  explicit ChangelogApplier(Column counts, int32_t partitions = 0)
      : counts_(counts), partitions_(partitions) {}
  // Adds what `record` means to *batch: a domain record puts its counters,
  // a tombstone deletes the domain, a checkpoint changes nothing, and a
  // record that does not decode is skipped (never half applied).
  ChangelogEffect Apply(const ConsumedRecord& record, KvWriteBatch* batch) const;

 private:
  Column counts_;
  int32_t partitions_;
};

}  // namespace catchall
