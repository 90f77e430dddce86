// The aggregation loop's side of rebalances: taking partitions on (with
// their state restored or checked), handing them over, losing them.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "aggregator_probe.h"
#include "state/aggregation_loop.h"
#include "state_restorer.h"

namespace catchall {
namespace {

// Preparing newly assigned partitions is retried this often inside the
// rebalance; then the member rejoins (and tries again) instead of blocking
// its poll for good.
constexpr int kPrepareAttempts = 3;

}  // namespace

std::map<int32_t, int64_t> AggregationLoop::OnAssigned(const std::vector<int32_t>& assigned) {
  // A partition added to the events topic in place is past the count this
  // member routes domains by, and past the changelog's: not taken on. Its
  // records stay on the topic, uncounted and not dead-lettered, for the
  // rebuild (docs/operations.md, "A partition is added"); the others go on
  // being counted. Taken on, its restore failed for want of a changelog
  // partition, and every partition of the member stopped (a probe).
  std::vector<int32_t> partitions;
  std::vector<int32_t> beyond;
  for (int32_t p : assigned) (p < partitions_ ? partitions : beyond).push_back(p);
  not_taken_.insert(beyond.begin(), beyond.end());
  if (!beyond.empty()) {
    PublishOwned();
    spdlog::warn(
        "aggregate: not taking on {} partition(s) of the events topic from {} on ({}): this "
        "member routes domains over {} partitions, the count it started with; partitions were "
        "added to the events topic, and their records stay there uncounted until a rebuild "
        "(docs/operations.md, \"A partition is added\")",
        beyond.size(), beyond.front(), fmt::join(beyond, ", "), partitions_);
  }
  // Nothing may be processed without the committed offsets and a state
  // that matches them, so this waits (and retries) rather than guess.
  std::map<int32_t, int64_t> start;
  bool prepared = false;
  // Another worker of the process that still writes these partitions (it
  // was evicted unawares) lets them go, and a warm standby of them stops
  // writing them, before the restore reads where they got to.
  if (options_.ownership) {
    Status taking = options_.ownership->Taking(options_.worker.value_or(0), partitions);
    if (!taking.ok()) {
      if (taking.code() != Code::kAborted) {
        spdlog::error("aggregate: {}", taking.message());
        SetHealth(taking);
        must_rejoin_ = taking;
      }
      return start;  // nothing taken: the group hands them on, or back
    }
  }
  for (int attempt = 1; !stop_.load(); ++attempt) {
    std::map<int32_t, int64_t> committed;
    Status s = consumer_->Committed(partitions, &committed);
    start.clear();
    for (int32_t p : partitions) {
      if (!s.ok()) break;
      if (restorer_) {
        Result<int64_t> resume =
            restorer_->Restore(p, committed[p], stop_, options_.restore_stall_timeout);
        s = resume.status();
        // 0: nothing counted yet, from the events the topic still holds.
        if (s.ok()) start[p] = *resume > 0 ? *resume : kOffsetBeginning;
        continue;
      }
      // The state was committed in the same writes as the offsets: it is
      // the truth, and where it stands is where to resume.
      Result<StateCheckpoint> checkpoint = state_->ReadCheckpoint(p);
      if (!checkpoint.ok()) {
        s = checkpoint.status();
        break;
      }
      start[p] = checkpoint->events_offset;
      if (committed[p] >= 0 && committed[p] != checkpoint->events_offset) {
        spdlog::warn(
            "aggregate: partition {}: the state's checkpoint ({}) differs from the "
            "group's offset ({}); resuming from the state's",
            p, checkpoint->events_offset, committed[p]);
      }
    }
    if (s.ok()) {
      prepared = true;
      // The failed attempts' error is over (an aborted transaction's is
      // not: the next commit clears that one).
      if (attempt > 1 && !aborted_) SetHealth(Status::Ok());
      break;
    }
    SetHealth(s);
    if (attempt == kPrepareAttempts) {
      must_rejoin_ = Status(s.code(), fmt::format("preparing partitions: {}", s.message()));
      break;
    }
    spdlog::error("aggregate: preparing partitions failed, retrying: {}", s.ToString());
    SleepUnlessStopping(options_.retry_delay);
  }
  if (!prepared) {
    // Stopping, or giving up, before the state of these partitions was
    // restored: they are not taken on (their records are ignored), so
    // nothing is ever computed from a stale state; the group hands them on
    // after we leave, or back to us when we rejoin.
    spdlog::info("aggregate: not taking on {} partition(s)", partitions.size());
    Release(partitions);
    return start;
  }
  int64_t backlog = 0;
  for (int32_t p : partitions) {
    int64_t offset = start[p] < 0 ? kOffsetBeginning : start[p];
    committed_[p] = offset;
    position_[p] = offset < 0 ? -1 : offset;
    if (options_.ready_when_caught_up) {
      int64_t behind = consumer_->Lag({{p, std::max<int64_t>(offset, 0)}});
      backlog_end_[p] = std::max<int64_t>(offset, 0) + behind;
      backlog += behind;
    }
  }
  if (backlog > 0) {
    spdlog::info("aggregate: catching up on {} events written before this start", backlog);
  }
  PublishOwned();
  spdlog::info("aggregate: now owning {} more partition(s), {} in all", partitions.size(),
               committed_.size());
  // An empty assignment is not one yet: a cooperative rebalance gives a
  // new member nothing in its first step and moves partitions to it in the
  // next, and a rollout that waited for /readyz moved on before the member
  // held anything. Without partitions it is ready only after
  // ready_without_assignment (UpdateReady): more members than partitions.
  if (partitions.empty() && !assigned_once_) return start;
  assigned_once_ = true;
  if (!options_.ready_when_caught_up) {
    ready_.store(true, std::memory_order_release);
    if (probe_) probe_->SetReady(true);
  }
  return start;
}

void AggregationLoop::OnRevoked(const std::vector<int32_t>& partitions) {
  // Orderly hand-over: commit everything pending before letting go.
  if (committer_) {
    Status s = Commit();
    if (!s.ok()) {
      spdlog::error("aggregate: commit on revoke failed: {}", s.ToString());
      aggregator_->Reset();
      dead_letters_.clear();
      uncommitted_outcomes_ = {};
      must_rejoin_ = s;
    }
  }
  for (int32_t p : partitions) {
    committed_.erase(p);
    position_.erase(p);
    backlog_end_.erase(p);
    not_taken_.erase(p);
  }
  PublishOwned();
  Release(partitions);
  spdlog::info("aggregate: released {} partition(s)", partitions.size());
}

void AggregationLoop::OnLost(const std::vector<int32_t>& partitions) {
  // Someone else may own them already: their work must not be committed.
  spdlog::warn("aggregate: lost {} partition(s); dropping uncommitted work", partitions.size());
  for (int32_t p : partitions) {
    committed_.erase(p);
    position_.erase(p);
    backlog_end_.erase(p);
    not_taken_.erase(p);
  }
  if (aggregator_ && !Rewind()) must_rejoin_ = Status::Aborted("partitions could not be rewound");
  // Lost (a session timeout, e.g. after a broker outage), the member joins
  // the group again and is ready as a new one is: once partitions come back
  // (restored, and caught up where that is asked), or after
  // ready_without_assignment without any. It stayed ready with none for
  // ~11 s after an outage, its partitions uncounted (an operations probe,
  // twelfth session).
  if (committed_.empty()) StartReadinessOver();
  PublishOwned();
  Release(partitions);
}

void AggregationLoop::Release(const std::vector<int32_t>& partitions) {
  if (options_.ownership && !partitions.empty()) {
    options_.ownership->Released(options_.worker.value_or(0), partitions);
  }
}

}  // namespace catchall
