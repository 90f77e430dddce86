// Fuzzes the event and batch parser (engine/event_parser.h): the input is a
// request body, parsed as NDJSON and as a JSON array, and as one topic record
// value.
//
// Invariants:
//  - items are reported with consecutive indexes from 0, at most max_items;
//  - NDJSON never fails as a whole except with TooLarge; a JSON array fails
//    only with InvalidArgument or TooLarge; every error has a message;
//  - every item that validates round-trips: the record value ingest would
//    write (AppendEventJson) is valid JSON, and parsing and validating it
//    again gives back the same event, so what was acknowledged is what the
//    aggregator counts.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/domain.h"
#include "engine/event.h"
#include "engine/event_parser.h"
#include "fuzz_check.h"

namespace catchall {
namespace {

// Small, so that the limit is reached by small inputs.
constexpr size_t kMaxItems = 32;

bool SameEvent(const Event& a, const Event& b) {
  return a.domain == b.domain && a.type == b.type && a.id == b.id && a.ts == b.ts;
}

void CheckRoundTrip(const Event& event) {
  FUZZ_CHECK(IsNormalizedDomain(event.domain), event.domain);
  std::string value;
  AppendEventJson(event, &value);
  simdjson::dom::parser json;
  simdjson::dom::element root;
  FUZZ_CHECK(json.parse(value).get(root) == simdjson::SUCCESS, value);

  static EventParser reparser;
  Result<RawEvent> raw = reparser.ParseObject(value);
  FUZZ_CHECK(raw.ok(), value + ": " + raw.status().ToString());
  Result<Event> back = ValidateEvent(*raw);
  FUZZ_CHECK(back.ok(), value + ": " + back.status().ToString());
  FUZZ_CHECK(SameEvent(*back, event), value);
}

void CheckItem(size_t index, size_t* expected_index, const Result<RawEvent>& raw) {
  FUZZ_CHECK(index == *expected_index, "item indexes are not consecutive");
  FUZZ_CHECK(index < kMaxItems, "more items than max_items were reported");
  ++*expected_index;
  if (!raw.ok()) {
    FUZZ_CHECK(raw.status().code() == Code::kInvalidArgument, raw.status().ToString());
    FUZZ_CHECK(!raw.status().message().empty(), "an item error has no message");
    return;
  }
  std::string_view code = "unset";
  Result<Event> event = ValidateEvent(*raw, &code);
  if (!event.ok()) {
    FUZZ_CHECK(event.status().code() == Code::kInvalidArgument, event.status().ToString());
    FUZZ_CHECK(code == "missing_field" || code == "invalid_domain" ||
                   code == "invalid_event_type" || code == "invalid_field",
               code);
    return;
  }
  FUZZ_CHECK(code.empty(), code);
  CheckRoundTrip(*event);
}

}  // namespace
}  // namespace catchall

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace catchall;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  static EventParser parser;

  for (BatchFormat format :
       {BatchFormat::kNdjson, BatchFormat::kJsonArray, BatchFormat::kJsonObjectOrNdjson}) {
    size_t next = 0;
    Status s = parser.ParseBatch(body, format, kMaxItems, [&](size_t i, const Result<RawEvent>& r) {
      CheckItem(i, &next, r);
    });
    if (!s.ok()) {
      FUZZ_CHECK(!s.message().empty(), s.ToString());
      FUZZ_CHECK(s.code() == Code::kTooLarge ||
                     (format == BatchFormat::kJsonArray && s.code() == Code::kInvalidArgument),
                 s.ToString());
      if (s.code() == Code::kTooLarge) FUZZ_CHECK(next == kMaxItems, s.ToString());
    }
  }

  // The same bytes as one topic record value, as the aggregator reads it.
  Result<RawEvent> one = parser.ParseObject(body);
  size_t next = 0;
  CheckItem(0, &next, one);

  // DetectBatchFormat looks at most at the body's byte-order mark and
  // leading whitespace.
  (void)DetectBatchFormat("application/json", body);
  return 0;
}
