#include "engine/event_parser.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cstring>
#include <vector>

namespace catchall {

namespace od = simdjson::ondemand;

struct EventParser::Impl {
  od::parser parser;
  // Input copied here so that simdjson's required padding is always present.
  std::vector<char> buffer;

  // Copies `data` into the padded buffer and returns a view over it.
  simdjson::padded_string_view Pad(std::string_view data) {
    size_t need = data.size() + simdjson::SIMDJSON_PADDING;
    if (buffer.size() < need) buffer.resize(need);
    std::memcpy(buffer.data(), data.data(), data.size());
    std::memset(buffer.data() + data.size(), 0, simdjson::SIMDJSON_PADDING);
    return simdjson::padded_string_view(buffer.data(), data.size(), buffer.size());
  }
};

namespace {

// True when tokens follow the value just read (the document should be over).
bool HasTrailingContent(od::document& doc) { return !doc.current_location().error(); }

std::string_view ErrorText(simdjson::error_code error) { return simdjson::error_message(error); }

// True for errors that only concern one value's type, after which the
// document can still be iterated.
bool IsTypeError(simdjson::error_code error) {
  return error == simdjson::INCORRECT_TYPE || error == simdjson::NUMBER_ERROR ||
         error == simdjson::NUMBER_OUT_OF_RANGE;
}

// Reads the fields of one event object. Sets *fatal when the JSON text itself
// is broken (as opposed to the event being invalid).
Result<RawEvent> ReadObject(od::object object, bool* fatal) {
  RawEvent raw;
  for (auto field_result : object) {
    od::field field;
    if (auto error = std::move(field_result).get(field)) {
      *fatal = true;
      return Status::InvalidArgument(fmt::format("malformed JSON: {}", ErrorText(error)));
    }
    std::string_view key;
    if (auto error = field.unescaped_key().get(key)) {
      *fatal = true;
      return Status::InvalidArgument(fmt::format("malformed JSON key: {}", ErrorText(error)));
    }
    od::value value = field.value();
    if (key == "domain" || key == "type" || key == "id") {
      std::string_view s;
      if (auto error = value.get_string().get(s)) {
        if (!IsTypeError(error)) {
          *fatal = true;
          return Status::InvalidArgument(fmt::format("malformed JSON: {}", ErrorText(error)));
        }
        return Status::InvalidArgument(fmt::format("field '{}' must be a string", key));
      }
      if (key == "domain") {
        raw.domain = s;
      } else if (key == "type") {
        raw.type = s;
      } else {
        raw.id = s;
      }
    } else if (key == "ts") {
      int64_t ts = 0;
      if (auto error = value.get_int64().get(ts)) {
        if (!IsTypeError(error)) {
          *fatal = true;
          return Status::InvalidArgument(fmt::format("malformed JSON: {}", ErrorText(error)));
        }
        return Status::InvalidArgument(
            "field 'ts' must be an integer number of milliseconds since the epoch");
      }
      raw.ts = ts;
    }
    // Unknown fields are ignored so that producers can add fields first.
  }
  return raw;
}

// Interprets one value as an event object.
Result<RawEvent> ReadEvent(od::value value, bool* fatal) {
  od::object object;
  if (auto error = value.get_object().get(object)) {
    if (!IsTypeError(error)) *fatal = true;
    return Status::InvalidArgument(IsTypeError(error)
                                       ? std::string("item is not a JSON object")
                                       : fmt::format("malformed JSON: {}", ErrorText(error)));
  }
  return ReadObject(object, fatal);
}

}  // namespace

BatchFormat DetectBatchFormat(std::string_view content_type, std::string_view body) {
  if (content_type.find("ndjson") != std::string_view::npos ||
      content_type.find("jsonl") != std::string_view::npos ||
      content_type.find("json-seq") != std::string_view::npos) {
    return BatchFormat::kNdjson;
  }
  for (char c : body) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '[' ? BatchFormat::kJsonArray : BatchFormat::kNdjson;
  }
  return BatchFormat::kNdjson;
}

EventParser::EventParser() : impl_(std::make_unique<Impl>()) {}
EventParser::~EventParser() = default;

