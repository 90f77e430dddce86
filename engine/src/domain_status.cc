#include "engine/domain_status.h"

#include <fmt/format.h>
#include <simdjson.h>

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

Result<DomainCounts> ParseDomainStatusJson(std::string_view json) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(json.data(), json.size()).get(root)) {
    return Status::Corruption(
        fmt::format("status record is not JSON: {}", simdjson::error_message(error)));
  }
  DomainCounts c;
  uint64_t delivered = 0;
  uint64_t bounced = 0;
  if (root["delivered"].get_uint64().get(delivered) || root["bounced"].get_uint64().get(bounced)) {
    return Status::Corruption("status record lacks integer 'delivered' and 'bounced'");
  }
  c.delivered = delivered;
  c.bounced = bounced;
  return c;
}

}  // namespace catchall
