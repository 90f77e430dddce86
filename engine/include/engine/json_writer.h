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

// Whether AppendJsonString keeps every byte of `s` (it is valid UTF-8).
bool IsValidUtf8(std::string_view s);

// Appends `bytes` (any size) as a JSON string of their base64 (RFC 4648,
// padded): how bytes that are not UTF-8 reach a JSON reader exactly.
void AppendJsonBase64(std::string_view bytes, std::string* out);

// `s` as a JSON string literal, for a log line that quotes bytes from
// outside (a record's key, a reason that names it): a newline in them
// started a forged log line, and raw bytes made the log binary to grep (a
// black-box probe).
inline std::string QuotedForLog(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

// Appends `n` in decimal, as a JSON number. Cheaper than fmt::format_to into
// a std::string (no format string to parse, no intermediate buffer), which
// matters where a record is built per event or per domain.
template <typename Integer>
void AppendDecimal(Integer n, std::string* out) {
  fmt::format_int digits(n);
  out->append(digits.data(), digits.size());
}

}  // namespace catchall
