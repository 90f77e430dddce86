// PartitionForKey (murmur2) on domain keys, as ingest routes every event.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "engine/partitioner.h"
#include "micro_util.h"

namespace catchall::micro {
namespace {

void BM_PartitionForKey(benchmark::State& state) {
  constexpr size_t kKeys = 4096;  // a power of two: the index is a mask
  std::vector<std::string> keys;
  keys.reserve(kKeys);
  size_t bytes = 0;
  for (size_t i = 0; i < kKeys; ++i) {
    keys.push_back(DomainName(i));
    bytes += keys.back().size();
  }
  size_t i = 0;
  for (auto _ : state) {
    int32_t partition = PartitionForKey(keys[i++ & (kKeys - 1)], kPartitions);
    benchmark::DoNotOptimize(partition);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes / kKeys));
}
BENCHMARK(BM_PartitionForKey);

}  // namespace
}  // namespace catchall::micro
