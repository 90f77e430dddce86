// The aggregation step: Aggregator::Apply per record, and the embedded
// commit of a delta into a CounterStore (counts merged, checkpoints put).
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/changelog.h"
#include "engine/log.h"
#include "micro_util.h"
#include "state/aggregator.h"
#include "state/counter_store.h"

namespace catchall::micro {
namespace {

constexpr std::chrono::seconds kIdWindow = std::chrono::hours(24);
// Records applied between two commits; the embedded aggregation commits every
// 100 ms, which is about this many records at full speed.
constexpr size_t kRecordsPerCommit = 65536;

// The store an aggregator some hours into its 24 h id window reads ids from:
// 1,048,576 ids in SST files and 262,144 more in the memtable. Built on first
// use, shared by the Apply benchmarks (which only read it), removed at exit.
class IdStore {
 public:
  static const CounterStore& Get() {
    static const IdStore store;
    return *store.counters_;
  }

 private:
  static constexpr uint64_t kPrefillSalt = uint64_t{1} << 48;  // streams use small salts

  IdStore() {
    CheckOk(KvStore::Open(StoreOptions(dir_.path(), CounterStore::Columns(kIdWindow)), &kv_),
            "open the id store");
    counters_ = std::make_unique<CounterStore>(kv_.get(), std::string(kEventsTopic));
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    constexpr uint64_t kOnDisk = 1 << 20;
    constexpr uint64_t kInMemtable = 1 << 18;
    constexpr uint64_t kPerCommit = 1 << 16;
    for (uint64_t first = 0; first < kOnDisk + kInMemtable; first += kPerCommit) {
      KvWriteBatch batch;
      for (uint64_t i = first; i < first + kPerCommit; ++i) {
        counters_->PutId(IdKey(DomainName(i % 1'000'000), EventId(kPrefillSalt, i)), now_ms,
                         &batch);
      }
      CheckOk(counters_->Write(&batch), "fill the id store");
      if (first + kPerCommit == kOnDisk) CheckOk(kv_->Flush(), "flush the id store");
    }
  }

  ScopedTempDir dir_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<CounterStore> counters_;
};

// One poll's worth of records (kPollRecords) applied per iteration, with
// ApplyAll as the aggregation loop does, over a stream of `shape`. Every
// kRecordsPerCommit records, with the timer paused, the delta is taken (and
// dropped: the store stays as IdStore made it, so results do not depend on
// the run's length) and, with ids, a stream of fresh ids is made: the
// common case is an id never seen before, whose lookup misses the delta and
// goes to RocksDB (memtable, then the SST files' bloom filters).
void BM_AggregatorApply(benchmark::State& state, StreamShape shape, bool with_ids) {
  constexpr size_t kPollRecords = 1000;
  Aggregator aggregator(AggregatorOptions{kPartitions, kIdWindow}, &IdStore::Get());
  uint64_t salt = with_ids ? 1 : 0;
  RecordStream stream = MakeEventStream(shape, kRecordsPerCommit, salt);
  size_t next = 0;
  uint64_t not_counted = 0;
  std::string reason;
  std::vector<const ConsumedRecord*> poll;
  std::vector<Aggregator::Applied> outcomes;
  for (auto _ : state) {
    if (next + kPollRecords > stream.records.size()) {
      state.PauseTiming();
      aggregator.TakeDelta();  // as a commit does: the next delta starts empty
      if (with_ids) stream = MakeEventStream(shape, kRecordsPerCommit, ++salt);
      next = 0;
      state.ResumeTiming();
    }
    poll.clear();
    for (size_t i = 0; i < kPollRecords; ++i) poll.push_back(&stream.records[next++]);
    Status applied = aggregator.ApplyAll(poll, &outcomes);
    if (!applied.ok()) {
      ++not_counted;
      reason = applied.ToString();
    }
    for (const Aggregator::Applied& a : outcomes) {
      if (a.outcome != ApplyOutcome::kCounted) {
        ++not_counted;
        reason = a.reason;
      }
    }
    benchmark::DoNotOptimize(outcomes);
  }
  if (not_counted != 0) state.SkipWithError(("a record was not counted: " + reason).c_str());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kPollRecords));
}
BENCHMARK_CAPTURE(BM_AggregatorApply, bursts, StreamShape::kBursts, false);
BENCHMARK_CAPTURE(BM_AggregatorApply, uniform_1m, StreamShape::kUniform, false);
BENCHMARK_CAPTURE(BM_AggregatorApply, bursts_with_ids, StreamShape::kBursts, true);
BENCHMARK_CAPTURE(BM_AggregatorApply, uniform_1m_with_ids, StreamShape::kUniform, true);

// The embedded commit of a delta of state.range(0) domains (RocksDB merge
// writes) and the partitions' checkpoints. Deltas cycle over 16 disjoint domain
// sets, so keys are merged again and again as in a long-running aggregator.
// Wall time: the commit waits for the write-ahead log and may stall behind
// flushes.
void BM_CounterStoreCommit(benchmark::State& state) {
  constexpr size_t kDeltas = 16;
  const auto domains = static_cast<size_t>(state.range(0));
  ScopedTempDir dir;
  std::unique_ptr<KvStore> kv;
  Status opened = KvStore::Open(StoreOptions(dir.path(), CounterStore::Columns(kIdWindow)), &kv);
  if (!opened.ok()) {
    state.SkipWithError(opened.ToString().c_str());
    return;
  }
  CounterStore store(kv.get(), std::string(kEventsTopic));
  std::vector<CounterDelta> deltas(kDeltas);
  for (size_t d = 0; d < kDeltas; ++d) {
    for (size_t j = 0; j < domains; ++j) {
      deltas[d].counts[DomainName(d * domains + j)] =
          DomainCounts{1 + j % 7, j % 50 == 0 ? 1u : 0u};
    }
    for (int32_t p = 0; p < kPartitions; ++p) deltas[d].offsets[p] = static_cast<int64_t>(d);
  }
  size_t i = 0;
  KvWriteBatch batch;
  for (auto _ : state) {
    const CounterDelta& delta = deltas[i++ % kDeltas];
    batch.Clear();
    for (const auto& [domain, counts] : delta.counts) store.AddCounts(domain, counts, &batch);
    for (const auto& [p, offset] : delta.offsets) store.PutCheckpoint(p, {offset, -1, -1}, &batch);
    Status s = store.Write(&batch);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(domains));
}
BENCHMARK(BM_CounterStoreCommit)->Arg(10000)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace catchall::micro
