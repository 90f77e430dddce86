// EmbeddedAggregation: the aggregator of embedded mode. One thread consumes
// every partition of the local log's events topic, folds records into an
// Aggregator and commits the delta with the new offsets to the CounterStore
// every commit interval (or sooner when many events are pending).
// Malformed records go to the dead-letter topic before the offsets that pass
// them are committed.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/local_log.h"
#include "engine/status.h"
#include "state/aggregator.h"
#include "state/counter_store.h"

namespace catchall {

class Metrics;
class AggregatorProbe;

struct EmbeddedAggregationOptions {
  std::string topic{kEventsTopic};
  std::string dead_letter_topic{kDeadLetterTopic};
  std::chrono::milliseconds commit_interval{100};
  size_t commit_max_records = 500000;
  std::chrono::seconds id_window{std::chrono::hours(24)};
};

class EmbeddedAggregation {
 public:
  // `log` and `store` must outlive this. `metrics` may be null.
  EmbeddedAggregation(EmbeddedAggregationOptions options, LocalLog* log, CounterStore* store,
                      Metrics* metrics);
  ~EmbeddedAggregation();

  // Resumes every partition from its committed offset and starts consuming.
  Status Start();
  // Commits what is pending and stops.
  void Stop();

  // True once everything that was in the log at Start has been committed.
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // Not OK when the last commit failed.
  Status Health() const;

 private:
  void Run();
  // Writes dead letters, then the delta. On failure rewinds to the last commit.
  bool Commit();

  EmbeddedAggregationOptions options_;
  LocalLog* log_;
  CounterStore* store_;
  std::unique_ptr<AggregatorProbe> probe_;
  std::unique_ptr<Aggregator> aggregator_;
  int32_t partitions_ = 0;
  std::vector<int64_t> positions_;   // next offset to read, per partition
  std::vector<int64_t> committed_;   // next offset committed, per partition
  std::vector<int64_t> start_ends_;  // log end offsets at Start
  std::vector<LogRecord> dead_letters_;
  std::chrono::steady_clock::time_point last_commit_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  mutable std::mutex health_mu_;
  Status health_;  // GUARDED_BY(health_mu_)
  std::thread thread_;
};

}  // namespace catchall
