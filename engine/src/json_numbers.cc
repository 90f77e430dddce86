#include "engine/json_numbers.h"

#include <cmath>
#include <cstdlib>
#include <string>

namespace catchall {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsNumberChar(char c) {
  return IsDigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

// Whether `token`, a run of number characters, is an integer literal outside
// [-2^63, 2^64 - 1].
bool IsOutOfRangeInteger(std::string_view token) {
  bool negative = !token.empty() && token.front() == '-';
  std::string_view digits = token.substr(negative ? 1 : 0);
  if (digits.empty() || (digits.size() > 1 && digits.front() == '0')) return false;
  for (char c : digits) {
    if (!IsDigit(c)) return false;  // a float, or not a number at all
  }
  // Equal lengths compare as numbers when compared as strings.
  std::string_view limit = negative ? "9223372036854775808" : "18446744073709551615";
  return digits.size() > limit.size() || (digits.size() == limit.size() && digits > limit);
}

// Whether `token` is a JSON number literal with a fraction or an exponent:
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? with one of the last two.
bool IsJsonFloat(std::string_view token) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < token.size() && IsDigit(token[i])) ++i;
    return i > start;
  };
  if (i < token.size() && token[i] == '-') ++i;
  if (i < token.size() && token[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  bool fraction_or_exponent = false;
  if (i < token.size() && token[i] == '.') {
    ++i;
    if (!digits()) return false;
    fraction_or_exponent = true;
  }
  if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
    ++i;
    if (i < token.size() && (token[i] == '+' || token[i] == '-')) ++i;
    if (!digits()) return false;
    fraction_or_exponent = true;
  }
  return fraction_or_exponent && i == token.size();
}

// Whether `token`, a JSON number literal, is too large for a double (1e400,
// or an integer of more than 309 digits).
bool OverflowsDouble(std::string_view token) {
  std::string copy(token);  // strtod needs the terminator
  double v = std::strtod(copy.c_str(), nullptr);
  return std::isinf(v);
}

}  // namespace

std::optional<std::string> FitOutOfRangeNumbers(std::string_view json) {
  std::string out;
  bool changed = false;
  size_t copied = 0;  // json[0, copied) is in `out` already
  size_t i = 0;
  while (i < json.size()) {
    char c = json[i];
    if (c == '"') {
      // Skip the string, escapes included; an unterminated one runs to the end.
      for (++i; i < json.size() && json[i] != '"'; ++i) {
        if (json[i] == '\\') ++i;
      }
      ++i;
      continue;
    }
    if (c != '-' && !IsDigit(c)) {
      // Not the start of a number; `.5e999` is none either, as a whole.
      if (IsNumberChar(c)) {
        while (i < json.size() && IsNumberChar(json[i])) ++i;
      } else {
        ++i;
      }
      continue;
    }
    size_t start = i;
    while (i < json.size() && IsNumberChar(json[i])) ++i;
    std::string_view token = json.substr(start, i - start);
    bool out_of_range_integer = IsOutOfRangeInteger(token);
    if (out_of_range_integer && !OverflowsDouble(token)) {
      if (!changed) out.reserve(json.size() + 16);
      changed = true;
      out.append(json.substr(copied, i - copied));
      out.append(".0");
      copied = i;
    } else if ((out_of_range_integer || IsJsonFloat(token)) && OverflowsDouble(token)) {
      if (!changed) out.reserve(json.size() + 32);
      changed = true;
      out.append(json.substr(copied, start - copied));
      out.append(token.front() == '-' ? "-1.7976931348623157e308" : "1.7976931348623157e308");
      copied = i;
    }
  }
  if (!changed) return std::nullopt;
  out.append(json.substr(copied));
  return out;
}

}  // namespace catchall
