#include "engine/event.h"

#include <fmt/format.h>

#include "engine/domain.h"
#include "engine/json_writer.h"

namespace catchall {

std::string_view EventTypeName(EventType type) {
  return type == EventType::kBounced ? "bounced" : "delivered";
}

std::optional<EventType> ParseEventType(std::string_view name) {
  if (name == "delivered") return EventType::kDelivered;
  if (name == "bounced") return EventType::kBounced;
  return std::nullopt;
}

Result<Event> ValidateEvent(const RawEvent& raw, std::string_view* error_code) {
  std::string_view ignored;
  std::string_view& code = error_code ? *error_code : ignored;
  code = "missing_field";
  if (!raw.domain) return Status::InvalidArgument("missing field 'domain'");
  if (!raw.type) return Status::InvalidArgument("missing field 'type'");
  auto type = ParseEventType(*raw.type);
  if (!type) {
    code = "invalid_event_type";
    return Status::InvalidArgument(fmt::format(
        "unknown event type '{}'; expected 'delivered' or 'bounced'", raw.type->substr(0, 40)));
  }
  Result<std::string> domain = NormalizeDomain(*raw.domain);
  if (!domain.ok()) {
    code = "invalid_domain";
    return domain.status();
  }
  code = "invalid_field";
  Event event;
  event.domain = std::move(domain).value();
  event.type = *type;
  if (raw.id) {
    if (raw.id->empty()) return Status::InvalidArgument("field 'id' is empty");
    if (raw.id->size() > kMaxEventIdLength) {
      return Status::InvalidArgument(fmt::format("field 'id' is {} bytes long; the limit is {}",
                                                 raw.id->size(), kMaxEventIdLength));
    }
    event.id = *raw.id;
  }
  if (raw.ts_too_large) {
    return Status::InvalidArgument(
        "field 'ts' is too large: at most 9223372036854775807 milliseconds since the epoch");
  }
  if (raw.ts) {
    if (*raw.ts < 0) return Status::InvalidArgument("field 'ts' must not be negative");
    event.ts = raw.ts;
  }
  code = {};
  return event;
}

void AppendEventJson(const Event& event, std::string* out) {
  out->append(R"({"domain":")");
  out->append(event.domain);  // normalized: LDH characters only, nothing to escape
  out->append(R"(","type":")");
  out->append(EventTypeName(event.type));
  out->push_back('"');
  if (!event.id.empty()) {
    out->append(R"(,"id":)");
    AppendJsonString(event.id, out);
  }
  if (event.ts) {
    out->append(R"(,"ts":)");
    out->append(fmt::format_int(*event.ts).c_str());
  }
  out->push_back('}');
}

}  // namespace catchall
