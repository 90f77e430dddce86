// DiskMonitor: keeps a role from filling its data dir's disk.
//
// A thread samples the free space of the data dir's file system (through
// the Env) a few times a second. Below `min_free_bytes` the disk is "low":
// writes are refused with NoSpace (HTTP 507), /readyz says why, and
// consumers pause, until space returns, when everything resumes by itself.
// Between samples, Admit() counts the bytes it lets through, so a burst of
// writes cannot run past the threshold before the next sample. The
// threshold leaves room for what the store writes on its own (memtable
// flushes, compactions), so that in normal operation no store write ever
// meets ENOSPC. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/env.h"
#include "engine/status.h"

namespace prometheus {
class Gauge;
class Counter;
}  // namespace prometheus

namespace catchall {

class Metrics;

class DiskMonitor {
 public:
  // Watches the file system holding `path`; `metrics` may be null. The
  // first sample is taken here, so Check() is right from the start.
  DiskMonitor(Env* env, std::string path, uint64_t min_free_bytes, Metrics* metrics);
  ~DiskMonitor();

  // Samples every `interval` on a thread of its own.
  void Start(std::chrono::milliseconds interval = std::chrono::milliseconds(250));

  // OK while the disk is not low; else NoSpace saying how much is free, or
  // IoError once the data dir was deleted (the directory a sample found,
  // held open, has no links left; its path may name another by then).
  // That lasts: the store's files went with it, so every write would be
  // lost (a probe deleted the dir under a running serve, which acknowledged
  // 6 more events and lost all of them).
  Status Check() const;
  // Like Check(), for a write of `bytes` more: counts them against the
  // free space until the next sample.
  Status Admit(uint64_t bytes);
  // Reads the free space now (the thread does this; tests call it).
  void Sample();

  uint64_t min_free_bytes() const { return min_free_bytes_; }
  // Free bytes at the last sample.
  uint64_t free_bytes() const { return free_.load(std::memory_order_relaxed); }

 private:
  Status LowSpace(uint64_t free) const;
  Status Gone() const;

  Env* env_;
  std::string path_;
  uint64_t min_free_bytes_;
  std::atomic<uint64_t> free_{0};      // at the last sample
  std::atomic<uint64_t> admitted_{0};  // bytes admitted since the last sample
  std::atomic<bool> low_{false};
  std::mutex sample_mu_;           // one Sample() at a time
  int dir_fd_ = -1;                // GUARDED_BY(sample_mu_): the data dir, once it exists
  std::atomic<bool> gone_{false};  // it was deleted
  prometheus::Gauge* free_gauge_ = nullptr;
  prometheus::Gauge* low_gauge_ = nullptr;
  prometheus::Counter* refused_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace catchall
