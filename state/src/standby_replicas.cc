#include "state/standby_replicas.h"

#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "engine/changelog.h"
#include "engine/metrics.h"
#include "engine/this_thread.h"

namespace catchall {
namespace {

// Checkpoints one log may be ahead of the other by before the oldest are
// forgotten (a forgotten one only delays the next local checkpoint).
constexpr size_t kMaxMarks = 4096;
// Records buffered before they are written, within one step.
constexpr size_t kWriteEvery = 50000;

}  // namespace

StandbyReplicas::StandbyReplicas(StandbyOptions options, GroupLog* log, CounterStore* store,
                                 Metrics* metrics)
    : options_(std::move(options)),
      check_partitions_(options_.partitions),
      log_(log),
      store_(store),
      skipped_(metrics, SkippedRecords::Reader::kStandby),
      created_(std::chrono::steady_clock::now()) {
  if (metrics == nullptr) return;
  auto& r = metrics->registry();
  tracked_gauge_ = &prometheus::BuildGauge()
                        .Name("catchall_aggregate_standby_partitions")
                        .Help("Partitions this aggregator keeps a warm copy of (owned by others)")
                        .Register(r)
                        .Add({});
  behind_gauge_ = &prometheus::BuildGauge()
                       .Name("catchall_aggregate_standby_behind_partitions")
                       .Help("Warm copies not read to the end of their logs at the last read")
                       .Register(r)
                       .Add({});
  records_ = &prometheus::BuildCounter()
                  .Name("catchall_aggregate_standby_records_total")
                  .Help("Changelog and ids log records read into warm copies")
                  .Register(r)
                  .Add({});
}

StandbyReplicas::~StandbyReplicas() { Stop(); }

void StandbyReplicas::Start() {
  thread_ = std::thread([this] {
    NameThisThread("standby");
    while (!stop_.load()) Step(std::chrono::milliseconds(50));
  });
}

void StandbyReplicas::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  Status s = Flush();
  if (!s.ok()) spdlog::warn("aggregate: standby: final write failed: {}", s.ToString());
  stopped_ = true;
  readers_[kChangelog].reset();
  readers_[kIds].reset();
  tails_.clear();
  UpdateGauges();
}

Status StandbyReplicas::Taking(int worker, const std::vector<int32_t>& partitions) {
  std::lock_guard<std::mutex> lock(mu_);
  begun_ = true;
  for (int32_t p : partitions) owners_[p].insert(worker);
  if (stopped_) return Status::Ok();
  // What was read of them goes to the store with its checkpoint first: the
  // restore starts from there.
  Status s = Flush();
  for (int32_t p : partitions) {
    if (!s.ok()) break;
    if (tails_.count(p)) s = Drop(p);
  }
  if (!s.ok()) Reset(s);
  UpdateGauges();
  return Status::Ok();
}

void StandbyReplicas::Released(int worker, const std::vector<int32_t>& partitions) {
  std::lock_guard<std::mutex> lock(mu_);
  begun_ = true;
  for (int32_t p : partitions) {
    auto it = owners_.find(p);
    if (it == owners_.end()) continue;
    it->second.erase(worker);
    if (it->second.empty()) owners_.erase(it);
  }
  // The next step adopts them, from the checkpoint the worker left.
}

std::vector<int32_t> StandbyReplicas::tracked() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int32_t> out;
  out.reserve(tails_.size());
  for (const auto& [p, t] : tails_) out.push_back(p);
  return out;
}

std::vector<int32_t> StandbyReplicas::caught_up() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int32_t> out;
  for (const auto& [p, t] : tails_) {
    if (t.at_end[kChangelog] && t.at_end[kIds]) out.push_back(p);
  }
  return out;
}

void StandbyReplicas::Step(std::chrono::milliseconds timeout) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (!begun_ && now - created_ >= options_.begin_after) begun_ = true;
    bool waiting = stopped_ || !begun_ || (failed_ && now - failed_at_ < options_.retry_delay);
    if (!waiting) {
      Status gate = options_.may_consume ? options_.may_consume() : Status::Ok();
      if (gate.ok()) {
        StepLocked(timeout);
        return;
      }
    }
  }
  // Nothing to read now: wait outside the lock, so that ownership changes
  // go through at once.
  std::this_thread::sleep_for(timeout);
}

void StandbyReplicas::StepLocked(std::chrono::milliseconds timeout) {
  failed_ = false;
  Status s = OpenReaders();
  for (int32_t p = 0; p < options_.partitions && s.ok(); ++p) {
    if (!owners_.count(p) && !tails_.count(p)) s = Adopt(p);
  }
  if (!s.ok()) {
    Reset(s);
    return;
  }
  if (tails_.empty()) {
    UpdateGauges();
    return;
  }
  // Half the wait on each log: a step never waits longer than `timeout`
  // (Taking() waits for it).
  for (Log log : {kChangelog, kIds}) {
    polled_.Clear();
    s = readers_[log]->Poll(timeout / 2, options_.poll_max_records, &polled_);
    if (!s.ok()) break;
    // Written every kWriteEvery changes, within a poll too: one record of
    // the ids log can carry thousands of ids, so a poll of them can be
    // millions.
    for (const ConsumedRecord& r : polled_.records()) {
      Apply(log, r);
      if (pending_ >= kWriteEvery) {
        s = Flush();
        if (!s.ok()) break;
      }
    }
    if (!s.ok()) break;
    for (int32_t p : polled_.end_of_partition()) {
      auto it = tails_.find(p);
      if (it != tails_.end()) it->second.at_end[log] = true;
    }
    if (records_) records_->Increment(static_cast<double>(polled_.records().size()));
  }
  polled_.Clear();
  if (s.ok()) s = Flush();
  if (!s.ok()) Reset(s);
  UpdateGauges();
}

