// EventParser: reads events out of JSON with simdjson.
//
// Used by ingest for request bodies (NDJSON or a JSON array of items) and by
// aggregators for topic record values (one object each). The parser owns
// simdjson's buffers, so one instance serves one thread; reuse it across
// calls to avoid allocation.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>

#include "engine/event.h"
#include "engine/status.h"

namespace catchall {

enum class BatchFormat {
  kNdjson,     // one JSON object per line; blank lines are ignored
  kJsonArray,  // [ {...}, {...} ]
  // Said to be JSON and starting with '{': one object, which may span
  // lines (pretty-printed); a body that is not one JSON document is NDJSON
  // (clients that send NDJSON as application/json keep working).
  kJsonObjectOrNdjson,
};

// Picks the format from a Content-Type and, when that says plain JSON or
// nothing, from the first non-blank byte of the body ('[' means an array,
// '{' with a JSON Content-Type kJsonObjectOrNdjson). A UTF-8 byte-order
// mark starting the body is skipped, here and by ParseBatch.
BatchFormat DetectBatchFormat(std::string_view content_type, std::string_view body);

class EventParser {
 public:
  // Called once per item, in order. `index` counts items from 0 (NDJSON:
  // non-blank lines). The RawEvent's views are valid only during the call.
  using ItemCallback = std::function<void(size_t index, const Result<RawEvent>& item)>;

  EventParser();
  ~EventParser();
  EventParser(const EventParser&) = delete;
  EventParser& operator=(const EventParser&) = delete;

  // Parses one JSON object. The views of the result are valid until the next
  // call on this parser.
  Result<RawEvent> ParseObject(std::string_view json);

  // Parses a batch, calling `on_item` for each item, well-formed or not. An
  // item that is valid JSON but not a valid event (wrong field type, not an
  // object) is reported to `on_item` and parsing goes on. Returns
  // InvalidArgument when the body as a whole is malformed (a JSON array with
  // a syntax error; the message names the item index where it broke) and
  // TooLarge when it holds more than `max_items` items. Items reported before
  // such an error were reported; the caller decides whether to keep them.
  // A byte-order mark starting `body` is skipped (engine/byte_order_mark.h).
  Status ParseBatch(std::string_view body, BatchFormat format, size_t max_items,
                    const ItemCallback& on_item);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace catchall
