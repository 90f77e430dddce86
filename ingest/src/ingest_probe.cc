#include "ingest_probe.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "engine/metrics.h"

namespace catchall {

IngestProbe::IngestProbe(Metrics& metrics) {
  auto& r = metrics.registry();
  auto& accepted = prometheus::BuildCounter()
                       .Name("catchall_ingest_events_accepted_total")
                       .Help("Events acknowledged to clients (durable in the log), by type")
                       .Register(r);
  delivered_ = &accepted.Add({{"type", "delivered"}});
  bounced_ = &accepted.Add({{"type", "bounced"}});
  rejected_family_ = &prometheus::BuildCounter()
                          .Name("catchall_ingest_events_rejected_total")
                          .Help("Events refused as invalid, by reason")
                          .Register(r);
  batch_items_ =
      &prometheus::BuildHistogram()
           .Name("catchall_ingest_batch_items")
           .Help("Items per POST /events body read whole (not malformed or over a limit)")
           .Register(r)
           .Add({}, prometheus::Histogram::BucketBoundaries{1, 10, 100, 1000, 10000, 100000});
  unavailable_ = &prometheus::BuildCounter()
                      .Name("catchall_ingest_log_unavailable_total")
                      .Help("Requests answered 503 because the log refused or failed the append")
                      .Register(r)
                      .Add({});
}

void IngestProbe::OnAccepted(EventType type, size_t n) {
  (type == EventType::kBounced ? bounced_ : delivered_)->Increment(static_cast<double>(n));
}

void IngestProbe::OnRejected(std::string_view reason, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rejected_.find(std::string(reason));
  if (it == rejected_.end()) {
    it =
        rejected_
            .emplace(std::string(reason), &rejected_family_->Add({{"reason", std::string(reason)}}))
            .first;
  }
  it->second->Increment(static_cast<double>(n));
}

void IngestProbe::OnBatch(size_t items) { batch_items_->Observe(static_cast<double>(items)); }
void IngestProbe::OnNotStored(const Status& why) {
  if (why.code() != Code::kNoSpace) unavailable_->Increment();
}

}  // namespace catchall
