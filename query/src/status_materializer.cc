#include "query/status_materializer.h"

#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "engine/counts_table.h"
#include "engine/domain_status.h"
#include "engine/metrics.h"

namespace catchall {

// Metrics of the materializer.
class MaterializerProbe {
 public:
  explicit MaterializerProbe(Metrics& metrics) {
    auto& r = metrics.registry();
    records_ = &prometheus::BuildCounter()
                    .Name("catchall_query_changelog_records_total")
                    .Help("Changelog records materialized")
                    .Register(r)
                    .Add({});
    lag_ = &prometheus::BuildGauge()
                .Name("catchall_query_changelog_behind_partitions")
                .Help("Partitions of the changelog not yet read to their end")
                .Register(r)
                .Add({});
    domains_ = &prometheus::BuildGauge()
                    .Name("catchall_query_domains")
                    .Help("Approximate number of domains materialized")
                    .Register(r)
                    .Add({});
  }
  void OnRecords(size_t n) { records_->Increment(static_cast<double>(n)); }
  void SetBehind(int n) { lag_->Set(n); }
  void SetDomains(uint64_t n) { domains_->Set(static_cast<double>(n)); }

 private:
  prometheus::Counter* records_;
  prometheus::Gauge* lag_;
  prometheus::Gauge* domains_;
};

namespace {
constexpr std::string_view kCountsColumn = "query.counts";
constexpr std::string_view kOffsetsColumn = "query.offsets";

// `records` sorted by key, those of one key in their log order (so the last
// record of a domain is still the one that lands). A poll's records come
// in partition order, their keys in hash order; in key order RocksDB
// inserts each into the memtable from where the previous one went
// (KvWriteBatch::MarkKeysAscending) instead of searching its skip list from
// the top: 2-7% less CPU per put of 2,000 keys spread over 10M domains
// than in hash order (catchall-micro --benchmark_filter=StoreWrite).
const std::vector<const ConsumedRecord*>& InKeyOrder(const std::vector<ConsumedRecord>& records,
                                                     std::vector<const ConsumedRecord*>* order) {
  order->clear();
  order->reserve(records.size());
  for (const ConsumedRecord& r : records) order->push_back(&r);
  std::stable_sort(
      order->begin(), order->end(),
      [](const ConsumedRecord* a, const ConsumedRecord* b) { return a->key < b->key; });
  return *order;
}

}  // namespace

std::vector<ColumnSpec> StatusMaterializer::Columns() {
  return {{std::string(kCountsColumn), ColumnKind::kPlain, {}},
          {std::string(kOffsetsColumn), ColumnKind::kPlain, {}}};
}

StatusMaterializer::StatusMaterializer(std::unique_ptr<LogReader> reader, std::string topic,
                                       KvStore* store, Metrics* metrics,
                                       std::function<Status()> may_consume)
    : topic_(std::move(topic)),
      store_(store),
      counts_(store->GetColumn(kCountsColumn)),
      offsets_(store->GetColumn(kOffsetsColumn)),
      counts_table_(store, counts_),
      applier_(counts_),
      probe_(metrics ? std::make_unique<MaterializerProbe>(*metrics) : nullptr),
      skipped_(metrics, SkippedRecords::Reader::kQuery),
      reader_(std::move(reader)),
      may_consume_(std::move(may_consume)) {}

StatusMaterializer::~StatusMaterializer() { Stop(); }

Status StatusMaterializer::Start() {
  // Resume each partition from the stored offset.
  partitions_ = reader_->partition_count();
  for (int32_t p = 0; p < partitions_; ++p) {
    std::string value;
    Status s = store_->Get(offsets_, std::to_string(p), &value);
    int64_t start = kOffsetBeginning;
    if (s.ok() && value.size() == 8) {
      start = static_cast<int64_t>(DecodeFixed64(value.data()));
    } else if (s.code() != Code::kNotFound) {
      return s.ok() ? Status::Corruption("stored offset has a bad size") : s;
    }
    CATCHALL_RETURN_IF_ERROR(reader_->Seek(p, start));
  }
  caught_up_.assign(partitions_, false);
  if (probe_) probe_->SetBehind(partitions_);
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void StatusMaterializer::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  reader_.reset();
}

Status StatusMaterializer::Health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

void StatusMaterializer::Run() {
  RecordBatch records;
  KvWriteBatch batch;
  std::map<int32_t, int64_t> next;
  std::vector<const ConsumedRecord*> order;
  auto last_domains = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    if (may_consume_) {
      Status gate = may_consume_();
      if (!gate.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          health_ = gate;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
    }
    records.Clear();
    Status s = reader_->Poll(std::chrono::milliseconds(100), 50000, &records);
    {
      std::lock_guard<std::mutex> lock(mu_);
      health_ = s;  // an OK poll clears an earlier error (or pause)
    }
    batch.Clear();
    next.clear();
    for (const ConsumedRecord& r : records.records()) next[r.partition] = r.offset + 1;
    batch.MarkKeysAscending();  // the offsets go to a column of their own
    for (const ConsumedRecord* r : InKeyOrder(records.records(), &order)) {
      ChangelogEffect effect = applier_.Apply(*r, &batch);
      if (effect.kind == ChangelogEffect::kSkipped) skipped_.Skip(topic_, *r, effect.problem);
    }
    for (const auto& [p, offset] : next) {
      std::string v;
      PutFixed64(&v, static_cast<uint64_t>(offset));
      batch.Put(offsets_, std::to_string(p), v);
    }
    if (batch.Count() > 0) {
      Status w = store_->Write(&batch);
      if (!w.ok()) {
        // Without the write the offsets did not move either; stop rather
        // than serve from a store that cannot be written.
        spdlog::error("query: writing the local store failed: {}", w.ToString());
        std::lock_guard<std::mutex> lock(mu_);
        health_ = w;
        return;
      }
      if (probe_) probe_->OnRecords(records.records().size());
    }
    for (int32_t p : records.end_of_partition()) {
      if (p >= 0 && p < partitions_) caught_up_[p] = true;
    }
    if (!ready_.load()) {
      int behind = 0;
      for (bool c : caught_up_) behind += c ? 0 : 1;
      if (probe_) probe_->SetBehind(behind);
      if (behind == 0) {
        ready_.store(true, std::memory_order_release);
        spdlog::info("query: caught up with {}", topic_);
      }
    }
    auto now = std::chrono::steady_clock::now();
    if (probe_ && now - last_domains > std::chrono::seconds(5)) {
      last_domains = now;
      probe_->SetDomains(store_->EstimateKeys(counts_));
    }
  }
}

Result<DomainCounts> StatusMaterializer::Get(std::string_view domain) const {
  return counts_table_.Get(domain);
}

Status StatusMaterializer::MultiGet(const std::vector<std::string>& domains,
                                    std::vector<DomainCounts>* out) const {
  return counts_table_.MultiGet(domains, out);
}

}  // namespace catchall
