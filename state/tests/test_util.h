// Helpers shared by the state library's unit tests.
#pragma once

#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "engine/domain_status.h"
#include "engine/kv_store.h"

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

// KvStore options for tests: small caches, the given columns.
KvStoreOptions SmallStoreOptions(std::string path, std::vector<ColumnSpec> columns);

}  // namespace catchall::test

namespace catchall {
// Readable DomainCounts in failed expectations.
inline void PrintTo(const DomainCounts& c, std::ostream* os) {
  *os << "{delivered " << c.delivered << ", bounced " << c.bounced << "}";
}
}  // namespace catchall
