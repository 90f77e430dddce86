#include "engine/domain.h"

#include <fmt/format.h>
#include <idn2.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace catchall {
namespace {

// Input longer than this cannot normalize to a valid domain even after IDNA
// mapping shrinks it; refusing early bounds the work done on hostile input.
constexpr size_t kMaxInputBytes = 1024;

bool IsAsciiLetterOrDigit(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// The length of the well-formed UTF-8 sequence of a visible character
// (U+00A0 and above) at the start of `s`, or 0. Invisible and
// direction-changing characters (C1 controls, General Punctuation's
// spaces, joiners, separators and bidi controls, the BOM, specials) count
// as not visible: a message shows them escaped, as it does bytes that are
// not UTF-8.
size_t VisibleUtf8(std::string_view s) {
  const auto lead = static_cast<unsigned char>(s[0]);
  const size_t n = lead >= 0xc2 && lead <= 0xdf   ? 2
                   : lead >= 0xe0 && lead <= 0xef ? 3
                   : lead >= 0xf0 && lead <= 0xf4 ? 4
                                                  : 0;
  if (n == 0 || n > s.size() || !simdjson::validate_utf8(s.data(), n)) return 0;
  uint32_t cp = lead & (0x7f >> n);
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<unsigned char>(s[i]) & 0x3f);
  // Besides those: the soft hyphen, the combining grapheme joiner, the
  // Arabic letter mark, Hangul and Mongolian fillers and separators,
  // variation selectors and tags (a review found them shown raw).
  const bool invisible = cp < 0xa0 || cp == 0xad || cp == 0x34f || cp == 0x61c || cp == 0x115f ||
                         cp == 0x1160 || (cp >= 0x17b4 && cp <= 0x17b5) ||
                         (cp >= 0x180b && cp <= 0x180f) || (cp >= 0x2000 && cp <= 0x206f) ||
                         cp == 0x3164 || (cp >= 0xfe00 && cp <= 0xfe0f) || cp == 0xfeff ||
                         cp == 0xffa0 || (cp >= 0xfff0 && cp <= 0xffff) ||
                         (cp >= 0xe0000 && cp <= 0xe0fff);
  return invisible ? 0 : n;
}

// `s` for an error message: ASCII letters, digits and punctuation, and
// visible non-ASCII characters, as they are; every other byte as \xNN
// (a quote and a backslash too, so that the message stays readable once
// JSON-escaped). At most 80 bytes, then "...".
std::string Printable(std::string_view s) {
  constexpr size_t kMaxShown = 80;
  std::string out;
  const std::string_view shown = s.substr(0, kMaxShown);
  for (size_t i = 0; i < shown.size();) {
    const auto c = static_cast<unsigned char>(shown[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (size_t n = c >= 0x80 ? VisibleUtf8(shown.substr(i)) : 0; n > 0) {
      out.append(shown.substr(i, n));
      i += n;
    } else {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

// Checks the LDH hostname rules on a lower-case ASCII name without trailing dot.
Status ValidateHostname(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("domain is empty");
  if (name.size() > kMaxDomainLength) {
    return Status::InvalidArgument(fmt::format("domain is {} characters long; the limit is {}",
                                               name.size(), kMaxDomainLength));
  }
  size_t start = 0;
  bool last_label_numeric = true;
  bool has_alabel = false;
  while (true) {
    size_t end = name.find('.', start);
    std::string_view label =
        name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (label.empty()) {
      return Status::InvalidArgument(fmt::format(
          "domain '{}' has an empty label (two dots in a row or a leading dot)", Printable(name)));
    }
    if (label.size() > kMaxLabelLength) {
      return Status::InvalidArgument(
          fmt::format("label '{}' is {} characters long; the limit is {}", Printable(label),
                      label.size(), kMaxLabelLength));
    }
    bool numeric = true;
    for (unsigned char c : label) {
      if (c == '-') {
        numeric = false;
        continue;
      }
      if (!IsAsciiLetterOrDigit(c)) {
        return Status::InvalidArgument(fmt::format(
            "character '{}' is not allowed in domain '{}' (only letters, digits, "
            "hyphens and dots)",
            Printable(std::string_view(reinterpret_cast<const char*>(&c), 1)), Printable(name)));
      }
      if (c > '9') numeric = false;
    }
    if (label.front() == '-' || label.back() == '-') {
      return Status::InvalidArgument(
          fmt::format("label '{}' must not start or end with a hyphen", Printable(label)));
    }
    if (label.size() >= 4 && label.substr(0, 4) == "xn--") has_alabel = true;
    last_label_numeric = numeric;
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (last_label_numeric) {
    return Status::InvalidArgument(fmt::format(
        "domain '{}' ends in an all-numeric label; IP addresses are not domains", Printable(name)));
  }
  if (has_alabel) {
    // A-labels must be valid punycode of a valid U-label; only a real IDNA
    // implementation can tell, so ask libidn2 to decode them.
    char* unicode = nullptr;
    std::string z(name);
    int rc = idn2_to_unicode_8z8z(z.c_str(), &unicode, 0);
    std::unique_ptr<char, decltype(&std::free)> guard(unicode, &std::free);
    if (rc != IDN2_OK) {
      return Status::InvalidArgument(fmt::format("domain '{}' has an invalid punycode label: {}",
                                                 Printable(name), idn2_strerror(rc)));
    }
    char* back = nullptr;
    rc = idn2_lookup_u8(reinterpret_cast<const uint8_t*>(unicode),
                        reinterpret_cast<uint8_t**>(&back), IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    std::unique_ptr<char, decltype(&std::free)> guard_back(back, &std::free);
    if (rc != IDN2_OK || name != back) {
      return Status::InvalidArgument(fmt::format(
          "domain '{}' has a punycode label that is not a valid IDNA name{}{}", Printable(name),
          rc != IDN2_OK ? ": " : "", rc != IDN2_OK ? idn2_strerror(rc) : ""));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> NormalizeDomain(std::string_view input) {
  if (input.empty()) return Status::InvalidArgument("domain is empty");
  if (input.size() > kMaxInputBytes) {
    return Status::InvalidArgument(
        fmt::format("domain is {} bytes long; a domain has at most {} characters", input.size(),
                    kMaxDomainLength));
  }
  const bool had_trailing_dot = input.back() == '.';
  if (had_trailing_dot) input.remove_suffix(1);

  bool ascii = true;
  for (unsigned char c : input) {
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  }

  std::string out;
  if (ascii) {
    // Fast path for the overwhelmingly common case: ASCII case folding is all
    // that UTS#46 mapping would do to a valid LDH name.
    out.resize(input.size());
    for (size_t i = 0; i < input.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(input[i]);
      out[i] = static_cast<char>((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
    }
  } else {
    std::string z(input);  // libidn2 wants a NUL-terminated string
    if (z.find('\0') != std::string::npos) {
      return Status::InvalidArgument("domain contains a NUL character");
    }
    char* ascii_out = nullptr;
    int rc = idn2_lookup_u8(reinterpret_cast<const uint8_t*>(z.c_str()),
                            reinterpret_cast<uint8_t**>(&ascii_out),
                            IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    std::unique_ptr<char, decltype(&std::free)> guard(ascii_out, &std::free);
    if (rc != IDN2_OK) {
      return Status::InvalidArgument(fmt::format("'{}' is not a valid internationalized domain: {}",
                                                 Printable(input), idn2_strerror(rc)));
    }
    out = ascii_out;
    // UTS#46 maps ideographic full stops to '.', so a trailing one shows up
    // now; it is the one trailing dot only if the input had none.
    if (!had_trailing_dot && !out.empty() && out.back() == '.') out.pop_back();
  }
  CATCHALL_RETURN_IF_ERROR(ValidateHostname(out));
  return out;
}

bool IsNormalizedDomain(std::string_view domain) {
  auto normalized = NormalizeDomain(domain);
  return normalized.ok() && *normalized == domain;
}

bool HasNormalizedDomainShape(std::string_view s) {
  if (s.empty() || s.size() > kMaxDomainLength) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return IsAsciiLetterOrDigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

}  // namespace catchall
