#include "engine/domain_status.h"

#include <fmt/format.h>

namespace catchall {

std::string_view CatchAllStatusName(CatchAllStatus status) {
  switch (status) {
    case CatchAllStatus::kCatchAll:
      return "catch-all";
    case CatchAllStatus::kNotCatchAll:
      return "not catch-all";
    case CatchAllStatus::kUnknown:
      return "unknown";
  }
  return "unknown";
}

void AppendDomainStatusJson(std::string_view domain, const DomainCounts& counts, uint64_t threshold,
                            std::string* out) {
  // `domain` is normalized (LDH only), so it needs no escaping.
  fmt::format_to(std::back_inserter(*out),
                 R"({{"domain":"{}","status":"{}","delivered":{},"bounced":{}}})", domain,
                 CatchAllStatusName(Classify(counts, threshold)), counts.delivered, counts.bounced);
}

}  // namespace catchall
