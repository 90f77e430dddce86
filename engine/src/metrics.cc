#include "engine/metrics.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace catchall {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {}
Metrics::~Metrics() = default;

void Metrics::AddScrapeHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(hooks_mu_);
  hooks_.push_back(std::move(hook));
}

std::string Metrics::Serialize() const {
  {
    std::lock_guard<std::mutex> lock(hooks_mu_);
    for (const auto& hook : hooks_) hook();
  }
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

std::vector<double> LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0};
}

}  // namespace catchall
