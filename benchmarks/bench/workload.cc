#include "bench/workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <vector>

namespace catchall::bench {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::array<std::string_view, 5> kTlds = {".net", ".com", ".org", ".io", ".gov"};

// Stream ids keep the per-domain and per-thread random sequences apart.
constexpr uint64_t kDomainStream = 0;
constexpr uint64_t kShardStream = 1ull << 40;

// The generator of domain `index`: name letters, TLD, then its event count.
SplitMix64 DomainRng(uint64_t seed, uint32_t index) {
  return SplitMix64(StreamSeed(seed, kDomainStream + index));
}

uint32_t CeilDiv(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

// One shard of the challenge workload: domains shard, shard + shards, ...,
// each emitting its burst, `window` bursts interleaved at random.
class ChallengeStream final : public EventStream {
 public:
  ChallengeStream(const ChallengeWorkload& workload, uint32_t shard, uint32_t shards, bool loop)
      : workload_(workload),
        shard_(shard),
        shards_(shards),
        loop_(loop),
        window_(std::max<uint32_t>(1, CeilDiv(ChallengeWorkload::kInterleave, shards))),
        rng_(StreamSeed(workload.seed(), kShardStream + shard)),
        next_domain_(shard) {
    active_.reserve(window_);
  }

  bool Next(GeneratedEvent* event) override {
    Refill();
    if (active_.empty()) {
      if (!loop_ || !any_events_) return false;
      ++passes_;
      next_domain_ = shard_;
      Refill();
      if (active_.empty()) return false;
    }
    const size_t s = rng_.Below(active_.size());
    Burst& burst = active_[s];
    event->domain = burst.index;
    event->type = ChallengeWorkload::IsBounce(burst.index, burst.events, burst.next)
                      ? EventType::kBounced
                      : EventType::kDelivered;
    if (++burst.next == burst.events) {
      active_[s] = active_.back();
      active_.pop_back();
    }
    return true;
  }

  uint32_t WrittenDomain(SplitMix64& rng) const override {
    const uint64_t limit =
        passes_ > 0 ? workload_.domain_count() : std::max<uint64_t>(next_domain_, 1);
    return static_cast<uint32_t>(rng.Below(std::min(limit, workload_.domain_count())));
  }

  uint64_t passes() const override { return passes_; }

 private:
  struct Burst {
    uint32_t index;
    uint32_t events;
    uint32_t next;
  };

  void Refill() {
    const uint64_t n = workload_.domain_count();
    while (active_.size() < window_ && next_domain_ < n) {
      const auto index = static_cast<uint32_t>(next_domain_);
      next_domain_ += shards_;
      const uint32_t events = workload_.EventCount(index);
      if (events == 0) continue;
      any_events_ = true;
      active_.push_back({index, events, 0});
    }
  }

  const ChallengeWorkload& workload_;
  const uint32_t shard_;
  const uint32_t shards_;
  const bool loop_;
  const uint32_t window_;
  SplitMix64 rng_;
  uint64_t next_domain_;
  uint64_t passes_ = 0;
  bool any_events_ = false;
  std::vector<Burst> active_;
};

class UniformStream final : public EventStream {
 public:
  UniformStream(const UniformWorkload& workload, uint32_t shard)
      : workload_(workload),
        rng_(StreamSeed(workload.seed(), kShardStream + shard)),
        // P(bounce) as a 64-bit threshold: one random number per decision.
        bounce_below_(workload.bounce_probability() >= 1.0
                          ? UINT64_MAX
                          : static_cast<uint64_t>(workload.bounce_probability() * 0x1.0p64)) {}

  bool Next(GeneratedEvent* event) override {
    event->domain = static_cast<uint32_t>(rng_.Below(workload_.domain_count()));
    event->type = rng_.Next() < bounce_below_ ? EventType::kBounced : EventType::kDelivered;
    return true;
  }

  uint32_t WrittenDomain(SplitMix64& rng) const override { return workload_.RandomDomain(rng); }

 private:
  const UniformWorkload& workload_;
  SplitMix64 rng_;
  uint64_t bounce_below_;
};

}  // namespace

std::string_view ExpectedStatus(const DomainCounts& counts, uint64_t threshold) {
  if (counts.bounced >= 1) return "not catch-all";
  if (counts.delivered > threshold) return "catch-all";
  return "unknown";
}

void AppendLower(std::string_view s, std::string* out) {
  for (char c : s) out->push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
}

void ChallengeWorkload::AppendDomainName(uint32_t index, std::string* out) const {
  SplitMix64 rng = DomainRng(seed(), index);
  for (int i = 0; i < kLetters; ++i) out->push_back(kAlphabet[rng.Below(kAlphabet.size())]);
  out->append(kTlds[rng.Below(kTlds.size())]);
}

uint32_t ChallengeWorkload::EventCount(uint32_t index) const {
  SplitMix64 rng = DomainRng(seed(), index);
  for (int i = 0; i < kLetters + 1; ++i) rng.Next();  // letters and TLD
  return static_cast<uint32_t>(rng.Below(kMaxEventsExclusive));
}

DomainCounts ChallengeWorkload::PassCounts(uint32_t index) const {
  const uint32_t events = EventCount(index);
  DomainCounts c;
  for (uint32_t j = 0; j < events; ++j) {
    if (IsBounce(index, events, j)) {
      ++c.bounced;
    } else {
      ++c.delivered;
    }
  }
  return c;
}

std::unique_ptr<EventStream> ChallengeWorkload::NewStream(uint32_t shard, uint32_t shards) const {
  return std::make_unique<ChallengeStream>(*this, shard, std::max<uint32_t>(shards, 1), loop_);
}

void UniformWorkload::AppendDomainName(uint32_t index, std::string* out) const {
  fmt::format_to(std::back_inserter(*out), "d{}-{:08x}.com", index,
                 static_cast<uint32_t>(Mix64(StreamSeed(seed(), index)) >> 32));
}

std::unique_ptr<EventStream> UniformWorkload::NewStream(uint32_t shard, uint32_t /*shards*/) const {
  return std::make_unique<UniformStream>(*this, shard);
}

}  // namespace catchall::bench
