// SkippedRecords: what a reader of the changelog or the ids log does with a
// record it cannot decode (a tool or an older version wrote something else
// to the topic): skips it, counts it in a metric and logs the first few.
// Skipping never half applies a record (ChangelogApplier, ForEachIdInRecord
// decode whole records), and a skipped record must be visible to an
// operator, who otherwise sees only counts that are off.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "engine/log.h"

namespace prometheus {
class Counter;
}  // namespace prometheus

namespace catchall {

class Metrics;

// Whether the `nth` warning about one kind of bad record is logged: the
// first ten in full, then every 1,000th, so that a producer writing bad
// records at full rate cannot flood the log.
bool LogsNthWarning(uint64_t nth);

class SkippedRecords {
 public:
  // Readers whose skips the metric tells apart (its `reader` label).
  enum class Reader { kRestore, kStandby, kQuery };

  // `metrics` may be null (no metric, the log lines only).
  SkippedRecords(Metrics* metrics, Reader reader);

  // Counts a record of `topic` skipped for `why` (each reading: a record
  // read again counts again); logs a warning for the first few of this
  // reader and one line every 1,000th after. Thread-safe.
  void Skip(std::string_view topic, const ConsumedRecord& record, std::string_view why);

 private:
  Reader reader_;
  prometheus::Counter* counter_ = nullptr;
  std::atomic<uint64_t> count_{0};
};

}  // namespace catchall
