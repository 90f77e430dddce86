#include "engine/event_parser.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "engine/byte_order_mark.h"
#include "engine/json_numbers.h"

namespace catchall {

namespace dom = simdjson::dom;
namespace od = simdjson::ondemand;

struct EventParser::Impl {
  // The DOM parser validates a whole document before anything is read from
  // it, so a body is either valid JSON or refused; its buffers are reused.
  dom::parser parser;
  // Input copied here so that simdjson's required padding is always present.
  std::vector<char> buffer;

  const char* Pad(std::string_view data) {
    size_t need = data.size() + simdjson::SIMDJSON_PADDING;
    if (buffer.size() < need) buffer.resize(need);
    std::memcpy(buffer.data(), data.data(), data.size());
    std::memset(buffer.data() + data.size(), 0, simdjson::SIMDJSON_PADDING);
    return buffer.data();
  }

  // Parses `size` bytes at `padded` (followed by SIMDJSON_PADDING readable
  // bytes) into `*root`. Integers beyond 64 bits, which simdjson refuses as
  // a number error, are read as doubles (see json_numbers.h): valid JSON is
  // never refused for them.
  simdjson::error_code Parse(const char* padded, size_t size, dom::element* root) {
    simdjson::error_code error = parser.parse(padded, size, false).get(*root);
    if (error != simdjson::NUMBER_ERROR) return error;
    std::optional<std::string> widened = FitOutOfRangeNumbers({padded, size});
    if (!widened) return error;
    widened_copy = simdjson::padded_string(*widened);
    return parser.parse(widened_copy).get(*root);
  }
  simdjson::padded_string widened_copy;
};

namespace {

// RFC 7464's record separator, which starts each record of a JSON text sequence.
constexpr char kRecordSeparator = '\x1e';

std::string Malformed(simdjson::error_code error) {
  return fmt::format("malformed JSON: {}", simdjson::error_message(error));
}

// Reads the fields of one event from a parsed element.
Result<RawEvent> ReadEvent(dom::element element, std::string_view what) {
  dom::object object;
  if (element.get_object().get(object)) {
    return Status::InvalidArgument(fmt::format("{} is not a JSON object", what));
  }
  RawEvent raw;
  for (dom::key_value_pair field : object) {
    std::string_view key = field.key;
    if (key == "domain" || key == "type" || key == "id") {
      std::string_view s;
      if (field.value.get_string().get(s)) {
        return Status::InvalidArgument(fmt::format("field '{}' must be a string", key));
      }
      (key == "domain" ? raw.domain : key == "type" ? raw.type : raw.id) = s;
    } else if (key == "ts") {
      int64_t ts = 0;
      if (field.value.get_int64().get(ts)) {
        // JSON has one number type: 1700000000000.0 and 1.7e12 are integers
        // too (as JSON Schema says), only written differently.
        double d = 0;
        constexpr double kTwoTo63 = 9223372036854775808.0;
        if (field.value.get_double().get(d) || d != std::trunc(d)) {
          return Status::InvalidArgument(
              "field 'ts' must be an integer number of milliseconds since the epoch");
        }
        // A whole number outside int64 (from 2^63 on; JSON numbers that
        // large reach us as doubles or unsigned) is an integer all the
        // same: ValidateEvent says what is wrong with its value, under the
        // code of a negative one (a probe found the two under two codes).
        if (d >= kTwoTo63) {
          raw.ts_too_large = true;
          continue;
        }
        ts = d < -kTwoTo63 ? -1 : static_cast<int64_t>(d);
      }
      raw.ts = ts;
    }
    // Unknown fields are ignored so that producers can add fields first.
  }
  return raw;
}

// Walks a value completely, so that On-Demand meets any syntax error in it.
simdjson::error_code Walk(od::value value) {
  od::json_type type;
  if (auto e = value.type().get(type)) return e;
  switch (type) {
    case od::json_type::array: {
      od::array array;
      if (auto e = value.get_array().get(array)) return e;
      for (auto child : array) {
        od::value v;
        // The move selects simdjson's rvalue-qualified get().
        if (auto e = std::move(child).get(v)) return e;  // NOLINT(performance-move-const-arg)
        if (auto e = Walk(v)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::object: {
      od::object object;
      if (auto e = value.get_object().get(object)) return e;
      for (auto child : object) {
        od::field f;
        if (auto e = std::move(child).get(f)) return e;
        std::string_view key;
        if (auto e = f.unescaped_key().get(key)) return e;
        if (auto e = Walk(f.value())) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::string: {
      std::string_view s;
      return value.get_string().get(s);
    }
    case od::json_type::number: {
      double d;
      return value.get_double().get(d);
    }
    case od::json_type::boolean: {
      bool b;
      return value.get_bool().get(b);
    }
    case od::json_type::null: {
      // is_null() fails on a misspelled null ("nul"); its result must not
      // be converted to bool directly, which throws simdjson_error.
      bool null = false;
      if (auto e = value.is_null().get(null)) return e;
      return null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::SUCCESS;
}

// Only for error messages: where the body's first top-level value closes
// (the offset just past its bracket), skipping strings; npos if the body
// ends before its brackets balance (a body cut short); nullopt if a bracket
// closes one of the other kind or the body ends inside a string.
std::optional<size_t> EndOfFirstValue(std::string_view body) {
  std::string open;  // the brackets and braces not yet closed
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      open.push_back(c);
    } else if (c == ']' || c == '}') {
      if (open.empty() || open.back() != (c == ']' ? '[' : '{')) return std::nullopt;
      open.pop_back();
      if (open.empty()) return i + 1;
    }
  }
  // Inside a string at the end: a quote is missing as likely as the rest.
  if (in_string) return std::nullopt;
  return std::string_view::npos;
}

// Only for the error message of a malformed array: the index of the item
// where the JSON breaks, found by walking item after item. `offset`: bytes
// of the client's body before `padded` (a byte-order mark), for the
// positions the message gives.
std::string LocateArrayError(const char* padded, size_t size, simdjson::error_code dom_error,
                             size_t offset) {
  std::string_view body(padded, size);
  std::optional<size_t> closed = EndOfFirstValue(body);
  if (closed && *closed != std::string_view::npos &&
      body.find_first_not_of(" \t\r\n", *closed) != std::string_view::npos) {
    return fmt::format(
        "malformed JSON: the array is closed after {} bytes, but more follows it ({})",
        offset + *closed, simdjson::error_message(dom_error));
  }
  od::parser parser;
  od::document doc;
  simdjson::padded_string_view view(padded, size, size + simdjson::SIMDJSON_PADDING);
  od::array array;
  if (parser.iterate(view).get(doc) || doc.get_array().get(array)) {
    // Not even walkable: most often a body cut short, whose brackets do
    // not balance. Say so, and where the body ends.
    if (closed == std::string_view::npos) {
      return fmt::format(
          "malformed JSON: the body ends after {} bytes, before its array is closed ({})",
          offset + size, simdjson::error_message(dom_error));
    }
    return Malformed(dom_error);
  }
  size_t index = 0;
  for (auto element : array) {
    od::value v;
    // The move selects simdjson's rvalue-qualified get().
    simdjson::error_code e = std::move(element).get(v);  // NOLINT(performance-move-const-arg)
    if (!e) e = Walk(v);
    if (e) {
      return fmt::format("malformed JSON array at item {}: {}", index, simdjson::error_message(e));
    }
    ++index;
  }
  return fmt::format("malformed JSON after item {}: {}", index == 0 ? 0 : index - 1,
                     simdjson::error_message(dom_error));
}

Status TooManyItems(size_t max_items) {
  return Status::TooLarge(fmt::format("batch has more than {} items", max_items));
}

}  // namespace

BatchFormat DetectBatchFormat(std::string_view content_type, std::string_view body) {
  body = WithoutByteOrderMark(body);
  // Media types are case-insensitive (RFC 9110, 8.3.1).
  std::string type(content_type.substr(0, 256));
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (type.find("ndjson") != std::string::npos || type.find("jsonl") != std::string::npos ||
      type.find("json-seq") != std::string::npos) {
    return BatchFormat::kNdjson;
  }
  for (char c : body) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '[') return BatchFormat::kJsonArray;
    if (c == '{' && type.find("json") != std::string::npos) {
      return BatchFormat::kJsonObjectOrNdjson;
    }
    return BatchFormat::kNdjson;
  }
  return BatchFormat::kNdjson;
}

EventParser::EventParser() : impl_(std::make_unique<Impl>()) {}
EventParser::~EventParser() = default;

Result<RawEvent> EventParser::ParseObject(std::string_view json) {
  dom::element root;
  if (auto error = impl_->Parse(impl_->Pad(json), json.size(), &root)) {
    return Status::InvalidArgument(Malformed(error));
  }
  return ReadEvent(root, "value");
}

Status EventParser::ParseBatch(std::string_view body, BatchFormat format, size_t max_items,
                               const ItemCallback& on_item) {
  // Read as JSON, a byte-order mark made the first item malformed, or a
  // whole array one NDJSON line (a black-box probe). The error messages
  // still count the client's bytes.
  const size_t skipped = body.size();
  body = WithoutByteOrderMark(body);
  const size_t mark = skipped - body.size();
  const char* base = impl_->Pad(body);
  if (format == BatchFormat::kJsonObjectOrNdjson) {
    dom::element root;
    if (impl_->Parse(base, body.size(), &root) == simdjson::SUCCESS && root.is_object()) {
      if (max_items == 0) {
        return TooManyItems(max_items);
      }
      on_item(0, ReadEvent(root, "item"));
      return Status::Ok();
    }
    format = BatchFormat::kNdjson;
  }
  if (format == BatchFormat::kNdjson) {
    size_t index = 0;
    size_t pos = 0;
    while (pos < body.size()) {
      const char* nl = static_cast<const char*>(std::memchr(base + pos, '\n', body.size() - pos));
      size_t end = nl ? static_cast<size_t>(nl - base) : body.size();
      std::string_view line(base + pos, end - pos);
      pos = end + 1;
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
        line.remove_suffix(1);
      }
      // A JSON text sequence (RFC 7464, application/json-seq) starts each
      // record with the record separator; one record per line, as NDJSON.
      if (!line.empty() && line.front() == kRecordSeparator) line.remove_prefix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line
      if (index == max_items) {
        return TooManyItems(max_items);
      }
      // The rest of the padded buffer follows the line, so padding is there.
      dom::element root;
      Result<RawEvent> item = Status::InvalidArgument("malformed JSON");
      if (auto error = impl_->Parse(line.data(), line.size(), &root)) {
        item = Status::InvalidArgument(error == simdjson::TAPE_ERROR
                                           ? Malformed(error) +
                                                 " (one object per line, nothing after it)"
                                           : Malformed(error));
      } else {
        item = ReadEvent(root, "item");
      }
      on_item(index++, item);
    }
    return Status::Ok();
  }

  dom::element root;
  if (auto error = impl_->Parse(base, body.size(), &root)) {
    return Status::InvalidArgument(LocateArrayError(base, body.size(), error, mark));
  }
  dom::array array;
  if (root.get_array().get(array)) return Status::InvalidArgument("body is not a JSON array");
  size_t index = 0;
  for (dom::element element : array) {
    if (index == max_items) {
      return TooManyItems(max_items);
    }
    on_item(index++, ReadEvent(element, "item"));
  }
  return Status::Ok();
}

}  // namespace catchall
