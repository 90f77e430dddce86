// Metrics of the local log's writer.
#pragma once

#include <chrono>
#include <cstddef>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace catchall {

class Metrics;

class LogProbe {
 public:
  explicit LogProbe(Metrics& metrics);
  // One group commit of `records` records and `bytes` bytes.
  void OnWrite(size_t records, size_t bytes, std::chrono::duration<double> took, bool ok);
  // An append refused because the queue was full.
  void OnRejected();

 private:
  prometheus::Counter* writes_;
  prometheus::Counter* write_errors_;
  prometheus::Counter* records_;
  prometheus::Counter* bytes_;
  prometheus::Counter* rejected_;
  prometheus::Histogram* write_seconds_;
  prometheus::Histogram* group_size_;
};

}  // namespace catchall
