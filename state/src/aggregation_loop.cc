#include "state/aggregation_loop.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <string>

#include "aggregator_probe.h"
#include "commit_builder.h"
#include "engine/json_writer.h"
#include "engine/this_thread.h"
#include "state_restorer.h"

namespace catchall {
namespace {

constexpr auto kPollTimeout = std::chrono::milliseconds(50);
constexpr auto kGaugeInterval = std::chrono::milliseconds(200);
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

AggregationLoop::AggregationLoop(AggregationOptions options, GroupLog* log, CounterStore* state,
                                 Metrics* metrics)
    : options_(std::move(options)),
      log_(log),
      state_(state),
      probe_(metrics ? std::make_unique<AggregatorProbe>(*metrics, options_.worker) : nullptr),
      metrics_(metrics) {}

AggregationLoop::~AggregationLoop() { Stop(); }

void AggregationLoop::SleepUnlessStopping(std::chrono::milliseconds d) const {
  auto until = std::chrono::steady_clock::now() + d;
  while (!stop_.load() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void AggregationLoop::SetHealth(const Status& s) {
  std::lock_guard<std::mutex> lock(mu_);
  health_ = s;
}

Status AggregationLoop::Health() const {
  // Without a broker the member keeps (or loses) its partitions quietly,
  // polls nothing, and may block in a commit: only the log knows, and a
  // commit that does not return does.
  Status reachable = log_->Health();
  int64_t started = commit_started_ns_.load();
  if (started != 0) {
    auto waited = std::chrono::steady_clock::now().time_since_epoch() -
                  std::chrono::steady_clock::duration(started);
    if (waited > kCommitStuck) {
      return Status::Unavailable(fmt::format(
          "Kafka is not answering: a commit has waited {} s (no broker reachable, one too slow, "
          "or a topic the commit writes to is gone: `catchall topics check` says)",
          std::chrono::duration_cast<std::chrono::seconds>(waited).count()));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!paused_because_.ok()) return paused_because_;
  return reachable.ok() ? health_ : reachable;
}

void AggregationLoop::ApplyGate() {
  Status gate = options_.may_consume ? options_.may_consume() : Status::Ok();
  bool pause = !gate.ok();
  if (pause != paused_) {
    Status s = consumer_->Pause(pause);
    if (!s.ok()) {
      spdlog::warn("aggregate: cannot {} consumption: {}", pause ? "pause" : "resume",
                   s.ToString());
      return;
    }
    paused_ = pause;
    if (pause) {
      spdlog::warn("aggregate: consumption paused: {}", gate.message());
    } else {
      spdlog::info("aggregate: consumption resumed");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  paused_because_ = std::move(gate);
}

std::vector<int32_t> AggregationLoop::owned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {owned_view_.begin(), owned_view_.end()};
}

void AggregationLoop::PublishOwned() {
  std::lock_guard<std::mutex> lock(mu_);
  owned_view_.clear();
  for (const auto& [p, offset] : committed_) owned_view_.insert(p);
  if (probe_) {
    probe_->SetOwnedPartitions(owned_view_.size());
    probe_->SetPartitionsNotTaken(not_taken_.size());
  }
}

Status AggregationLoop::Join() {
  CATCHALL_RETURN_IF_ERROR(log_->Join(this, &consumer_, &committer_));
  bool in_transaction = committer_->state_in_transaction();
  if (!in_transaction && !options_.status_topic) {
    return Status::InvalidArgument(
        "this log cannot commit the state in its transactions, so the aggregation needs a "
        "changelog (status topic) to publish it to");
  }
  // Domains are routed by the count the member started with, whatever the
  // events topic has at a rejoin: partitions added in place are not taken
  // on (OnAssigned). Taking the new count at a rejoin made every restore
  // look for changelog partitions that do not exist, and the records of
  // every other partition would have been dead-lettered as misrouted.
  if (!aggregator_) {
    partitions_ = consumer_->partition_count();
    aggregator_ =
        std::make_unique<Aggregator>(AggregatorOptions{partitions_, options_.id_window}, state_);
  } else if (consumer_->partition_count() != partitions_) {
    spdlog::warn(
        "aggregate: the events topic has {} partitions now, {} when this member started; domains "
        "are still routed over {} (docs/operations.md, \"A partition is added\")",
        consumer_->partition_count(), partitions_, partitions_);
  }
  if (!in_transaction) {
    publish_ = std::make_unique<PublishOptions>(
        PublishOptions{*options_.status_topic, options_.ids_topic, options_.catchall_threshold,
                       partitions_, options_.ids_log_batches});
    if (!restore_skips_) {
      restore_skips_ = std::make_unique<SkippedRecords>(metrics_, SkippedRecords::Reader::kRestore);
    }
    restorer_ = std::make_unique<StateRestorer>(log_, state_, *options_.status_topic,
                                                options_.ids_topic, partitions_, options_.id_window,
                                                probe_.get(), restore_skips_.get());
  } else {
    publish_.reset();
    restorer_.reset();
  }
  joined_ = last_commit_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

void AggregationLoop::Step() {
  if (!consumer_) {
    Status s = Join();
    if (!s.ok()) {
      SetHealth(s);
      rejoined_ = true;  // cleared once ready again (ClearHealthAfterRejoin)
      clear_health_at_.reset();
      spdlog::error("aggregate: cannot join the group: {}", s.ToString());
      committer_.reset();
      consumer_.reset();
      SleepUnlessStopping(options_.retry_delay);
      return;
    }
  }
  ApplyGate();
  batch_.Clear();
  const uint64_t rewinds = rewinds_;
  Status polled = consumer_->Poll(kPollTimeout, options_.poll_max_records, &batch_);
  if (!polled.ok()) spdlog::warn("aggregate: {}", polled.ToString());
  if (rewinds_ != rewinds && !must_rejoin_) {
    // A rebalance served inside the poll rewound the partitions (an aborted
    // revoke commit, lost partitions), but Kafka's poll may already hold
    // records it fetched before that seek. They come after the dropped
    // work: applied, they moved a partition's position past it, and the
    // dropped records were then skipped as already applied when read again
    // (lost). The whole batch goes, and every partition is put back again.
    spdlog::info("aggregate: a rebalance inside the poll rewound the partitions; reading again");
    batch_.Clear();
    if (!Rewind()) must_rejoin_ = Status::Aborted("partitions could not be rewound");
  }
  if (!must_rejoin_) Apply(batch_);
  batch_.Clear();  // releases the log's buffers before anything else runs
  if (must_rejoin_) {
    Rejoin(*must_rejoin_);
    return;
  }
  auto now = std::chrono::steady_clock::now();
  size_t pending = aggregator_->pending_records();
  if (pending > 0 &&
      (now - last_commit_ >= options_.commit_interval || pending >= options_.commit_max_records)) {
    Status s = Commit();
    if (!s.ok()) {
      Rejoin(s);
      return;
    }
  }
  UpdateReady(now);
  ClearHealthAfterRejoin(now);
  UpdateGauges(now);
}

void AggregationLoop::ClearHealthAfterRejoin(std::chrono::steady_clock::time_point now) {
  // The failure that made the member rejoin (or a join that failed) stays
  // its health until it is a ready member again and a commit interval
  // passed without another. Only a commit used to clear it, so a member
  // with nothing to commit stayed unready for good (a review, thirteenth
  // session); cleared at the join, a failure that recurs on every poll
  // (a store that cannot be read) showed only between rejoins.
  if (!rejoined_ || !ready_.load(std::memory_order_relaxed) || aborted_) return;
  if (!clear_health_at_) {
    clear_health_at_ = now + options_.commit_interval;
    return;
  }
  if (now < *clear_health_at_) return;
  SetHealth(Status::Ok());
  rejoined_ = false;
  clear_health_at_.reset();
}

void AggregationLoop::Apply(const RecordBatch& batch) {
  size_t outcomes[3] = {0, 0, 0};
  size_t stale = 0;
  applying_.clear();
  for (const ConsumedRecord& r : batch.records()) {
    auto pos = position_.find(r.partition);
    if (pos == position_.end()) continue;  // not (or no longer) ours
    if (pos->second >= 0 && r.offset < pos->second) {
      ++stale;  // redelivered after a rebalance or seek: applied already
      continue;
    }
    pos->second = r.offset + 1;
    applying_.push_back(&r);
  }
  Status s = aggregator_->ApplyAll(applying_, &applied_);
  if (!s.ok()) {
    // The caller rejoins, which drops the delta and rewinds every partition.
    must_rejoin_ = Status(s.code(), fmt::format("local state read failed: {}", s.message()));
    return;
  }
  for (size_t i = 0; i < applying_.size(); ++i) {
    const ConsumedRecord& r = *applying_[i];
    const Aggregator::Applied& applied = applied_[i];
    if (applied.outcome == ApplyOutcome::kMalformed) {
      // The first few in full, then one line per 1,000 (as skipped
      // records): one line per record let a misconfigured producer flood
      // the log (a black-box probe).
      ++dead_letter_lines_;
      if (LogsNthWarning(dead_letter_lines_)) {
        spdlog::warn("dead-lettering {}/{} offset {} (dead-lettered so far: {}): {}",
                     options_.events_topic, r.partition, r.offset, dead_letter_lines_,
                     QuotedForLog(applied.reason));
      }
      LogRecord dead = Aggregator::DeadLetter(options_.events_topic, r, applied.reason);
      dead_letters_.push_back(
          OutputRecord{options_.dead_letter_topic, -1, std::move(dead.key), std::move(dead.value)});
    }
    ++outcomes[static_cast<int>(applied.outcome)];
  }
  if (stale > 0) spdlog::debug("aggregate: skipped {} records already applied", stale);
  for (int k = 0; k < 3; ++k) uncommitted_outcomes_[k] += outcomes[k];
}

void AggregationLoop::ReportCommittedOutcomes() {
  if (probe_) {
    for (int k = 0; k < 3; ++k) {
      probe_->OnApplied(static_cast<ApplyOutcome>(k), uncommitted_outcomes_[k]);
    }
  }
  uncommitted_outcomes_ = {};
}

Status AggregationLoop::CommitNow() {
  Status s = Commit();
  if (!s.ok()) Rejoin(s);
  return s;
}

Status AggregationLoop::Commit() {
  auto started = std::chrono::steady_clock::now();
  if (aggregator_ == nullptr || (aggregator_->pending_records() == 0 && dead_letters_.empty())) {
    last_commit_ = started;
    // Nothing left of an aborted transaction (its partitions moved away
    // meanwhile, e.g. on a revoke): its error must not outlive it on an
    // idle member.
    if (aborted_) {
      aborted_ = false;
      SetHealth(Status::Ok());
    }
    return Status::Ok();
  }
  if (!committer_) return Status::Aborted("not a member of the group");
  size_t records = aggregator_->pending_records();
  int64_t oldest = aggregator_->oldest_timestamp_ms();
  CounterDelta delta = aggregator_->TakeDelta();
  LogTransaction txn;
  auto resume = [this](int32_t p) {
    StateCheckpoint c;
    if (publish_) {
      // Where this member's last commit left the logs; -1 keeps the stored
      // resume point, which is earlier and therefore also right.
      c.changelog_offset = committer_->CommittedEnd(publish_->status_topic, p);
      c.ids_offset = committer_->CommittedEnd(publish_->ids_topic, p);
    }
    return c;
  };
  Status s = BuildCommit(delta, std::move(dead_letters_), *state_, publish_.get(), resume, &txn,
                         &state_batch_);
  dead_letters_.clear();
  if (s.ok()) {
    if (committer_->state_in_transaction()) txn.state = &state_batch_;
    commit_started_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count());
    s = committer_->Commit(&txn);
    commit_started_ns_.store(0);
  }
  if (s.code() == Code::kAborted) {
    // Nothing of the transaction is visible: read it all again.
    spdlog::warn("aggregate: transaction aborted, reprocessing from the last commit: {}",
                 s.message());
    if (probe_) probe_->OnCommitFailed();
    // Not ready until a commit goes through: aborts that repeat (a
    // changelog the transaction cannot write) used to leave the node
    // answering ready while it counted nothing.
    SetHealth(Status::Unavailable(
        fmt::format("the last transaction was aborted ({}); reprocessing", s.message())));
    aborted_ = true;
    last_commit_ = std::chrono::steady_clock::now();
    return Rewind() ? Status::Ok() : Status::Aborted("partitions could not be rewound");
  }
  // Committed: its records are final, whatever the local write below does
  // (a rejoin restores the local state, it does not read them again).
  if (s.ok()) ReportCommittedOutcomes();
  if (s.ok() && !committer_->state_in_transaction()) {
    Status stored = state_->Write(&state_batch_);
    if (!stored.ok()) {
      // Committed in the log, not here: the cache is behind, and a rejoin
      // restores it from the changelog.
      s = Status::IoError(fmt::format("writing local state: {}", stored.message()));
    }
  }
  if (!s.ok()) {
    if (probe_) probe_->OnCommitFailed();
    return s;
  }
  for (const auto& [p, offset] : txn.offsets) {
    if (committed_.count(p)) committed_[p] = offset;
  }
  SetHealth(Status::Ok());
  aborted_ = false;
  last_commit_ = std::chrono::steady_clock::now();
  if (probe_) {
    probe_->OnCommit(records, delta.counts.size(), last_commit_ - started,
                     static_cast<double>(NowMs() - oldest) / 1000.0);
  }
  return Status::Ok();
}

bool AggregationLoop::Rewind() {
  ++rewinds_;
  aggregator_->Reset();
  dead_letters_.clear();
  uncommitted_outcomes_ = {};
  bool ok = true;
  for (const auto& [p, offset] : committed_) {
    position_[p] = offset < 0 ? -1 : offset;
    Status s = consumer_->Seek(p, offset < 0 ? kOffsetBeginning : offset);
    if (!s.ok()) {
      spdlog::error("aggregate: rewinding partition {}: {}", p, s.ToString());
      ok = false;
    }
  }
  return ok;
}

void AggregationLoop::Rejoin(const Status& why) {
  SetHealth(why);
  aborted_ = false;  // the aborted work is dropped with the rest
  rejoined_ = true;  // ClearHealthAfterRejoin
  clear_health_at_.reset();
  spdlog::error("aggregate: {}; dropping uncommitted work and rejoining the group", why.ToString());
  if (aggregator_) aggregator_->Reset();
  dead_letters_.clear();
  uncommitted_outcomes_ = {};
  // Without a committer, the partitions revoked while leaving commit
  // nothing: their work was just dropped.
  committer_.reset();
  if (consumer_) consumer_->Close();
  consumer_.reset();
  paused_ = false;  // a new consumer starts unpaused; the next Step applies the gate
  std::vector<int32_t> dropped;
  dropped.reserve(committed_.size());
  for (const auto& [p, offset] : committed_) dropped.push_back(p);
  committed_.clear();
  position_.clear();
  backlog_end_.clear();
  not_taken_.clear();
  must_rejoin_.reset();
  // The new consumer is a new member. With assigned_once_ left set it was
  // ready at its first step, owning nothing.
  StartReadinessOver();
  // Owning nothing, a cluster member lags on nothing (another member takes
  // its partitions); the gauges refresh only once it is a member again (the
  // lag of the partitions it had stayed shown through a broker outage). An
  // embedded node's partitions have no one else: while its store refuses
  // writes and it rejoins again and again, its lag is the last one seen,
  // not 0 with events uncounted (a probe).
  if (probe_ && publish_) probe_->SetLag(0);
  PublishOwned();
  Release(dropped);
  // A failure that repeats (a store that refuses writes) must not spin.
  SleepUnlessStopping(options_.retry_delay);
}

void AggregationLoop::StartReadinessOver() {
  ready_.store(false, std::memory_order_release);
  if (probe_) probe_->SetReady(false);
  assigned_once_ = false;
  joined_ = std::chrono::steady_clock::now();
}

void AggregationLoop::UpdateReady(std::chrono::steady_clock::time_point now) {
  if (ready_.load(std::memory_order_relaxed)) return;
  if (!assigned_once_) {
    // No group gives partitions without a broker: the wait starts over
    // while none answers. A member that lost its partitions in an outage
    // longer than the wait said ready with none as soon as a broker
    // answered, before the group gave any back.
    if (!log_->Health().ok()) {
      joined_ = now;
      return;
    }
    if (now - joined_ < options_.ready_without_assignment) return;
    assigned_once_ = true;  // a member without partitions is ready too
  } else if (options_.ready_when_caught_up) {
    for (const auto& [p, end] : backlog_end_) {
      if (committed_[p] < end) return;
    }
    spdlog::info("aggregate: state is up to date with the log");
  }
  ready_.store(true, std::memory_order_release);
  if (probe_) probe_->SetReady(true);
}

void AggregationLoop::UpdateGauges(std::chrono::steady_clock::time_point now) {
  // Gauges refresh on a clock, busy or idle: a lag read only when idle would
  // show 0 exactly when the aggregator is far behind.
  if (!probe_ || now - last_gauges_ < kGaugeInterval) return;
  last_gauges_ = now;
  // Ready as /readyz says it: not while consumption is paused (low disk)
  // or commits fail, which the flag set once at start does not show.
  probe_->SetReady(ready_.load(std::memory_order_relaxed) && Health().ok());
  probe_->SetLag(consumer_->Lag(committed_));
  if (options_.report_store_size) {
    probe_->SetDomains(state_->ApproximateDomains(), state_->ApproximateBytes());
  }
}

void AggregationLoop::NameAndPrioritizeThisThread() {
  std::string name = kAggregationThreadName;
  // At most "aggregate-63": within the 15 characters a thread name holds.
  if (options_.worker) name += fmt::format("-{}", *options_.worker);
  NameThisThread(name);
  if (!options_.low_priority) return;
  if (Status s = LowerThisThreadsPriority(); !s.ok()) {
    spdlog::warn("aggregate: cannot lower the aggregation thread's priority: {}", s.message());
  }
}

Status AggregationLoop::Start() {
  CATCHALL_RETURN_IF_ERROR(Join());
  thread_ = std::thread([this] {
    NameAndPrioritizeThisThread();
    while (!stop_.load()) Step();
  });
  return Status::Ok();
}

void AggregationLoop::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (!consumer_) return;
  batch_.Clear();  // the log may wait for its buffers at close
  if (committer_) {
    Status s = Commit();
    if (!s.ok()) {
      spdlog::error("aggregate: final commit failed: {}", s.ToString());
      committer_.reset();
    }
  }
  consumer_->Close();  // revokes the partitions through OnRevoked
  committer_.reset();
  consumer_.reset();
}

}  // namespace catchall
