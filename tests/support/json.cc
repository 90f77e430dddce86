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

std::map<std::string, std::pair<int64_t, int64_t>> LookupCounts(std::string_view json) {
  std::map<std::string, std::pair<int64_t, int64_t>> out;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) return out;
  simdjson::dom::array results;
  if (root["results"].get_array().get(results)) return out;
  for (simdjson::dom::element r : results) {
    std::string_view domain;
    int64_t d = 0;
    int64_t b = 0;
    if (r["domain"].get_string().get(domain) || r["delivered"].get_int64().get(d) ||
        r["bounced"].get_int64().get(b)) {
      continue;
    }
    out[std::string(domain)] = {d, b};
  }
  return out;
}

bool IsJson(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  return !parser.parse(json.data(), json.size()).get(root);
}

}  // namespace catchall::testing
