// The event model: what one delivery event is, on the wire and in the log.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace catchall {

enum class EventType : uint8_t { kDelivered = 0, kBounced = 1 };

// "delivered" / "bounced".
std::string_view EventTypeName(EventType type);
// Exact, case-sensitive match of the names above.
std::optional<EventType> ParseEventType(std::string_view name);

inline constexpr size_t kMaxEventIdLength = 256;

// One validated event. `domain` is normalized (see domain.h).
struct Event {
  std::string domain;
  EventType type = EventType::kDelivered;
  std::string id;             // empty: no id (no deduplication)
  std::optional<int64_t> ts;  // producer's timestamp, epoch milliseconds
};

// An event as it appears in JSON, before validation. The views point into the
// parser's buffers and are valid until the parser parses again.
struct RawEvent {
  std::optional<std::string_view> domain;
  std::optional<std::string_view> type;
  std::optional<std::string_view> id;
  std::optional<int64_t> ts;
  // A whole-number `ts` from 2^63 on: the right JSON type, out of range
  // (ValidateEvent refuses it as "invalid_field", like a negative one).
  bool ts_too_large = false;
};

// Validates and normalizes a raw event. InvalidArgument says which field is
// wrong and why; *error_code (if given) gets a machine-readable reason:
// "missing_field", "invalid_domain", "invalid_event_type" or "invalid_field".
Result<Event> ValidateEvent(const RawEvent& raw, std::string_view* error_code = nullptr);

// Appends the topic record value of `event` to *out:
//   {"domain":"example.com","type":"delivered","id":"...","ts":123}
// (id and ts only when present). This is the record format of the events
// topic, readable by kcat and any Kafka tool.
void AppendEventJson(const Event& event, std::string* out);

}  // namespace catchall
