// KvStore::Write of a batch of puts spread uniformly over 10,000,000 domains,
// the way a query node applies a poll of changelog records (and an aggregator
// a commit) under uniform traffic: with the batch's keys in arrival order, and
// sorted. Each put of a random key walks the memtable's skiplist from its top;
// sorted keys, marked so (KvWriteBatch::MarkKeysAscending), let RocksDB start
// each insert from where the previous one ended, which is what this measures.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/kv_store.h"
#include "micro_util.h"

namespace catchall::micro {
namespace {

constexpr uint64_t kDomains = 10'000'000;
// Keys written before timing starts: a memtable some way into its 64 MB.
constexpr uint64_t kPrefill = 400'000;

void BM_StoreWriteUniformPuts(benchmark::State& state, bool sorted) {
  const auto batch_size = static_cast<size_t>(state.range(0));
  ScopedTempDir dir;
  std::unique_ptr<KvStore> kv;
  CheckOk(KvStore::Open(StoreOptions(dir.path(), {{"counts", ColumnKind::kPlain, {}}}), &kv),
          "open the store");
  Column column = kv->GetColumn("counts");
  const std::string value(24, 'v');  // about a changelog record's counters
  Rng rng(7);
  {
    KvWriteBatch batch;
    for (uint64_t i = 0; i < kPrefill; ++i) {
      batch.Put(column, DomainName(rng.Below(kDomains)), value);
      if (batch.Count() == 10'000) {
        CheckOk(kv->Write(&batch), "prefill");
        batch.Clear();
      }
    }
  }
  std::vector<std::string> keys(batch_size);
  KvWriteBatch batch;
  for (auto _ : state) {
    state.PauseTiming();
    for (std::string& key : keys) key = DomainName(rng.Below(kDomains));
    state.ResumeTiming();
    // The sort is timed: it is part of what the sorted variant costs.
    if (sorted) std::sort(keys.begin(), keys.end());
    batch.Clear();
    if (sorted) batch.MarkKeysAscending();
    for (const std::string& key : keys) batch.Put(column, key, value);
    CheckOk(kv->Write(&batch), "write");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch_size));
}
BENCHMARK_CAPTURE(BM_StoreWriteUniformPuts, arrival_order, false)->Arg(2000);
BENCHMARK_CAPTURE(BM_StoreWriteUniformPuts, sorted, true)->Arg(2000);

}  // namespace
}  // namespace catchall::micro
