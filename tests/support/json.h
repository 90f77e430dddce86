// Test helpers to read JSON response bodies.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace catchall::testing {

// The string field `key` of the top-level object, if present.
std::optional<std::string> JsonString(std::string_view json, std::string_view key);
// The integer field `key` of the top-level object, if present.
std::optional<int64_t> JsonInt(std::string_view json, std::string_view key);
// True if `json` parses as JSON.
bool IsJson(std::string_view json);

// domain -> (delivered, bounced) from a POST /domains/lookup answer.
std::map<std::string, std::pair<int64_t, int64_t>> LookupCounts(std::string_view json);

// Counters of a domain as GET /domains/{domain} reports them.
struct DomainView {
  int status = 0;
  std::string state;  // "catch-all", ...
  int64_t delivered = -1;
  int64_t bounced = -1;
};

}  // namespace catchall::testing
