// The catch-all status rules of the product, in one place.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace catchall {

inline constexpr uint64_t kDefaultCatchAllThreshold = 1000;

enum class CatchAllStatus { kUnknown, kCatchAll, kNotCatchAll };

// "unknown", "catch-all", "not catch-all" (the API's spelling).
std::string_view CatchAllStatusName(CatchAllStatus status);

// Per-domain counters.
struct DomainCounts {
  uint64_t delivered = 0;
  uint64_t bounced = 0;

  DomainCounts& operator+=(const DomainCounts& other) {
    delivered += other.delivered;
    bounced += other.bounced;
    return *this;
  }
  bool operator==(const DomainCounts&) const = default;
};

// bounced >= 1                       -> not catch-all
// bounced == 0 and delivered > T     -> catch-all
// otherwise (including never seen)   -> unknown
inline CatchAllStatus Classify(const DomainCounts& counts, uint64_t threshold) {
  if (counts.bounced >= 1) return CatchAllStatus::kNotCatchAll;
  if (counts.delivered > threshold) return CatchAllStatus::kCatchAll;
  return CatchAllStatus::kUnknown;
}

// {"domain":"...","status":"...","delivered":N,"bounced":M}, the body of
// GET /domains/{domain} and the value of a changelog record.
void AppendDomainStatusJson(std::string_view domain, const DomainCounts& counts, uint64_t threshold,
                            std::string* out);

}  // namespace catchall

namespace catchall {

// Reads the counters back from a changelog record value written by
// AppendDomainStatusJson for `domain` (the record's key): a value naming
// another domain is Corruption, as an event whose key is not its domain is
// malformed. Thread-safe.
Result<DomainCounts> ParseDomainStatusJson(std::string_view json, std::string_view domain);

// Besides domain records, every aggregator transaction writes one
// checkpoint record to each changelog partition it advanced, saying up to
// which events offset the partition's records are complete. Its key cannot
// be a domain (normalized domains never start with '_'), and readers of the
// changelog skip it.
inline constexpr std::string_view kChangelogCheckpointKey = "_checkpoint";
void AppendChangelogCheckpointJson(int32_t partition, int64_t events_offset, std::string* out);
// The events offset of a checkpoint record read from `partition`;
// Corruption when it names another partition.
Result<int64_t> ParseChangelogCheckpointJson(std::string_view json, int32_t partition);

}  // namespace catchall
