#include "write_stall_listener.h"

namespace catchall {

void WriteStallListener::OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool was = !stalled_.empty();
  if (info.condition.cur == rocksdb::WriteStallCondition::kNormal) {
    stalled_.erase(info.cf_name);
  } else {
    stalled_.insert(info.cf_name);
  }
  const bool is = !stalled_.empty();
  stalled_now_.store(is, std::memory_order_relaxed);
  if (!was && is) {
    since_ = Clock::now();
    ++stalls_;
  } else if (was && !is) {
    total_ += Clock::now() - since_;
  }
}

uint64_t WriteStallListener::stalls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stalls_;
}

double WriteStallListener::stalled_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  Clock::duration d = total_;
  if (!stalled_.empty()) d += Clock::now() - since_;
  return std::chrono::duration<double>(d).count();
}

}  // namespace catchall
