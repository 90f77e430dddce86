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
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

  // What became of one record.
  struct Applied {
    ApplyOutcome outcome = ApplyOutcome::kCounted;
    std::string reason;  // kMalformed: what is wrong
  };

  // Applies one record and advances the partition's offset past it. For
  // kMalformed, *reason says what is wrong. A non-OK result means the store
  // could not be read; nothing was applied.
  Result<ApplyOutcome> Apply(const ConsumedRecord& record, std::string* reason);

  // Applies `records` in their order, with the same outcomes as Apply one
  // by one, and advances each partition's offset past them: (*outcomes)[i]
  // is records[i]'s. The ids they carry are looked up in the store
  // together, in key order (one MultiGet, not a Get per event). A non-OK
  // result means the store could not be read: part of the records may have
  // been counted without their offsets advancing, so the caller must
  // Reset() (and rewind to its last commit).
  Status ApplyAll(const std::vector<const ConsumedRecord*>& records,
                  std::vector<Applied>* outcomes);

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
  // a JSON value saying where it came from and why it was refused, with
  // copies of the key and the value. Each copy (and the reason) keeps at most
  // kDeadLetterCopyBytes, and the value then says `"truncated":true` with
  // the original sizes: the original stays at its topic, partition and
  // offset. Without the cut, JSON escaping (a control byte becomes six) and
  // the key held twice made a 200 KB record of control bytes a 1.2 MB dead
  // letter; the broker refused it (message.max.bytes, 1 MB by default), the
  // transaction aborted, was retried forever, and nothing behind it was
  // counted. At most 3 x 6 x 32 KiB of JSON plus the 32 KiB record key:
  // ~620 KB, under librdkafka's 1,000,000 and the broker's 1 MB.
  static constexpr size_t kDeadLetterCopyBytes = size_t{32} * 1024;
  static LogRecord DeadLetter(std::string_view topic, const ConsumedRecord& record,
                              std::string_view reason);

 private:
  // An event with an id, whose outcome waits for the id's lookup.
  struct Keyed {
    size_t index = 0;  // in ApplyAll's records
    std::string id_key;
    std::string domain;
    size_t lookup = kNoLookup;      // its key's place in lookups_
    std::optional<int64_t> stored;  // the id's time in the store, if there
    EventType type = EventType::kDelivered;
  };
  static constexpr size_t kNoLookup = ~size_t{0};

  // Checks `record` and counts it, unless it is malformed or carries an id:
  // then it fills *keyed and returns true.
  bool Classify(const ConsumedRecord& record, Applied* out, Keyed* keyed);
  // Decides a keyed event (its id in the delta, or in the store as of the
  // last commit, within the window: a duplicate) and counts it if new.
  ApplyOutcome ApplyKeyed(const ConsumedRecord& record, Keyed* keyed);
  void Advance(const ConsumedRecord& record);

  AggregatorOptions options_;
  const CounterStore* store_;
  EventParser parser_;
  CounterDelta delta_;
  size_t pending_records_ = 0;
  int64_t oldest_ms_ = 0;
  // ApplyAll's scratch space, kept between calls.
  std::vector<Keyed> keyed_;
  std::vector<std::pair<std::string_view, size_t>> order_;  // (id key, keyed_ index)
  std::vector<std::string_view> lookups_;                   // each key once, ascending
  std::vector<std::optional<int64_t>> stored_;
};

}  // namespace catchall
