#include "bench/ledger.h"

#include <cstdlib>
#include <new>

namespace catchall::bench {

Ledger::Ledger(uint64_t domains)
    : domains_(domains),
      counts_(static_cast<uint32_t*>(std::calloc(2 * domains + 2, sizeof(uint32_t)))) {
  if (counts_ == nullptr) throw std::bad_alloc();
}

Ledger::~Ledger() { std::free(counts_); }

void Ledger::Uncertain(uint32_t domain, EventType type, uint32_t n) {
  std::lock_guard lock(mu_);
  DomainCounts& c = uncertain_[domain];
  (type == EventType::kBounced ? c.bounced : c.delivered) += n;
}

DomainCounts Ledger::UncertainOf(uint32_t domain) const {
  std::lock_guard lock(mu_);
  auto it = uncertain_.find(domain);
  return it == uncertain_.end() ? DomainCounts{} : it->second;
}

size_t Ledger::uncertain_domains() const {
  std::lock_guard lock(mu_);
  return uncertain_.size();
}

}  // namespace catchall::bench
