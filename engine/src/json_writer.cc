#include "engine/json_writer.h"

#include <openssl/evp.h>
#include <simdjson.h>

#include <cstdint>

namespace catchall {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not valid.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t len;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  uint32_t cp = c & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(s, i);
      if (len == 0) {
        out->append("\xEF\xBF\xBD");
        ++i;
      } else {
        out->append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

bool IsValidUtf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

void AppendJsonBase64(std::string_view bytes, std::string* out) {
  out->push_back('"');
  // EVP_EncodeBlock takes an int length: pieces of a multiple of 3 bytes
  // (no padding inside) keep any size in range.
  constexpr size_t kPiece = 3 << 20;
  do {
    std::string_view piece = bytes.substr(0, kPiece);
    bytes.remove_prefix(piece.size());
    size_t start = out->size();
    // 4 characters per 3 bytes, and a terminating NUL.
    out->resize(start + 4 * ((piece.size() + 2) / 3) + 1);
    int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out->data() + start),
                                  reinterpret_cast<const unsigned char*>(piece.data()),
                                  static_cast<int>(piece.size()));
    out->resize(start + static_cast<size_t>(written));
  } while (!bytes.empty());
  out->push_back('"');
}

}  // namespace catchall
