#include "state/embedded_aggregation.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <future>

#include "state/aggregator_probe.h"

namespace catchall {
namespace {

constexpr size_t kReadChunk = 8192;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

EmbeddedAggregation::EmbeddedAggregation(EmbeddedAggregationOptions options, LocalLog* log,
                                         CounterStore* store, Metrics* metrics)
    : options_(std::move(options)),
      log_(log),
      store_(store),
      probe_(metrics ? std::make_unique<AggregatorProbe>(*metrics) : nullptr) {}

EmbeddedAggregation::~EmbeddedAggregation() { Stop(); }

Status EmbeddedAggregation::Start() {
  partitions_ = log_->PartitionCount(options_.topic);
  if (partitions_ <= 0) {
    return Status::FailedPrecondition(fmt::format("the log has no topic {}", options_.topic));
  }
  aggregator_ =
      std::make_unique<Aggregator>(AggregatorOptions{partitions_, options_.id_window}, store_);
  positions_.assign(partitions_, 0);
  committed_.assign(partitions_, 0);
  start_ends_.assign(partitions_, 0);
  int64_t backlog = 0;
  for (int32_t p = 0; p < partitions_; ++p) {
    Result<int64_t> offset = store_->CommittedOffset(p);
    if (!offset.ok()) return offset.status();
    int64_t start = log_->StartOffset(options_.topic, p);
    if (*offset < start) {
      // Retention never deletes past the floor we set, so this means the
      // state is older than the log (e.g. restored from an old backup).
      spdlog::error(
          "partition {}: committed offset {} is before the log's first offset {}; events in "
          "between were deleted and are not counted",
          p, *offset, start);
    }
    positions_[p] = committed_[p] = std::max(*offset, start);
    start_ends_[p] = log_->EndOffset(options_.topic, p);
    backlog += start_ends_[p] - positions_[p];
    log_->SetRetentionFloor(options_.topic, p, committed_[p]);
  }
  if (backlog > 0) {
    spdlog::info("aggregation: catching up on {} events written before the last shutdown", backlog);
  }
  last_commit_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void EmbeddedAggregation::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

Status EmbeddedAggregation::Health() const {
  std::lock_guard<std::mutex> lock(health_mu_);
  return health_;
}

void EmbeddedAggregation::Run() {
  LocalReadResult batch;
  std::string reason;
  size_t outcome_counts[3] = {0, 0, 0};
  auto last_gauges = std::chrono::steady_clock::time_point();
  while (true) {
    bool stopping = stop_.load();
    uint64_t seq = log_->AppendSequence();
    bool progressed = false;
    bool failed = false;
    for (int32_t p = 0; p < partitions_ && !failed; ++p) {
      batch.Clear();
      Status s = log_->Read(options_.topic, p, positions_[p], kReadChunk, &batch);
      if (!s.ok()) {
        spdlog::error("aggregation: reading partition {} failed: {}", p, s.ToString());
        failed = true;
        break;
      }
      for (const ConsumedRecord& r : batch.records) {
        Result<ApplyOutcome> outcome = aggregator_->Apply(r, &reason);
        if (!outcome.ok()) {
          spdlog::error("aggregation: state read failed: {}", outcome.status().ToString());
          failed = true;
          break;
        }
        if (*outcome == ApplyOutcome::kMalformed) {
          spdlog::warn("dead-lettering {}/{} offset {}: {}", options_.topic, r.partition, r.offset,
                       reason);
          dead_letters_.push_back(Aggregator::DeadLetter(options_.topic, r, reason));
        }
        ++outcome_counts[static_cast<int>(*outcome)];
        positions_[p] = r.offset + 1;
      }
      progressed |= !batch.records.empty();
    }
    if (probe_) {
      for (int k = 0; k < 3; ++k) {
        probe_->OnApplied(static_cast<ApplyOutcome>(k), outcome_counts[k]);
        outcome_counts[k] = 0;
      }
    }
    if (failed) {
      // Drop what was read since the last commit and read it again later.
      aggregator_->Reset();
      dead_letters_.clear();
      positions_ = committed_;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    bool due = now - last_commit_ >= options_.commit_interval;
    size_t pending = aggregator_->pending_records();
    if (pending > 0 && (due || pending >= options_.commit_max_records || stopping)) {
      Commit();
    } else if (due) {
      last_commit_ = now;
    }
    if (!ready_.load(std::memory_order_relaxed)) {
      bool caught_up = true;
      for (int32_t p = 0; p < partitions_; ++p) caught_up &= committed_[p] >= start_ends_[p];
      if (caught_up) {
        ready_.store(true, std::memory_order_release);
        if (probe_) probe_->SetReady(true);
        spdlog::info("aggregation: state is up to date with the log");
      }
    }
    if (stopping && aggregator_->pending_records() == 0) break;
    if (stopping) continue;  // a failed final commit: retry once more
    // Gauges refresh on a clock, busy or idle: a lag read only when the
    // aggregator is idle would show 0 exactly when it is far behind.
    if (probe_ && now - last_gauges >= std::chrono::milliseconds(200)) {
      last_gauges = now;
      int64_t lag = 0;
      for (int32_t p = 0; p < partitions_; ++p) {
        lag += log_->EndOffset(options_.topic, p) - committed_[p];
      }
      probe_->SetLag(lag);
      probe_->SetDomains(store_->ApproximateDomains(), store_->ApproximateBytes());
    }
    if (!progressed) log_->WaitForAppend(seq, options_.commit_interval);
  }
}

bool EmbeddedAggregation::Commit() {
  auto started = std::chrono::steady_clock::now();
  auto fail = [&](const Status& s) {
    spdlog::error("aggregation: commit failed, rewinding to the last commit: {}", s.ToString());
    {
      std::lock_guard<std::mutex> lock(health_mu_);
      health_ = s;
    }
    if (probe_) probe_->OnCommitFailed();
    aggregator_->Reset();
    dead_letters_.clear();
    positions_ = committed_;
    last_commit_ = std::chrono::steady_clock::now();
    if (stop_.load()) {
      // Shutting down: what was not committed is re-read at the next start.
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return false;
  };
  if (!dead_letters_.empty()) {
    // Dead letters must be durable before the offsets that skip them are.
    std::promise<Status> written;
    auto future = written.get_future();
    LogAppender* dlq = log_->Appender(options_.dead_letter_topic);
    Status s = dlq->Append(std::move(dead_letters_),
                           [&written](const Status& st) { written.set_value(st); });
    dead_letters_.clear();
    if (s.ok()) s = future.get();
    if (!s.ok()) return fail(s);
  }
  size_t records = aggregator_->pending_records();
  int64_t oldest = aggregator_->oldest_timestamp_ms();
  CounterDelta delta = aggregator_->TakeDelta();
  Status s = store_->Commit(delta);
  if (!s.ok()) return fail(s);
  for (const auto& [p, offset] : delta.offsets) {
    committed_[p] = offset;
    log_->SetRetentionFloor(options_.topic, p, offset);
  }
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    health_ = Status::Ok();
  }
  last_commit_ = std::chrono::steady_clock::now();
  if (probe_) {
    probe_->OnCommit(records, delta.counts.size(), last_commit_ - started,
                     static_cast<double>(NowMs() - oldest) / 1000.0);
  }
  return true;
}

}  // namespace catchall
