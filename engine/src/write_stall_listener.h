// Counts RocksDB's write stalls: the times its write controller slowed or
// stopped writes because flushes or compactions fell behind, and how long
// that lasted. A stall holds every writer of the store (the local log's
// group commits, the aggregation's transactions), so it shows directly in
// the serving tail; operators read it as catchall_store_write_stall_*.
#pragma once

#include <rocksdb/listener.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>

namespace catchall {

class WriteStallListener final : public rocksdb::EventListener {
 public:
  // Called by RocksDB on each column family's change of condition.
  void OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) override;

  // Stalls begun so far (a stall is any time at least one column family is
  // delayed or stopped) and their total duration, the current one included.
  uint64_t stalls() const;
  double stalled_seconds() const;
  // Whether a stall is on now; lock-free, for the write path.
  bool stalled() const { return stalled_now_.load(std::memory_order_relaxed); }

 private:
  using Clock = std::chrono::steady_clock;
  mutable std::mutex mu_;
  std::set<std::string> stalled_;         // GUARDED_BY(mu_): column families not kNormal
  Clock::time_point since_;               // GUARDED_BY(mu_): when stalled_ became non-empty
  uint64_t stalls_ = 0;                   // GUARDED_BY(mu_)
  Clock::duration total_{};               // GUARDED_BY(mu_): of the stalls that ended
  std::atomic<bool> stalled_now_{false};  // !stalled_.empty()
};

}  // namespace catchall
