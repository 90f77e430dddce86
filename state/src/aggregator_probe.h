// Metrics of aggregation.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "state/aggregator.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace catchall {

class Metrics;

class AggregatorProbe {
 public:
  // With a `worker`, every metric gets a worker label, so that several
  // aggregation workers in one process (cluster mode's aggregate.threads)
  // report separately; embedded mode has one aggregator and no label.
  explicit AggregatorProbe(Metrics& metrics, std::optional<int> worker = std::nullopt);
  void OnApplied(ApplyOutcome outcome, size_t n = 1);
  void OnCommit(size_t records, size_t domains, std::chrono::duration<double> took,
                double freshness_seconds);
  void OnCommitFailed();
  void SetLag(int64_t records);
  void SetDomains(uint64_t domains, uint64_t bytes);
  void SetReady(bool ready);
  // Changelog records applied while restoring partitions (cluster mode).
  void OnRestored(size_t records);
  void SetRestoring(int partitions);
  void SetOwnedPartitions(size_t partitions);
  // Partitions the group gave this member that it does not take on
  // (added to the events topic in place: docs/operations.md).
  void SetPartitionsNotTaken(size_t partitions);

 private:
  prometheus::Counter* counted_;
  prometheus::Counter* duplicates_;
  prometheus::Counter* malformed_;
  prometheus::Counter* commits_;
  prometheus::Counter* commit_failures_;
  prometheus::Histogram* commit_seconds_;
  prometheus::Histogram* commit_records_;
  prometheus::Histogram* freshness_;
  prometheus::Gauge* lag_;
  prometheus::Gauge* domains_;
  prometheus::Gauge* bytes_;
  prometheus::Gauge* ready_;
  prometheus::Counter* restored_;
  prometheus::Gauge* restoring_;
  prometheus::Gauge* owned_;
  prometheus::Gauge* not_taken_;
};

}  // namespace catchall
