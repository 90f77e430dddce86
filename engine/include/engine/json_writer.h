// Small helpers to write JSON text. Responses and topic records are built by
// appending to a std::string; these make sure strings are escaped.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace catchall {

// Appends `s` as a JSON string literal (with quotes), escaping as RFC 8259
// requires. Bytes that are not valid UTF-8 are replaced by U+FFFD so that the
// output is always valid JSON.
void AppendJsonString(std::string_view s, std::string* out);

// Appends `n` in decimal, as a JSON number. Cheaper than fmt::format_to into
// a std::string (no format string to parse, no intermediate buffer), which
// matters where a record is built per event or per domain.
template <typename Integer>
void AppendDecimal(Integer n, std::string* out) {
  fmt::format_int digits(n);
  out->append(digits.data(), digits.size());
}

}  // namespace catchall
