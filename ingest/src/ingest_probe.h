// Metrics of the ingest service.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/event.h"
#include "engine/status.h"

namespace prometheus {
class Counter;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace catchall {

class Metrics;

class IngestProbe {
 public:
  explicit IngestProbe(Metrics& metrics);
  // Thread-safe.
  void OnAccepted(EventType type, size_t n);
  void OnRejected(std::string_view reason, size_t n = 1);
  void OnBatch(size_t items);
  // A request the log did not store: counted as a 503 unless it was
  // answered 507 (a full disk, which catchall_storage_low_space and the
  // requests' code="507" show; the 503 alert fired for it).
  void OnNotStored(const Status& why);

 private:
  prometheus::Counter* delivered_;
  prometheus::Counter* bounced_;
  prometheus::Family<prometheus::Counter>* rejected_family_;
  std::mutex mu_;
  std::unordered_map<std::string, prometheus::Counter*> rejected_;  // GUARDED_BY(mu_)
  prometheus::Histogram* batch_items_;
  prometheus::Counter* unavailable_;
};

}  // namespace catchall
