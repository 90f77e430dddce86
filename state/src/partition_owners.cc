#include "state/partition_owners.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace catchall {

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
    if (const auto* other = held(); other != nullptr && !stopped_) {
      spdlog::warn(
          "aggregate: worker {} waits for worker {} to let partition {} go (it was moved while "
          "that worker was busy)",
          worker, other->second, other->first);
    }
    released_.wait_for(lock, wait_, [&] { return stopped_ || held() == nullptr; });
    if (stopped_) return Status::Aborted("stopping");
    if (const auto* other = held()) {
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
