#include "support/json.h"

#include <simdjson.h>

namespace catchall::testing {

std::optional<std::string> JsonString(std::string_view json, std::string_view key) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) return std::nullopt;
  std::string_view v;
  if (root[key].get_string().get(v)) return std::nullopt;
  return std::string(v);
}

std::optional<int64_t> JsonInt(std::string_view json, std::string_view key) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) return std::nullopt;
  int64_t v = 0;
  if (root[key].get_int64().get(v)) return std::nullopt;
  return v;
}

bool IsJson(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  return !parser.parse(json.data(), json.size()).get(root);
}

}  // namespace catchall::testing
