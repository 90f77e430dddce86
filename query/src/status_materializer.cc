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
#include "engine/this_thread.h"
#include "recent_counts.h"

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
    unsaved_ = &prometheus::BuildGauge()
                    .Name("catchall_query_unsaved_domains")
                    .Help("Domains changed since the last checkpoint, held in memory only")
                    .Register(r)
                    .Add({});
    checkpoints_ = &prometheus::BuildCounter()
                        .Name("catchall_query_checkpoints_total")
                        .Help("Checkpoints of the in-memory table written to the store")
                        .Register(r)
                        .Add({});
    checkpoint_seconds_ = &prometheus::BuildCounter()
                               .Name("catchall_query_checkpoint_seconds_total")
                               .Help("Time spent writing checkpoints")
                               .Register(r)
                               .Add({});
    checkpoint_failures_ = &prometheus::BuildCounter()
                                .Name("catchall_query_checkpoint_failures_total")
                                .Help(
                                    "Checkpoint writes that failed (each is tried again a "
                                    "second later; reading pauses until one succeeds)")
                                .Register(r)
                                .Add({});
  }
  void OnRecords(size_t n) { records_->Increment(static_cast<double>(n)); }
  void SetBehind(int n) { lag_->Set(n); }
  void SetDomains(uint64_t n) { domains_->Set(static_cast<double>(n)); }
  void SetUnsaved(size_t n) { unsaved_->Set(static_cast<double>(n)); }
  void OnCheckpoint(double seconds) {
    checkpoints_->Increment();
    checkpoint_seconds_->Increment(seconds);
  }
  void OnCheckpointFailure() { checkpoint_failures_->Increment(); }

 private:
  prometheus::Counter* records_;
  prometheus::Gauge* lag_;
  prometheus::Gauge* domains_;
  prometheus::Gauge* unsaved_;
  prometheus::Counter* checkpoints_;
  prometheus::Counter* checkpoint_seconds_;
  prometheus::Counter* checkpoint_failures_;
};

namespace {
constexpr std::string_view kCountsColumn = "query.counts";
// How many records ahead the apply loop asks for a domain's table slots:
// enough for a miss (~100 ns) to finish while the records between are
// decoded and applied.
constexpr size_t kPrefetchAhead = 8;

}  // namespace

std::vector<ColumnSpec> StatusMaterializer::Columns() {
  return {{std::string(kCountsColumn), ColumnKind::kPlain, {}},
          {std::string(StatusMaterializer::kOffsetsColumn), ColumnKind::kPlain, {}}};
}

StatusMaterializer::StatusMaterializer(std::unique_ptr<LogReader> reader, std::string topic,
                                       KvStore* store, Metrics* metrics,
                                       std::function<Status()> may_consume,
                                       MaterializerOptions options)
    : topic_(std::move(topic)),
      store_(store),
      counts_(store->GetColumn(kCountsColumn)),
      offsets_(store->GetColumn(StatusMaterializer::kOffsetsColumn)),
      counts_table_(store, counts_),
      options_(options),
      probe_(metrics ? std::make_unique<MaterializerProbe>(*metrics) : nullptr),
      skipped_(metrics, SkippedRecords::Reader::kQuery),
      reader_(std::move(reader)),
      may_consume_(std::move(may_consume)),
      recent_(std::make_unique<RecentCounts>(options.checkpoint_domains)) {}

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
  last_checkpoint_ = std::chrono::steady_clock::now();
  checkpoint_thread_ = std::thread([this] { RunCheckpoints(); });
  thread_ = std::thread([this] {
    NameThisThread("query-apply");
    Run();
  });
  return Status::Ok();
}

void StatusMaterializer::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  reader_.reset();
  {
    std::lock_guard<std::mutex> lock(checkpoint_mu_);
    stop_checkpoints_ = true;
  }
  checkpoint_cv_.notify_all();
  if (!checkpoint_thread_.joinable()) return;
  checkpoint_thread_.join();
  // What is only in memory now would otherwise be re-read from the
  // changelog at the next start. (Not after a checkpoint that failed.)
  if (recent_->frozen() || recent_->size() == 0) return;
  recent_->Freeze();
  Checkpoint last{applied_};
  Status s = WriteCheckpoint(last);
  if (s.ok()) {
    recent_->Release();
  } else {
    spdlog::warn(
        "query: the last checkpoint failed ({}); the next start re-reads from the one "
        "before",
        s.ToString());
  }
}

Status StatusMaterializer::CheckpointFailure() const {
  std::lock_guard<std::mutex> lock(checkpoint_mu_);
  return checkpoint_failure_;
}

