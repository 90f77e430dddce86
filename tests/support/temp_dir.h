// TempDir: a scratch directory per test, for every test target (unit tests
// of engine/ and state/, end-to-end and Kafka tests).
#pragma once

#include <string>

namespace catchall::testing {

// A fresh directory under the test temp dir (::testing::TempDir()), removed
// with its contents by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace catchall::testing
