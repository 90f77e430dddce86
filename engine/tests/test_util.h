// Helpers shared by the engine's unit tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace catchall::test {

// A fresh, unique directory under ::testing::TempDir(), removed (with its
// contents) on destruction.
class ScopedTempDir {
 public:
  ScopedTempDir();
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// True when `text` is exactly one valid JSON document (RFC 8259).
bool IsValidJson(std::string_view text);

// The string member `key` of the JSON object `text`, or "<missing>" /
// "<invalid json>" so that a failed expectation says what went wrong.
std::string JsonStringField(std::string_view text, std::string_view key);

// The unsigned integer member `key` of the JSON object `text`, or -1.
int64_t JsonIntField(std::string_view text, std::string_view key);

}  // namespace catchall::test