void StatusMaterializer::StartCheckpoint() {
  recent_->Freeze();
  Checkpoint next{applied_};
  {
    std::lock_guard<std::mutex> lock(checkpoint_mu_);
    pending_ = std::move(next);
  }
  checkpoint_cv_.notify_all();
  last_checkpoint_ = std::chrono::steady_clock::now();
}

void StatusMaterializer::RunCheckpoints() {
  // Named so that an operator sees it in `top -H` and perf.
  NameThisThread(kCheckpointThreadName);
  if (options_.checkpoint_low_priority) {
    // A checkpoint's sort and table file are background work, like RocksDB's
    // compactions (storage.compaction_low_priority): on busy cores they
    // should wait for the lookups, not the other way round.
    if (Status s = LowerThisThreadsPriority(); !s.ok()) {
      spdlog::warn("query: cannot lower the checkpoint thread's priority: {}", s.message());
    }
  }
  std::unique_lock<std::mutex> lock(checkpoint_mu_);
  while (true) {
    checkpoint_cv_.wait(lock, [&] { return pending_.has_value() || stop_checkpoints_; });
    if (!pending_) return;  // stopping, nothing left to write
    Checkpoint job = std::move(*pending_);
    pending_.reset();
    // Until it is written the reading pauses (Run) and lookups keep seeing
    // the frozen table; a failed write (a full disk) is tried again every
    // second, so the node carries on by itself once there is space.
    while (true) {
      lock.unlock();
      auto started = std::chrono::steady_clock::now();
      Status s = WriteCheckpoint(job);
      if (s.ok()) {
        // The store holds the frozen table now; lookups read it there.
        recent_->Release();
        if (probe_) {
          probe_->OnCheckpoint(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        }
      }
      lock.lock();
      if (s.ok()) {
        if (!checkpoint_failure_.ok()) spdlog::info("query: a checkpoint was written again");
        checkpoint_failure_ = Status::Ok();
        break;
      }
      if (checkpoint_failure_.ok()) {
        spdlog::error(
            "query: writing a checkpoint to the local store failed ({}); reading "
            "pauses and it is tried again every second",
            s.ToString());
      }
      checkpoint_failure_ = s;
      if (probe_) probe_->OnCheckpointFailure();
      checkpoint_cv_.notify_all();
      if (checkpoint_cv_.wait_for(lock, std::chrono::seconds(1),
                                  [&] { return stop_checkpoints_; })) {
        return;  // the frozen table stays unwritten: a restart re-reads it
      }
    }
    checkpoint_cv_.notify_all();
  }
}

Status StatusMaterializer::WriteCheckpoint(const Checkpoint& checkpoint) {
  RecentCounts::SortedEntries entries = recent_->SortedFrozen();
  // The encoded counters, 16 bytes each, in one buffer the run points into
  // (reserved in full: it must not move).
  std::string values;
  values.reserve(entries.size() * 16);
  SortedRun counts{counts_, {}};
  counts.entries.reserve(entries.size());
  for (const auto& [domain, value] : entries) {
    if (!*value) {
      counts.entries.emplace_back(domain, std::nullopt);
      continue;
    }
    size_t at = values.size();
    AppendEncodedCounts(**value, &values);
    counts.entries.emplace_back(domain, std::string_view(values).substr(at, 16));
  }
  // Offset keys are partition numbers as text: sorted as text.
  std::vector<std::pair<std::string, std::string>> offset_values;
  for (const auto& [p, offset] : checkpoint.offsets) {
    std::string v;
    PutFixed64(&v, static_cast<uint64_t>(offset));
    offset_values.emplace_back(std::to_string(p), std::move(v));
  }
  std::sort(offset_values.begin(), offset_values.end());
  SortedRun offsets{offsets_, {}};
  for (const auto& [key, value] : offset_values) offsets.entries.emplace_back(key, value);
  // One ingest: the counters and the offsets they reflect land together.
  return store_->IngestSorted({counts, offsets});
}

Status StatusMaterializer::Health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

void StatusMaterializer::Run() {
  RecordBatch records;
  // The domains gauge is an estimate from RocksDB, refreshed every 5 s, and
  // at once when the node becomes ready: a node that read the changelog to
  // its end read 0 there for up to 5 s (an operations probe, twelfth
  // session).
  std::optional<std::chrono::steady_clock::time_point> last_domains;
  while (!stop_.load()) {
    // Reading pauses while a checkpoint cannot be written (memory stays
    // bounded; RunCheckpoints tries again) or the disk is low.
    Status paused = CheckpointFailure();
    if (paused.ok() && may_consume_) paused = may_consume_();
    if (!paused.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        health_ = paused;
      }
      if (probe_) probe_->SetUnsaved(recent_->size() + recent_->frozen_size());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    // Memory stays bounded: while a checkpoint is written, the table it
    // froze and at most twice the limit in the new one.
    if (recent_->size() >= 2 * options_.checkpoint_domains && recent_->frozen()) {
      std::unique_lock<std::mutex> lock(checkpoint_mu_);
      checkpoint_cv_.wait_for(lock, std::chrono::milliseconds(100),
                              [&] { return !recent_->frozen() || !checkpoint_failure_.ok(); });
      if (recent_->frozen()) continue;
    }
    records.Clear();
    Status s = reader_->Poll(std::chrono::milliseconds(100), 50000, &records);
    // An OK poll clears an earlier error (or pause), unless no broker
    // answers: a poll then returns nothing, and OK.
    Status reachable = reader_->Health();
    {
      std::lock_guard<std::mutex> lock(mu_);
      health_ = s.ok() ? reachable : s;
    }
    // In log order: a domain's last record is the one that stays.
    DomainCounts counts;
    const std::vector<ConsumedRecord>& polled = records.records();
    for (size_t i = 0; i < polled.size(); ++i) {
      // Each record's domain lands in a random slot of a table far larger
      // than the cache: perf put ~40% of a query node's CPU in those
      // misses. Asking for a later record's slots overlaps them.
      if (i + kPrefetchAhead < polled.size()) recent_->Prefetch(polled[i + kPrefetchAhead].key);
      const ConsumedRecord& r = polled[i];
      // No partition check: records are routed by the events topic's
      // partition count, which a query node does not read, and the
      // changelog may have more partitions than it (a review).
      ChangelogEffect effect = DecodeChangelogRecord(r, &counts);
      if (effect.kind == ChangelogEffect::kPut) recent_->Put(r.key, counts);
      if (effect.kind == ChangelogEffect::kDelete) recent_->Delete(r.key);
      if (effect.kind == ChangelogEffect::kSkipped) skipped_.Skip(topic_, r, effect.problem);
      applied_[r.partition] = r.offset + 1;
    }
    if (probe_ && !records.records().empty()) probe_->OnRecords(records.records().size());
    for (int32_t p : records.end_of_partition()) {
      if (p >= 0 && p < partitions_) caught_up_[p] = true;
    }
    auto now = std::chrono::steady_clock::now();
    bool full = recent_->size() >= options_.checkpoint_domains;
    bool due = recent_->size() > 0 && now - last_checkpoint_ >= options_.checkpoint_interval;
    if ((full || due) && !recent_->frozen()) StartCheckpoint();
    if (!ready_.load()) {
      int behind = 0;
      for (bool c : caught_up_) behind += c ? 0 : 1;
      if (probe_) probe_->SetBehind(behind);
      if (behind == 0) {
        ready_.store(true, std::memory_order_release);
        spdlog::info("query: caught up with {}", topic_);
        last_domains.reset();
      }
    }
    // The checkpoint being written counts too: while it fails (a full
    // disk), its domains are in memory only, and the gauge said a few.
    if (probe_) probe_->SetUnsaved(recent_->size() + recent_->frozen_size());
    if (probe_ && (!last_domains || now - *last_domains > std::chrono::seconds(5))) {
      last_domains = now;
      // Those in memory too (a domain in both counts twice: an estimate).
      probe_->SetDomains(store_->EstimateKeys(counts_) + recent_->size());
    }
  }
}

Result<DomainCounts> StatusMaterializer::Get(std::string_view domain) const {
  RecentCounts::Value recent;
  if (recent_->Find(domain, &recent)) return recent.value_or(DomainCounts{});
  return counts_table_.Get(domain);
}

Status StatusMaterializer::MultiGet(const std::vector<std::string>& domains,
                                    std::vector<DomainCounts>* out) const {
  out->assign(domains.size(), DomainCounts{});
  // What changed lately is in memory; the rest is read from the store in
  // one MultiGet.
  std::vector<std::string_view> rest;
  std::vector<size_t> rest_at;
  RecentCounts::Value recent;
  for (size_t i = 0; i < domains.size(); ++i) {
    if (recent_->Find(domains[i], &recent)) {
      (*out)[i] = recent.value_or(DomainCounts{});
    } else {
      rest.push_back(domains[i]);
      rest_at.push_back(i);
    }
  }
  if (rest.empty()) return Status::Ok();
  std::vector<DomainCounts> stored;
  CATCHALL_RETURN_IF_ERROR(counts_table_.MultiGetViews(rest, &stored));
  for (size_t j = 0; j < rest.size(); ++j) (*out)[rest_at[j]] = stored[j];
  return Status::Ok();
}

}  // namespace catchall
