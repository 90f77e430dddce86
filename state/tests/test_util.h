// Helpers shared by the state library's unit tests.
#pragma once

#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "engine/domain_status.h"
#include "engine/kv_store.h"
#include "support/temp_dir.h"

namespace catchall::test {

// A fresh directory under ::testing::TempDir(), removed with its contents on
// destruction (the one helper of every test target).
using ScopedTempDir = ::catchall::testing::TempDir;

// KvStore options for tests: small caches, the given columns.
KvStoreOptions SmallStoreOptions(std::string path, std::vector<ColumnSpec> columns);

}  // namespace catchall::test

namespace catchall {
// Readable DomainCounts in failed expectations.
inline void PrintTo(const DomainCounts& c, std::ostream* os) {
  *os << "{delivered " << c.delivered << ", bounced " << c.bounced << "}";
}
}  // namespace catchall
