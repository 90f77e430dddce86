#include "test_util.h"

#include <utility>

namespace catchall::test {

KvStoreOptions SmallStoreOptions(std::string path, std::vector<ColumnSpec> columns) {
  KvStoreOptions options;
  options.path = std::move(path);
  options.columns = std::move(columns);
  options.block_cache_bytes = 8 << 20;
  options.write_buffer_bytes = 4 << 20;
  return options;
}

}  // namespace catchall::test
