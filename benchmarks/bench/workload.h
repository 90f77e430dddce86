// Seeded, reproducible workloads generated on the fly.
//
// A Workload is the immutable description of a domain set and of how events
// are spread over it: domain i's name is a pure function of (seed, i), so no
// workload ever materializes its domains or its events, and 10,000,000
// domains cost nothing until they are used. Each client thread draws events
// from its own EventStream (one shard of the workload); streams are not
// thread-safe, workloads are (they are read-only).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "bench/rng.h"

namespace catchall::bench {

enum class EventType : uint8_t { kDelivered = 0, kBounced = 1 };

constexpr std::string_view EventTypeName(EventType t) {
  return t == EventType::kBounced ? "bounced" : "delivered";
}

struct GeneratedEvent {
  uint32_t domain = 0;  // index in [0, Workload::domain_count())
  EventType type = EventType::kDelivered;
};

// Counts of one domain.
struct DomainCounts {
  uint64_t delivered = 0;
  uint64_t bounced = 0;
  friend bool operator==(const DomainCounts&, const DomainCounts&) = default;
};

// The status the server must report for `counts` (DESIGN.md's rules).
std::string_view ExpectedStatus(const DomainCounts& counts, uint64_t threshold);

// One thread's sequence of events. Not thread-safe.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // The next event; false when the stream is exhausted (only a challenge
  // stream created with loop=false ever is).
  virtual bool Next(GeneratedEvent* event) = 0;
  // A domain this stream has already written to (any domain if none yet):
  // what a mixed workload reads back.
  virtual uint32_t WrittenDomain(SplitMix64& rng) const = 0;
  // How many times the stream started over from its first domain.
  virtual uint64_t passes() const { return 0; }
};

class Workload {
 public:
  virtual ~Workload() = default;
  virtual std::string_view name() const = 0;
  uint64_t domain_count() const { return domains_; }
  uint64_t seed() const { return seed_; }

  // Appends the name of domain `index` as the client sends it (the challenge
  // workload mixes case; the server lower-cases).
  virtual void AppendDomainName(uint32_t index, std::string* out) const = 0;
  std::string DomainName(uint32_t index) const {
    std::string s;
    AppendDomainName(index, &s);
    return s;
  }
  // True when two indices can name the same domain once lower-cased.
  virtual bool NamesMayCollide() const = 0;

  // A uniformly chosen domain of the set (what `get` mode looks up).
  uint32_t RandomDomain(SplitMix64& rng) const {
    return static_cast<uint32_t>(rng.Below(domains_));
  }

  // Stream `shard` of `shards` (one per client thread); together the shards
  // produce the workload's events.
  virtual std::unique_ptr<EventStream> NewStream(uint32_t shard, uint32_t shards) const = 0;

 protected:
  Workload(uint64_t seed, uint64_t domains) : seed_(seed), domains_(domains) {}

 private:
  uint64_t seed_;
  uint64_t domains_;
};

// The original challenge's generator. Domain i is 14 random letters (A-Z,
// a-z) and one of .net/.com/.org/.io/.gov; it gets max = uniform 0..2499
// events, emitted as one burst, about 20 bursts interleaved at a time. With
// b = floor(0.35 * max), event j (0-based) is a bounce when b != 0 and
// j % b == 0, except that domains with i % 25 == 0 never bounce (they end
// catch-all when max > 1000). About 0.2% of events are bounces and 2.4% of
// domains end catch-all.
class ChallengeWorkload final : public Workload {
 public:
  static constexpr int kLetters = 14;
  static constexpr uint32_t kMaxEventsExclusive = 2500;
  static constexpr uint32_t kInterleave = 20;

  // `loop`: when every domain has had its burst, start again from domain 0
  // (counts then keep growing); otherwise streams end.
  ChallengeWorkload(uint64_t seed, uint64_t domains, bool loop = true)
      : Workload(seed, domains), loop_(loop) {}

  std::string_view name() const override { return "challenge"; }
  void AppendDomainName(uint32_t index, std::string* out) const override;
  bool NamesMayCollide() const override { return true; }
  std::unique_ptr<EventStream> NewStream(uint32_t shard, uint32_t shards) const override;

  // The number of events (max) of domain `index` in one pass.
  uint32_t EventCount(uint32_t index) const;
  // Whether event `j` of a domain with `events` events is a bounce.
  static bool IsBounce(uint32_t index, uint32_t events, uint32_t j) {
    if (index % 25 == 0) return false;
    const uint32_t b = static_cast<uint32_t>(0.35 * events);
    return b != 0 && j % b == 0;
  }
  // The counts of domain `index` after one pass.
  DomainCounts PassCounts(uint32_t index) const;

 private:
  bool loop_;
};

// Events spread uniformly at random over the domains; each is a bounce with
// probability `bounce_probability`. Domain i is "d<i>-<hash>.com" (lower
// case, distinct for distinct i; the hash depends on the seed).
class UniformWorkload final : public Workload {
 public:
  UniformWorkload(uint64_t seed, uint64_t domains, double bounce_probability = 0.002)
      : Workload(seed, domains), bounce_probability_(bounce_probability) {}

  std::string_view name() const override { return "uniform"; }
  void AppendDomainName(uint32_t index, std::string* out) const override;
  bool NamesMayCollide() const override { return false; }
  std::unique_ptr<EventStream> NewStream(uint32_t shard, uint32_t shards) const override;
  double bounce_probability() const { return bounce_probability_; }

 private:
  double bounce_probability_;
};

// Appends `s` lower-cased (ASCII).
void AppendLower(std::string_view s, std::string* out);

}  // namespace catchall::bench
