// Numbers that simdjson refuses.
//
// JSON allows numbers of any size; simdjson's DOM parser refuses integers
// outside [-2^63, 2^64 - 1], and floats beyond the range of a double
// (1e400), as if the document were malformed. A body that carries such a
// number in a field catchall ignores is still valid JSON and must be read,
// so the parsers retry, on that error only, with the text this helper
// returns.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace catchall {

// Returns a copy of `json` in which every integer literal outside the 64-bit
// range ([-2^63, 2^64 - 1]) is written as a float literal (".0" appended), so
// that it reads as the nearest double, and every literal beyond a double's
// range (1e400, or 400 digits) as the largest double of its sign; nullopt when `json` has
// no such literal. Only text outside strings is touched; the rest is copied
// as is, malformed input included (the parser then reports it).
std::optional<std::string> FitOutOfRangeNumbers(std::string_view json);

}  // namespace catchall
