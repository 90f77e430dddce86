// Metrics: the process's Prometheus registry. Components register their
// metrics through small probe classes (LogProbe, HttpProbe, ...), which own
// the metric handles and are the only code that touches prometheus-cpp.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace prometheus {
class Registry;
}

namespace catchall {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  prometheus::Registry& registry() { return *registry_; }

  // Runs `hook` before every Serialize, to refresh gauges that are read
  // rather than pushed (memory, disk).
  void AddScrapeHook(std::function<void()> hook);

  // Everything in the Prometheus text exposition format (version 0.0.4).
  std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex hooks_mu_;
  std::vector<std::function<void()>> hooks_;  // GUARDED_BY(hooks_mu_)
};

// Latency histogram buckets, in seconds, from 50 us to 10 s.
std::vector<double> LatencyBuckets();

}  // namespace catchall
