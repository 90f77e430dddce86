#include "aggregator_probe.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

#include "engine/metrics.h"

namespace catchall {

AggregatorProbe::AggregatorProbe(Metrics& metrics, std::optional<int> worker) {
  auto& r = metrics.registry();
  prometheus::Labels w;
  if (worker) w["worker"] = std::to_string(*worker);
  auto with = [&w](prometheus::Labels extra) {
    extra.insert(w.begin(), w.end());
    return extra;
  };
  auto& applied = prometheus::BuildCounter()
                      .Name("catchall_aggregate_records_total")
                      .Help(
                          "Event records by outcome, once the commit of their work went through "
                          "(an aborted transaction's records count when read again)")
                      .Register(r);
  counted_ = &applied.Add(with({{"outcome", "counted"}}));
  duplicates_ = &applied.Add(with({{"outcome", "duplicate"}}));
  malformed_ = &applied.Add(with({{"outcome", "dead_lettered"}}));
  commits_ = &prometheus::BuildCounter()
                  .Name("catchall_aggregate_commits_total")
                  .Help("State commits (counters + offsets, atomically)")
                  .Register(r)
                  .Add(w);
  commit_failures_ = &prometheus::BuildCounter()
                          .Name("catchall_aggregate_commit_failures_total")
                          .Help("Commits that failed; processing rewinds to the last commit")
                          .Register(r)
                          .Add(w);
  commit_seconds_ = &prometheus::BuildHistogram()
                         .Name("catchall_aggregate_commit_seconds")
                         .Help("Time to write one commit")
                         .Register(r)
                         .Add(w, LatencyBuckets());
  commit_records_ = &prometheus::BuildHistogram()
                         .Name("catchall_aggregate_commit_records")
                         .Help("Records per commit")
                         .Register(r)
                         .Add(w, prometheus::Histogram::BucketBoundaries{1, 10, 100, 1000, 10000,
                                                                         100000, 1000000});
  freshness_ = &prometheus::BuildHistogram()
                    .Name("catchall_aggregate_freshness_seconds")
                    .Help("Age of the oldest event of a commit when it became visible to queries")
                    .Register(r)
                    .Add(w, LatencyBuckets());
  lag_ =
      &prometheus::BuildGauge()
           .Name("catchall_aggregate_lag_records")
           .Help("Records of the owned partitions not yet consumed (embedded: not yet committed)")
           .Register(r)
           .Add(w);
  domains_ = &prometheus::BuildGauge()
                  .Name("catchall_state_domains")
                  .Help(
                      "Counter entries RocksDB estimates (rocksdb.estimate-num-keys): the "
                      "domains, plus updates of them not yet compacted together, so at most "
                      "that many domains")
                  .Register(r)
                  .Add(w);
  bytes_ = &prometheus::BuildGauge()
                .Name("catchall_state_bytes")
                .Help("Approximate bytes of counter state (disk and memtables)")
                .Register(r)
                .Add(w);
  ready_ = &prometheus::BuildGauge()
                .Name("catchall_aggregate_ready")
                .Help(
                    "1 while ready: state restored and caught up with the log as of start, "
                    "consumption not paused (low disk), commits going through")
                .Register(r)
                .Add(w);
  restored_ = &prometheus::BuildCounter()
                   .Name("catchall_aggregate_restored_records_total")
                   .Help("Records of the changelog and the ids log read while restoring partitions")
                   .Register(r)
                   .Add(w);
  restoring_ = &prometheus::BuildGauge()
                    .Name("catchall_aggregate_restoring_partitions")
                    .Help("Partitions being restored from the changelog now")
                    .Register(r)
                    .Add(w);
  owned_ = &prometheus::BuildGauge()
                .Name("catchall_aggregate_owned_partitions")
                .Help("Partitions of the events topic this aggregator owns")
                .Register(r)
                .Add(w);
  not_taken_ = &prometheus::BuildGauge()
                    .Name("catchall_aggregate_partitions_not_taken")
                    .Help(
                        "Partitions the group gave this aggregator that it leaves uncounted: "
                        "added to the events topic after it started (their records are "
                        "fetched and dropped until a rebuild)")
                    .Register(r)
                    .Add(w);
}

void AggregatorProbe::OnRestored(size_t records) {
  restored_->Increment(static_cast<double>(records));
}
void AggregatorProbe::SetRestoring(int partitions) {
  restoring_->Set(static_cast<double>(partitions));
}
void AggregatorProbe::SetOwnedPartitions(size_t partitions) {
  owned_->Set(static_cast<double>(partitions));
}
void AggregatorProbe::SetPartitionsNotTaken(size_t partitions) {
  not_taken_->Set(static_cast<double>(partitions));
}

void AggregatorProbe::OnApplied(ApplyOutcome outcome, size_t n) {
  if (n == 0) return;
  auto v = static_cast<double>(n);
  switch (outcome) {
    case ApplyOutcome::kCounted: counted_->Increment(v); break;
    case ApplyOutcome::kDuplicate: duplicates_->Increment(v); break;
    case ApplyOutcome::kMalformed: malformed_->Increment(v); break;
  }
}

void AggregatorProbe::OnCommit(size_t records, size_t /*domains*/,
                               std::chrono::duration<double> took, double freshness_seconds) {
  commits_->Increment();
  commit_seconds_->Observe(took.count());
  commit_records_->Observe(static_cast<double>(records));
  freshness_->Observe(freshness_seconds);
}

void AggregatorProbe::OnCommitFailed() { commit_failures_->Increment(); }
void AggregatorProbe::SetLag(int64_t records) { lag_->Set(static_cast<double>(records)); }
void AggregatorProbe::SetDomains(uint64_t domains, uint64_t bytes) {
  domains_->Set(static_cast<double>(domains));
  bytes_->Set(static_cast<double>(bytes));
}
void AggregatorProbe::SetReady(bool ready) { ready_->Set(ready ? 1 : 0); }

}  // namespace catchall
