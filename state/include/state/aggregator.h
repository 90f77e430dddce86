// Aggregator: folds records of the events topic into counter deltas.
//
// It checks each record the way a strict consumer must, since any Kafka tool
// can write to the topic: the value is an event, its domain is normalized
// and equals the key, and the key belongs to the partition it was read from
// (otherwise one domain would be counted by two aggregators). Events that
// carry an id already seen within the id window are counted once. Malformed
// records are reported to the caller, which dead-letters them.
// Not thread-safe: one instance per consuming thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "engine/event_parser.h"
#include "engine/log.h"
#include "engine/status.h"
#include "state/counter_store.h"

namespace catchall {

struct AggregatorOptions {
  int32_t partitions = 1;  // of the events topic
  std::chrono::seconds id_window{std::chrono::hours(24)};
};

enum class ApplyOutcome { kCounted, kDuplicate, kMalformed };

class Aggregator {
 public:
  // `store` answers id lookups; it must outlive the aggregator.
  Aggregator(AggregatorOptions options, const CounterStore* store);

  // Applies one record and advances the partition's offset past it. For
  // kMalformed, *reason says what is wrong. A non-OK result means the store
  // could not be read; nothing was applied.
  Result<ApplyOutcome> Apply(const ConsumedRecord& record, std::string* reason);

  const CounterDelta& delta() const { return delta_; }
  // Events applied since the last TakeDelta (counted, duplicate or not).
  size_t pending_records() const { return pending_records_; }
  // Log timestamp of the oldest record in the delta (for freshness).
  int64_t oldest_timestamp_ms() const { return oldest_ms_; }
  // Returns the delta and starts a new one.
  CounterDelta TakeDelta();
  // Forgets the pending delta (after a failed commit; the caller rewinds).
  void Reset();

  // The dead-letter record for a malformed record of `topic`: same key, and
  // a JSON value saying where it came from and why it was refused.
  static LogRecord DeadLetter(std::string_view topic, const ConsumedRecord& record,
                              std::string_view reason);

 private:
  AggregatorOptions options_;
  const CounterStore* store_;
  EventParser parser_;
  CounterDelta delta_;
  size_t pending_records_ = 0;
  int64_t oldest_ms_ = 0;
};

}  // namespace catchall
