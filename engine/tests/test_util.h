// Helpers shared by the engine's unit tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "support/temp_dir.h"

namespace catchall::test {

// A fresh directory under ::testing::TempDir(), removed with its contents on
// destruction (the one helper of every test target).
using ScopedTempDir = ::catchall::testing::TempDir;

// True when `text` is exactly one valid JSON document (RFC 8259).
bool IsValidJson(std::string_view text);

// The string member `key` of the JSON object `text`, or "<missing>" /
// "<invalid json>" so that a failed expectation says what went wrong.
std::string JsonStringField(std::string_view text, std::string_view key);

// The unsigned integer member `key` of the JSON object `text`, or -1.
int64_t JsonIntField(std::string_view text, std::string_view key);

}  // namespace catchall::test
