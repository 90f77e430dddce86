// BuildCommit: turns the aggregator's delta into one exactly-once step, the
// transaction for the log and the change of the local state. Private to
// state/ (the aggregation loop calls it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/kv_store.h"
#include "engine/log.h"
#include "state/counter_store.h"

namespace catchall {

// Cluster mode's changelog: where the state is published so that another
// aggregator can rebuild it.
struct PublishOptions {
  std::string status_topic{kStatusTopic};
  std::string ids_topic{kIdsTopic};
  uint64_t catchall_threshold = 1000;
  int32_t partitions = 1;  // of the events topic (and of both changelogs)
  // Ids in batch records (kIdsBatchKey) rather than one record per id.
  bool ids_batches = true;
};

// Stages `delta` as one commit:
//  - without `publish` (embedded mode, state committed in the log's own
//    write): counts are added with a merge, ids and checkpoints put; the
//    transaction holds only `dead_letters` and the offsets;
//  - with `publish` (cluster mode): counts become absolute (stored + delta),
//    each changed domain's record goes to the changelog and the new ids to
//    the ids log (in batches per partition, engine/changelog.h), with one
//    checkpoint per advanced partition in both, so a
//    restore knows when it has everything up to the committed offset.
// `resume(partition)` gives the checkpoint's changelog and ids offsets for
// a restore to resume from (see StateCheckpoint). Fails only when the stored
// counters cannot be read.
Status BuildCommit(const CounterDelta& delta, std::vector<OutputRecord> dead_letters,
                   const CounterStore& store, const PublishOptions* publish,
                   const std::function<StateCheckpoint(int32_t)>& resume, LogTransaction* txn,
                   KvWriteBatch* state);

}  // namespace catchall
