#include "test_util.h"

#include <simdjson.h>

namespace catchall::test {

bool IsValidJson(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element element;
  return parser.parse(padded).get(element) == simdjson::SUCCESS;
}

std::string JsonStringField(std::string_view text, std::string_view key) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element element;
  if (parser.parse(padded).get(element) != simdjson::SUCCESS) return "<invalid json>";
  std::string_view value;
  if (element[key].get_string().get(value) != simdjson::SUCCESS) return "<missing>";
  return std::string(value);
}

int64_t JsonIntField(std::string_view text, std::string_view key) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element element;
  if (parser.parse(padded).get(element) != simdjson::SUCCESS) return -1;
  int64_t value = 0;
  if (element[key].get_int64().get(value) != simdjson::SUCCESS) return -1;
  return value;
}

}  // namespace catchall::test
