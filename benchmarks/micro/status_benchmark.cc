// Status lookups: CounterStore::Get and MultiGet on a store of 1,000,000
// domains, the status rules and their JSON, and a whole GET /domains/{domain}
// through QueryService.
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/domain_status.h"
#include "engine/http.h"
#include "engine/log.h"
#include "micro_util.h"
#include "query/query_service.h"
#include "state/counter_store.h"

namespace catchall::micro {
namespace {

constexpr uint64_t kStoredDomains = 1'000'000;
constexpr size_t kKeys = 1 << 16;  // lookup keys per benchmark, cycled

// The counters of stored domain `i`: a spread of delivered counts, one domain
// in 25 with a bounce; never all zero.
DomainCounts CountsOf(uint64_t i) { return DomainCounts{1 + i % 2500, i % 25 == 0 ? 1u : 0u}; }

// A store holding domains DomainName(0..kStoredDomains-1), written by merge
// commits of 100,000 domains like an aggregator's, then flushed and scanned
// once, so that reads go through the SST files and a warm block cache. Built
// on first use, shared by every benchmark of this file, removed at exit.
class PrefilledStore {
 public:
  static const PrefilledStore& Get() {
    static const PrefilledStore store;
    return store;
  }

  const CounterStore& counters() const { return *counters_; }

 private:
  PrefilledStore() {
    CheckOk(KvStore::Open(StoreOptions(dir_.path(), CounterStore::Columns(std::chrono::hours(24))),
                          &kv_),
            "open the prefilled store");
    counters_ = std::make_unique<CounterStore>(kv_.get(), std::string(kEventsTopic));
    constexpr uint64_t kPerCommit = 100'000;
    for (uint64_t first = 0; first < kStoredDomains; first += kPerCommit) {
      KvWriteBatch batch;
      for (uint64_t i = first; i < first + kPerCommit; ++i) {
        counters_->AddCounts(DomainName(i), CountsOf(i), &batch);
      }
      CheckOk(counters_->Write(&batch), "fill the prefilled store");
    }
    CheckOk(kv_->Flush(), "flush the prefilled store");
    // One scan loads the data blocks into the block cache, as in a server
    // that has been answering lookups for a while.
    for (const ColumnSpec& spec : CounterStore::Columns(std::chrono::hours(24))) {
      if (spec.kind != ColumnKind::kCounters) continue;
      std::unique_ptr<KvIterator> it = kv_->NewIterator(kv_->GetColumn(spec.name));
      uint64_t keys = 0;
      for (it->SeekToFirst(); it->Valid(); it->Next()) ++keys;
      CheckOk(it->status(), "scan the prefilled store");
      if (keys != kStoredDomains) CheckOk(Status::Internal("wrong key count"), "fill the store");
    }
  }

  ScopedTempDir dir_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<CounterStore> counters_;
};

// kKeys names of stored domains (or, with `missing`, of domains never stored),
// uniformly at random.
std::vector<std::string> LookupKeys(bool missing) {
  Rng rng(missing ? 2 : 1);
  std::vector<std::string> keys;
  keys.reserve(kKeys);
  for (size_t i = 0; i < kKeys; ++i) {
    keys.push_back(DomainName(rng.Below(kStoredDomains) + (missing ? kStoredDomains : 0)));
  }
  return keys;
}

void BM_CounterStoreGet(benchmark::State& state, bool missing) {
  const CounterStore& store = PrefilledStore::Get().counters();
  const std::vector<std::string> keys = LookupKeys(missing);
  size_t i = 0;
  uint64_t seen = 0;
  for (auto _ : state) {
    Result<DomainCounts> counts = store.Get(keys[i++ & (kKeys - 1)]);
    if (!counts.ok()) {
      state.SkipWithError(counts.status().ToString().c_str());
      break;
    }
    if (counts->delivered != 0) ++seen;
    benchmark::DoNotOptimize(counts);
  }
  if (seen != (missing ? 0 : static_cast<uint64_t>(state.iterations()))) {
    state.SkipWithError("lookups did not find what was stored");
  }
}
BENCHMARK_CAPTURE(BM_CounterStoreGet, existing, false);
BENCHMARK_CAPTURE(BM_CounterStoreGet, missing, true);

void BM_CounterStoreMultiGet(benchmark::State& state) {
  const auto batch = static_cast<size_t>(state.range(0));
  const CounterStore& store = PrefilledStore::Get().counters();
  const std::vector<std::string> keys = LookupKeys(false);
  std::vector<std::vector<std::string>> batches;
  for (size_t first = 0; first + batch <= keys.size() && batches.size() < 256; first += batch) {
    batches.emplace_back(keys.begin() + static_cast<ptrdiff_t>(first),
                         keys.begin() + static_cast<ptrdiff_t>(first + batch));
  }
  std::vector<DomainCounts> out;
  size_t i = 0;
  for (auto _ : state) {
    Status s = store.MultiGet(batches[i++ % batches.size()], &out);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
}
BENCHMARK(BM_CounterStoreMultiGet)->Arg(100);

void BM_ClassifyAndJson(benchmark::State& state) {
  constexpr size_t kDomains = 1024;
  std::vector<std::string> domains;
  std::vector<DomainCounts> counts;
  for (size_t i = 0; i < kDomains; ++i) {
    domains.push_back(DomainName(i));
    counts.push_back(CountsOf(i));
  }
  std::string out;
  size_t i = 0;
  for (auto _ : state) {
    size_t k = i++ & (kDomains - 1);
    CatchAllStatus status = Classify(counts[k], kDefaultCatchAllThreshold);
    benchmark::DoNotOptimize(status);
    out.clear();
    AppendDomainStatusJson(domains[k], counts[k], kDefaultCatchAllThreshold, &out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_ClassifyAndJson);

// A whole GET /domains/{domain}: path split, percent-decoding, normalization,
// the store lookup, the status rules and the JSON body, with a Responder that
// keeps the response.
void BM_QueryServiceGet(benchmark::State& state, bool missing) {
  const CounterStore& store = PrefilledStore::Get().counters();
  QueryService service(QueryOptions{}, &store, nullptr);
  std::vector<std::string> targets;
  for (const std::string& key : LookupKeys(missing)) targets.push_back("/domains/" + key);
  HttpRequest request;
  request.method = HttpMethod::kGet;
  request.headers.push_back(HttpHeader{"Host", "localhost"});
  HttpResponse response;
  size_t i = 0;
  size_t not_ok = 0;
  for (auto _ : state) {
    request.target = targets[i++ & (kKeys - 1)];
    service.Handle(request, [&response](HttpResponse&& r) { response = std::move(r); });
    if (response.status != 200) ++not_ok;
    benchmark::DoNotOptimize(response.body.data());
  }
  if (not_ok != 0) state.SkipWithError(("a lookup answered " + response.body).c_str());
}
BENCHMARK_CAPTURE(BM_QueryServiceGet, existing, false);
BENCHMARK_CAPTURE(BM_QueryServiceGet, missing, true);

}  // namespace
}  // namespace catchall::micro
