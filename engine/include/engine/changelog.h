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
// catchall.ids (time-retained), keyed by domain, one record per idempotency
// id counted, {"id":"...","ts":N}, plus the same checkpoints. Readers of
// either topic skip what they do not need.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

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

// The key an id is remembered under in a store: domain, NUL, id.
std::string IdKey(std::string_view domain, std::string_view id);

// What one changelog record did.
struct ChangelogEffect {
  enum Kind { kPut, kDelete, kCheckpoint, kSkipped } kind = kSkipped;
  int64_t events_offset = 0;  // kCheckpoint: the events offset it vouches for
  std::string problem;        // kSkipped: why
};

// Applies changelog records to a counts column (CountsTable's layout). The
// aggregator's restore and the query node's materialization both go through
// it, so they read the changelog the same way. Stateless; thread-safe.
class ChangelogApplier {
 public:
  explicit ChangelogApplier(Column counts) : counts_(counts) {}
  // Adds what `record` means to *batch: a domain record puts its counters,
  // a tombstone deletes the domain, a checkpoint changes nothing, and a
  // record that does not decode is skipped (never half applied).
  ChangelogEffect Apply(const ConsumedRecord& record, KvWriteBatch* batch) const;

 private:
  Column counts_;
};

}  // namespace catchall
