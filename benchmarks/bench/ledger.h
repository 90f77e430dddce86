// What the server must hold at the end of a --verify run.
//
// Per domain index, the number of delivered and bounced events the server
// acknowledged (204/200), plus the events whose fate is unknown (the request
// was sent but neither acknowledged nor refused before the client gave up):
// the server may have counted them or not. The counters are a dense array of
// 2 x uint32 per domain allocated zeroed and untouched (calloc), so a run that
// touches few of 10,000,000 domains costs few pages and a full one 80 MB.
//
// Thread-safe: Ack and Uncertain may be called from every client thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "bench/workload.h"

namespace catchall::bench {

class Ledger {
 public:
  explicit Ledger(uint64_t domains);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  uint64_t domains() const { return domains_; }

  void Ack(uint32_t domain, EventType type, uint32_t n = 1) {
    std::atomic_ref<uint32_t>(counts_[2 * static_cast<size_t>(domain) + static_cast<size_t>(type)])
        .fetch_add(n, std::memory_order_relaxed);
  }
  void Uncertain(uint32_t domain, EventType type, uint32_t n = 1);

  // REQUIRES: no concurrent Ack (read after the load has stopped).
  DomainCounts Acked(uint32_t domain) const {
    return {counts_[2 * static_cast<size_t>(domain)], counts_[2 * static_cast<size_t>(domain) + 1]};
  }
  // Events of `domain` that may or may not have been counted.
  DomainCounts UncertainOf(uint32_t domain) const;
  // REQUIRES: no concurrent Ack or Uncertain.
  bool Touched(uint32_t domain) const {
    return counts_[2 * static_cast<size_t>(domain)] != 0 ||
           counts_[2 * static_cast<size_t>(domain) + 1] != 0 ||
           (!uncertain_.empty() && uncertain_.count(domain) != 0);
  }
  size_t uncertain_domains() const;

 private:
  uint64_t domains_;
  uint32_t* counts_;  // calloc'ed, 2 * domains_
  mutable std::mutex mu_;
  std::unordered_map<uint32_t, DomainCounts> uncertain_;  // GUARDED_BY(mu_) while loading
};

}  // namespace catchall::bench