Status StandbyReplicas::OpenReaders() {
  if (!readers_[kChangelog]) {
    CATCHALL_RETURN_IF_ERROR(log_->OpenReader(options_.status_topic, &readers_[kChangelog]));
    if (options_.partitions <= 0) {
      options_.partitions = readers_[kChangelog]->partition_count();
      check_partitions_ = 0;  // not the events topic's count: no check
    }
  }
  if (!readers_[kIds]) {
    CATCHALL_RETURN_IF_ERROR(log_->OpenReader(options_.ids_topic, &readers_[kIds]));
  }
  return Status::Ok();
}

Status StandbyReplicas::Adopt(int32_t partition) {
  Result<StateCheckpoint> local = store_->ReadCheckpoint(partition);
  if (!local.ok()) return local.status();
  Tail t;
  if (local->changelog_offset >= 0 && local->ids_offset >= 0) {
    // The local state is complete up to its checkpoint: read what follows.
    t.next[kChangelog] = local->changelog_offset;
    t.next[kIds] = local->ids_offset;
    t.reached = *local;
  } else {
    t.reached.events_offset = -1;  // nothing vouched for yet
  }
  for (Log log : {kChangelog, kIds}) {
    int64_t from = t.next[log] > 0 ? t.next[log] : kOffsetBeginning;
    CATCHALL_RETURN_IF_ERROR(readers_[log]->Seek(partition, from));
  }
  spdlog::info("aggregate: standby: keeping partition {} warm from changelog offset {}, ids {}",
               partition, t.next[kChangelog], t.next[kIds]);
  tails_[partition] = std::move(t);
  return Status::Ok();
}

Status StandbyReplicas::Drop(int32_t partition) {
  tails_.erase(partition);
  for (Log log : {kChangelog, kIds}) {
    if (readers_[log]) CATCHALL_RETURN_IF_ERROR(readers_[log]->Unassign(partition));
  }
  return Status::Ok();
}

void StandbyReplicas::Apply(Log log, const ConsumedRecord& r) {
  auto it = tails_.find(r.partition);
  if (it == tails_.end()) return;  // dropped; fetched before it was
  Tail& t = it->second;
  if (r.offset < t.next[log]) return;  // fetched before a seek
  t.next[log] = r.offset + 1;
  t.at_end[log] = false;
  if (r.key == kChangelogCheckpointKey) {
    Result<int64_t> through = ParseChangelogCheckpointJson(r.value, r.partition);
    if (through.ok()) {
      OnCheckpoint(&t, log, *through, r.offset + 1);
    } else {
      skipped_.Skip(log == kChangelog ? options_.status_topic : options_.ids_topic, r,
                    through.status().message());
    }
    return;
  }
  if (log == kChangelog) {
    ChangelogEffect effect =
        ChangelogApplier(store_->counts_column(), check_partitions_).Apply(r, &batch_);
    if (effect.kind == ChangelogEffect::kSkipped) {
      skipped_.Skip(options_.status_topic, r, effect.problem);
    }
  } else {
    Result<size_t> staged = store_->PutIdsOf(r, &batch_, check_partitions_);
    if (staged.ok()) {
      pending_ += *staged;
    } else {
      skipped_.Skip(options_.ids_topic, r, staged.status().message());
    }
  }
  ++pending_;
}

void StandbyReplicas::OnCheckpoint(Tail* t, Log log, int64_t through, int64_t after) {
  // Every transaction writes the same checkpoint to both logs, in the same
  // order. Once both logs are read through one, everything it vouches for
  // is applied.
  Log other = log == kChangelog ? kIds : kChangelog;
  t->last_mark[log] = std::max(t->last_mark[log], through);
  auto match = t->marks[other].find(through);
  if (match != t->marks[other].end()) {
    if (through > t->reached.events_offset) {
      t->reached.events_offset = through;
      t->reached.changelog_offset = log == kChangelog ? after : match->second;
      t->reached.ids_offset = log == kIds ? after : match->second;
      t->dirty = true;
    }
    for (auto& marks : t->marks) marks.erase(marks.begin(), marks.upper_bound(through));
    return;
  }
  // The other log went past this one without it (its checkpoint was
  // compacted or expired away): it can never match.
  if (t->last_mark[other] >= through) return;
  t->marks[log][through] = after;
  if (t->marks[log].size() > kMaxMarks) t->marks[log].erase(t->marks[log].begin());
}

Status StandbyReplicas::Flush() {
  for (auto& [p, t] : tails_) {
    if (!t.dirty) continue;
    store_->PutCheckpoint(p, t.reached, &batch_);
    t.dirty = false;
    ++pending_;
  }
  if (pending_ == 0) return Status::Ok();
  pending_ = 0;
  Status s = store_->Write(&batch_);
  batch_.Clear();
  return s;
}

void StandbyReplicas::Reset(const Status& why) {
  spdlog::error("aggregate: standby: {}; starting again from the stored checkpoints",
                why.ToString());
  batch_.Clear();
  pending_ = 0;
  polled_.Clear();
  tails_.clear();
  readers_[kChangelog].reset();
  readers_[kIds].reset();
  failed_ = true;
  failed_at_ = std::chrono::steady_clock::now();
}

void StandbyReplicas::UpdateGauges() {
  if (!tracked_gauge_) return;
  size_t behind = 0;
  for (const auto& [p, t] : tails_) behind += (t.at_end[kChangelog] && t.at_end[kIds]) ? 0 : 1;
  tracked_gauge_->Set(static_cast<double>(tails_.size()));
  behind_gauge_->Set(static_cast<double>(behind));
}

}  // namespace catchall
