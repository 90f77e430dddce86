#include "engine/json_numbers.h"

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

}  // namespace

std::optional<std::string> WidenOutOfRangeIntegers(std::string_view json) {
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
      ++i;
      continue;
    }
    size_t start = i;
    while (i < json.size() && IsNumberChar(json[i])) ++i;
    if (IsOutOfRangeInteger(json.substr(start, i - start))) {
      if (!changed) out.reserve(json.size() + 16);
      changed = true;
      out.append(json.substr(copied, i - copied));
      out.append(".0");
      copied = i;
    }
  }
  if (!changed) return std::nullopt;
  out.append(json.substr(copied));
  return out;
}

}  // namespace catchall
