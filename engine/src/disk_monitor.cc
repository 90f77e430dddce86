#include "engine/disk_monitor.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/metrics.h"
#include "engine/this_thread.h"

namespace catchall {

DiskMonitor::DiskMonitor(Env* env, std::string path, uint64_t min_free_bytes, Metrics* metrics)
    : env_(env), path_(std::move(path)), min_free_bytes_(min_free_bytes) {
  if (metrics) {
    auto& r = metrics->registry();
    free_gauge_ = &prometheus::BuildGauge()
                       .Name("catchall_storage_free_bytes")
                       .Help("Free bytes on the data dir's file system (last sample)")
                       .Register(r)
                       .Add({});
    prometheus::BuildGauge()
        .Name("catchall_storage_min_free_bytes")
        .Help("storage.min_free_mb: below this free space writes are refused")
        .Register(r)
        .Add({})
        .Set(static_cast<double>(min_free_bytes_));
    low_gauge_ = &prometheus::BuildGauge()
                      .Name("catchall_storage_low_space")
                      .Help("1 while free space is below storage.min_free_mb (writes refused)")
                      .Register(r)
                      .Add({});
    refused_ = &prometheus::BuildCounter()
                    .Name("catchall_storage_refused_writes_total")
                    .Help("Writes refused because the data dir's disk was low (answered 507)")
                    .Register(r)
                    .Add({});
  }
  Sample();
}

DiskMonitor::~DiskMonitor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

void DiskMonitor::Start(std::chrono::milliseconds interval) {
  thread_ = std::thread([this, interval] {
    NameThisThread("disk-monitor");
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, interval, [this] { return stop_; })) {
      lock.unlock();
      Sample();
      lock.lock();
    }
  });
}

void DiskMonitor::Sample() {
  // The thread samples, and so does a node's shutdown while the thread
  // still runs (FlushStoreOnShutdown): one at a time.
  std::lock_guard<std::mutex> sampling(sample_mu_);
  // The directory itself, held open: deleted, it has no links left, even if
  // its path now names another (a symlink re-pointed, a new empty dir).
  if (dir_fd_ < 0) {
    dir_fd_ = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } else if (struct stat st{};
             ::fstat(dir_fd_, &st) == 0 && st.st_nlink == 0 && !gone_.exchange(true)) {
    spdlog::error("{}", Gone().message());
  }
  Result<uint64_t> free = env_->FreeBytes(path_);
  if (!free.ok()) {
    // The dir may not exist yet; the next sample will see it.
    spdlog::debug("disk monitor: {}", free.status().ToString());
    return;
  }
  free_.store(*free, std::memory_order_relaxed);
  admitted_.store(0, std::memory_order_relaxed);
  // A full disk is low whatever the threshold: with storage.min_free_mb = 0
  // Admit() refuses every write there, and /readyz must say so.
  bool low = *free < min_free_bytes_ || *free == 0;
  bool was = low_.exchange(low);
  if (low != was) {
    if (low) {
      spdlog::warn(
          "disk low: {} MB free on '{}', below storage.min_free_mb ({} MB); refusing "
          "writes and pausing consumption until space returns",
          *free >> 20, path_, min_free_bytes_ >> 20);
    } else {
      spdlog::info("disk space is back: {} MB free on '{}'; resuming", *free >> 20, path_);
    }
  }
  if (free_gauge_) free_gauge_->Set(static_cast<double>(*free));
  if (low_gauge_) low_gauge_->Set(low ? 1 : 0);
}

Status DiskMonitor::LowSpace(uint64_t free) const {
  return Status::NoSpace(fmt::format(
      "the disk of '{}' is nearly full ({} MB free, storage.min_free_mb is {} MB); writes are "
      "refused until space is freed",
      path_, free >> 20, min_free_bytes_ >> 20));
}

Status DiskMonitor::Gone() const {
  return Status::IoError(fmt::format(
      "the data dir '{}' was deleted while running: writes are refused and consumption is "
      "paused; restart on a restored data dir (embedded mode: from a backup; a cluster role's "
      "is rebuilt from Kafka; docs/operations.md, \"A damaged data dir\")",
      path_));
}

Status DiskMonitor::Check() const {
  if (gone_.load(std::memory_order_relaxed)) return Gone();
  if (!low_.load(std::memory_order_relaxed)) return Status::Ok();
  return LowSpace(free_.load(std::memory_order_relaxed));
}

Status DiskMonitor::Admit(uint64_t bytes) {
  if (gone_.load(std::memory_order_relaxed)) return Gone();
  uint64_t free = free_.load(std::memory_order_relaxed);
  // Reserve with compare-and-swap, never add-then-undo: Sample() may reset
  // the count between an add and its undo, and the undo would then wrap it
  // below zero (refusing everything, or letting a later write of the same
  // size through when it wraps back).
  uint64_t admitted = admitted_.load(std::memory_order_relaxed);
  while (!low_.load(std::memory_order_relaxed) && bytes <= free &&
         admitted + bytes + min_free_bytes_ <= free) {
    if (admitted_.compare_exchange_weak(admitted, admitted + bytes, std::memory_order_relaxed)) {
      return Status::Ok();
    }
  }
  if (refused_) refused_->Increment();
  if (low_.load(std::memory_order_relaxed)) return LowSpace(free);
  // The disk is not low; this write is what would take it there. Say so with
  // the free space as it is, so that a client whose request is too large
  // for the margin does not wait for space that its retry would need again.
  // In KB below a megabyte, else to a tenth of one: whole megabytes said
  // "0 MB free and this write of 1 MB" of a 35 KB batch (a probe).
  auto size = [](uint64_t b) {
    return b < (uint64_t{1} << 20) ? fmt::format("{} KB", (b + 1023) >> 10)
                                   : fmt::format("{:.1f} MB", static_cast<double>(b) / (1 << 20));
  };
  uint64_t left = admitted < free ? free - admitted : 0;
  if (bytes > left) {
    return Status::NoSpace(fmt::format(
        "the disk of '{}' has {} free, less than this write's {}; free space or send smaller "
        "requests",
        path_, size(left), size(bytes)));
  }
  return Status::NoSpace(
      fmt::format("the disk of '{}' has {} free and this write of {} would leave {}, less than "
                  "storage.min_free_mb ({} MB); send smaller requests or free space",
                  path_, size(left), size(bytes), size(left - bytes), min_free_bytes_ >> 20));
}

}  // namespace catchall
