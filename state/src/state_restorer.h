// StateRestorer: brings a partition's local state up to the group's
// committed offset from the changelog and the ids log (cluster mode), when
// the local checkpoint is behind it: after a crash between the transaction
// and the local write, or when the partition comes from another aggregator.
// Private to state/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "engine/log.h"
#include "engine/skipped_records.h"
#include "state/counter_store.h"

namespace catchall {

class AggregatorProbe;

class StateRestorer {
 public:
  // `log`, `store`, `probe` (may be null) and `skipped` must outlive this.
  // The ids log keeps ids at least `id_window` (its retention). Records
  // that do not decode are skipped and counted in `skipped`.
  // `partitions`: of the events topic, which routes the records of the
  // changelog and the ids log (they may have more partitions); a record in
  // another partition than its domain's is skipped.
  StateRestorer(GroupLog* log, CounterStore* store, std::string status_topic, std::string ids_topic,
                int32_t partitions, std::chrono::seconds id_window, AggregatorProbe* probe,
                SkippedRecords* skipped)
      : log_(log),
        store_(store),
        status_topic_(std::move(status_topic)),
        ids_topic_(std::move(ids_topic)),
        partitions_(partitions),
        id_window_(id_window),
        probe_(probe),
        skipped_(skipped) {}

  // Makes the state of `partition` reflect exactly the events before
  // `committed`, the group's committed offset, and returns the offset to
  // resume consuming from: `committed` itself, unless the group has no
  // offset for the partition (kOffsetBeginning or any negative). Then the
  // changelog's last checkpoint is the truth (it was committed in the
  // same transaction as the offsets Kafka has since dropped:
  // offsets.retention.minutes, or `kafka-consumer-groups.sh
  // --delete-offsets`), and its events offset is returned; 0 when the
  // changelog holds none (nothing was ever counted). Aborted when `stop` is
  // set meanwhile; Timeout when a log makes no progress for `stall_timeout`
  // (AggregationOptions::restore_stall_timeout).
  Result<int64_t> Restore(int32_t partition, int64_t committed, const std::atomic<bool>& stop,
                          std::chrono::seconds stall_timeout);

 private:
  struct ReadResult {
    int64_t next_offset = -1;  // after the last record read (-1: none read)
    // The highest events offset a checkpoint read vouched for (or the
    // `seen` it started from).
    int64_t seen = 0;
    // Log time of the checkpoint that vouched for the target (-1: none did,
    // the target was met before reading).
    int64_t checkpoint_ms = -1;
    // Checkpoint records skipped as malformed or impossible (they are in
    // the summary line's count of skipped records).
    size_t skipped_checkpoints = 0;
  };
  // Reads `topic`'s `partition` from `from` until its end, and until a
  // checkpoint of at least `target` was seen unless `seen` already is one;
  // hands every other record to `apply`. A negative `target` is unknown:
  // the read stops at the end, and any checkpoint is taken.
  Result<ReadResult> ReadThrough(const std::string& topic, int32_t partition, int64_t from,
                                 int64_t seen, int64_t target,
                                 const std::function<Status(const ConsumedRecord&)>& apply,
                                 const std::atomic<bool>& stop, std::chrono::seconds stall_timeout);

  GroupLog* log_;
  CounterStore* store_;
  std::string status_topic_;
  std::string ids_topic_;
  int32_t partitions_;
  std::chrono::seconds id_window_;
  AggregatorProbe* probe_;
  SkippedRecords* skipped_;
};

}  // namespace catchall
