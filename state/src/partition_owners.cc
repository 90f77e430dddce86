#include "state/partition_owners.h"

#include <fmt/format.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "engine/metrics.h"

namespace catchall {

PartitionOwners::PartitionOwners(OwnershipListener* next, std::chrono::milliseconds wait,
                                 Metrics* metrics)
    : next_(next), wait_(wait) {
  if (metrics == nullptr) return;
  waiting_gauge_ = &prometheus::BuildGauge()
                        .Name("catchall_aggregate_waiting_partitions")
                        .Help(
                            "Partitions a worker of this process was given and waits to take "
                            "until another worker of it lets them go")
                        .Register(metrics->registry())
                        .Add({});
}

Status PartitionOwners::Taking(int worker, const std::vector<int32_t>& partitions) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    // The first partition another worker holds, if any.
    auto held = [&]() -> const std::pair<const int32_t, int>* {
      for (int32_t p : partitions) {
        auto it = holder_.find(p);
        if (it != holder_.end() && it->second != worker) return &*it;
      }
      return nullptr;
    };
    // The whole assignment waits, not only the partitions another worker
    // holds: none of it is counted meanwhile
    // (catchall_aggregate_waiting_partitions).
    size_t waiting = 0;
    if (const auto* other = held(); other != nullptr && !stopped_) {
      spdlog::warn(
          "aggregate: worker {} waits for worker {} to let partition {} go (it was moved while "
          "that worker was busy)",
          worker, other->second, other->first);
      waiting = partitions.size();
      if (waiting_gauge_) waiting_gauge_->Increment(static_cast<double>(waiting));
    }
    const auto began = std::chrono::steady_clock::now();
    released_.wait_for(lock, wait_, [&] { return stopped_ || held() == nullptr; });
    if (waiting > 0 && waiting_gauge_) waiting_gauge_->Decrement(static_cast<double>(waiting));
    if (stopped_) return Status::Aborted("stopping");
    const auto* other = held();
    if (waiting > 0 && other == nullptr) {
      spdlog::info("aggregate: worker {} takes the partitions it waited {} ms for", worker,
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - began)
                       .count());
    }
    if (other != nullptr) {
      return Status::Unavailable(fmt::format(
          "partition {} was given to worker {} while worker {} of this process still writes it; "
          "joining again",
          other->first, worker, other->second));
    }
    for (int32_t p : partitions) holder_[p] = worker;
  }
  return next_ != nullptr ? next_->Taking(worker, partitions) : Status::Ok();
}

void PartitionOwners::Released(int worker, const std::vector<int32_t>& partitions) {
  // The standbys hear of the release before a waiting taker can go on and
  // tell them of its taking: they see the partitions change hands in order.
  if (next_ != nullptr) next_->Released(worker, partitions);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int32_t p : partitions) {
      auto it = holder_.find(p);
      if (it != holder_.end() && it->second == worker) holder_.erase(it);
    }
  }
  released_.notify_all();
}

void PartitionOwners::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  released_.notify_all();
}

}  // namespace catchall
