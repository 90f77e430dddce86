// A UTF-8 byte-order mark (EF BB BF) starting a JSON body.
//
// It is not part of the JSON: RFC 8259 (8.1) lets a parser ignore it, and
// editors and some tools on Windows write one. Debian's simdjson (3.0) does
// not skip it, so the bodies catchall parses (event batches, lookups) go
// through this first.
#pragma once

#include <string_view>

namespace catchall {

inline constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

// `body` without a byte-order mark at its start (and unchanged otherwise).
inline std::string_view WithoutByteOrderMark(std::string_view body) {
  if (body.substr(0, kByteOrderMark.size()) == kByteOrderMark) {
    body.remove_prefix(kByteOrderMark.size());
  }
  return body;
}

}  // namespace catchall
