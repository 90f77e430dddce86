#include "log_probe.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "engine/metrics.h"

namespace catchall {

LogProbe::LogProbe(Metrics& metrics) {
  auto& r = metrics.registry();
  writes_ = &prometheus::BuildCounter()
                 .Name("catchall_log_writes_total")
                 .Help("Group commits written to the local log")
                 .Register(r)
                 .Add({});
  write_errors_ = &prometheus::BuildCounter()
                       .Name("catchall_log_write_errors_total")
                       .Help("Group commits that failed to write")
                       .Register(r)
                       .Add({});
  records_ = &prometheus::BuildCounter()
                  .Name("catchall_log_records_total")
                  .Help("Records appended to the local log")
                  .Register(r)
                  .Add({});
  bytes_ = &prometheus::BuildCounter()
                .Name("catchall_log_bytes_total")
                .Help("Bytes of records appended to the local log")
                .Register(r)
                .Add({});
  rejected_ = &prometheus::BuildCounter()
                   .Name("catchall_log_rejected_appends_total")
                   .Help(
                       "Appends refused for backpressure, answered 503: the write queue was full "
                       "or aggregation was more than log.max_unconsumed_events behind")
                   .Register(r)
                   .Add({});
  write_seconds_ = &prometheus::BuildHistogram()
                        .Name("catchall_log_write_seconds")
                        .Help("Time to write one group commit to the store")
                        .Register(r)
                        .Add({}, LatencyBuckets());
  group_size_ = &prometheus::BuildHistogram()
                     .Name("catchall_log_group_commit_records")
                     .Help("Records per group commit")
                     .Register(r)
                     .Add({}, prometheus::Histogram::BucketBoundaries{
                                  1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384, 65536});
}

void LogProbe::OnWrite(size_t records, size_t bytes, std::chrono::duration<double> took, bool ok) {
  if (!ok) {
    write_errors_->Increment();
    return;
  }
  writes_->Increment();
  records_->Increment(static_cast<double>(records));
  bytes_->Increment(static_cast<double>(bytes));
  write_seconds_->Observe(took.count());
  group_size_->Observe(static_cast<double>(records));
}

void LogProbe::OnRejected() { rejected_->Increment(); }

}  // namespace catchall