Result<RawEvent> EventParser::ParseObject(std::string_view json) {
  od::document doc;
  if (auto error = impl_->parser.iterate(impl_->Pad(json)).get(doc)) {
    return Status::InvalidArgument(fmt::format("malformed JSON: {}", ErrorText(error)));
  }
  od::object object;
  if (auto error = doc.get_object().get(object)) {
    return Status::InvalidArgument(IsTypeError(error)
                                       ? std::string("value is not a JSON object")
                                       : fmt::format("malformed JSON: {}", ErrorText(error)));
  }
  bool fatal = false;
  Result<RawEvent> raw = ReadObject(object, &fatal);
  if (raw.ok() && HasTrailingContent(doc)) {
    return Status::InvalidArgument("malformed JSON: unexpected content after the object");
  }
  return raw;
}

Status EventParser::ParseBatch(std::string_view body, BatchFormat format, size_t max_items,
                               const ItemCallback& on_item) {
  simdjson::padded_string_view padded = impl_->Pad(body);
  const char* base = padded.data();
  if (format == BatchFormat::kNdjson) {
    size_t index = 0;
    size_t pos = 0;
    while (pos < body.size()) {
      const char* nl = static_cast<const char*>(std::memchr(base + pos, '\n', body.size() - pos));
      size_t end = nl ? static_cast<size_t>(nl - base) : body.size();
      std::string_view line(base + pos, end - pos);
      size_t line_start = pos;
      pos = end + 1;
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
        line.remove_suffix(1);
      }
      size_t lead = line.find_first_not_of(" \t");
      if (lead == std::string_view::npos) continue;  // blank line
      if (index == max_items) {
        return Status::TooLarge(fmt::format("batch has more than {} items", max_items));
      }
      // The rest of the padded buffer follows the line, so padding is there.
      simdjson::padded_string_view line_view(base + line_start, line.size(),
                                             padded.capacity() - line_start);
      od::document doc;
      Result<RawEvent> item = Status::InvalidArgument("malformed JSON");
      if (auto error = impl_->parser.iterate(line_view).get(doc)) {
        item = Status::InvalidArgument(fmt::format("malformed JSON: {}", ErrorText(error)));
      } else {
        od::object object;
        if (auto oerr = doc.get_object().get(object)) {
          item = Status::InvalidArgument(IsTypeError(oerr)
                                             ? std::string("item is not a JSON object")
                                             : fmt::format("malformed JSON: {}", ErrorText(oerr)));
        } else {
          bool fatal = false;
          item = ReadObject(object, &fatal);
          if (item.ok() && HasTrailingContent(doc)) {
            item = Status::InvalidArgument(
                "malformed JSON: unexpected content after the object (one object per line)");
          }
        }
      }
      on_item(index++, item);
    }
    return Status::Ok();
  }

  od::document doc;
  if (auto error = impl_->parser.iterate(padded).get(doc)) {
    return Status::InvalidArgument(fmt::format("malformed JSON: {}", ErrorText(error)));
  }
  od::array array;
  if (auto error = doc.get_array().get(array)) {
    return Status::InvalidArgument(IsTypeError(error)
                                       ? std::string("body is not a JSON array")
                                       : fmt::format("malformed JSON: {}", ErrorText(error)));
  }
  size_t index = 0;
  for (auto element : array) {
    od::value value;
    if (auto error = std::move(element).get(value)) {
      return Status::InvalidArgument(
          fmt::format("malformed JSON array at item {}: {}", index, ErrorText(error)));
    }
    if (index == max_items) {
      return Status::TooLarge(fmt::format("batch has more than {} items", max_items));
    }
    bool fatal = false;
    Result<RawEvent> item = ReadEvent(value, &fatal);
    if (fatal) {
      return Status::InvalidArgument(
          fmt::format("malformed JSON array at item {}: {}", index, item.status().message()));
    }
    on_item(index++, item);
  }
  if (HasTrailingContent(doc)) {
    return Status::InvalidArgument(
        fmt::format("malformed JSON: unexpected content after the array (after item {})", index));
  }
  return Status::Ok();
}

}  // namespace catchall
