#include "test_util.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>

namespace catchall::test {

ScopedTempDir::ScopedTempDir() {
  std::string templ = ::testing::TempDir() + "catchall-state-test-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + templ);
  path_ = templ;
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

KvStoreOptions SmallStoreOptions(std::string path, std::vector<ColumnSpec> columns) {
  KvStoreOptions options;
  options.path = std::move(path);
  options.columns = std::move(columns);
  options.block_cache_bytes = 8 << 20;
  options.write_buffer_bytes = 4 << 20;
  return options;
}

}  // namespace catchall::test
