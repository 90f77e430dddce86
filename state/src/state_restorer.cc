#include "state_restorer.h"

#include <absl/cleanup/cleanup.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "aggregator_probe.h"
#include "engine/changelog.h"
#include "engine/domain_status.h"

namespace catchall {
namespace {

constexpr size_t kPollMax = 20000;
constexpr size_t kWriteEvery = 50000;
constexpr auto kPollWait = std::chrono::milliseconds(200);
constexpr auto kWarnEvery = std::chrono::seconds(10);

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Where(int64_t offset) {
  return offset < 0 ? std::string("the start") : fmt::format("offset {}", offset);
}

}  // namespace

Result<StateRestorer::ReadResult> StateRestorer::ReadThrough(
    const std::string& topic, int32_t partition, int64_t from, int64_t seen, int64_t target,
    const std::function<Status(const ConsumedRecord&)>& apply, const std::atomic<bool>& stop,
    std::chrono::seconds stall_timeout) {
  std::unique_ptr<LogReader> reader;
  CATCHALL_RETURN_IF_ERROR(log_->OpenReader(topic, &reader));
  CATCHALL_RETURN_IF_ERROR(reader->Seek(partition, from < 0 ? kOffsetBeginning : from));
  RecordBatch batch;
  ReadResult result;
  bool at_end = false;
  auto last_progress = std::chrono::steady_clock::now();
  auto last_warning = last_progress - kWarnEvery;
  int failed_reads = 0;
  int64_t beyond = -1;  // the highest checkpoint skipped for being past the target
  // The end alone is not enough: a transaction's commit returns before the
  // broker has written its commit markers, so right after a hand-over the
  // previous owner's last transaction may not be readable yet. Its
  // checkpoint record says when it is.
  while (!at_end || (target >= 0 && seen < target)) {
    batch.Clear();
    Status s = reader->Poll(kPollWait, kPollMax, &batch);
    if (!s.ok()) {
      // A read that fails at once (a broken store, a dead reader) must not
      // spin until the stall timeout: it logged this warning ~1.5 million
      // times a second (a fault test's output reached 8.8 GB). Wait as long
      // as a poll would, and warn once per kWarnEvery.
      ++failed_reads;
      auto now = std::chrono::steady_clock::now();
      if (now - last_warning >= kWarnEvery) {
        spdlog::warn("aggregate: restore of {}/{}: {} ({} failed read(s) since the last warning)",
                     topic, partition, s.ToString(), failed_reads);
        last_warning = now;
        failed_reads = 0;
      }
      std::this_thread::sleep_for(kPollWait);
    }
    for (const ConsumedRecord& r : batch.records()) {
      if (r.partition != partition) continue;
      result.next_offset = r.offset + 1;
      at_end = false;
      if (r.key == kChangelogCheckpointKey) {
        Result<int64_t> through = ParseChangelogCheckpointJson(r.value, partition);
        // No committed checkpoint vouches for more than the committed
        // offset (both are in one transaction, and a fenced one aborts).
        // One that does was written by something else, and ending the
        // restore at it lost the events committed after it whenever the
        // end was reached first (a black-box probe, seventeenth session).
        if (through.ok() && target > 0 && *through > target) {
          beyond = std::max(beyond, *through);
          through = Status::Corruption(fmt::format(
              "changelog checkpoint record vouches for events offset {}, past the group's "
              "committed offset {}",
              *through, target));
        }
        if (!through.ok()) {
          ++result.skipped_checkpoints;
          skipped_->Skip(topic, r, through.status().message());
        } else if (*through > seen) {
          seen = *through;
          // With the target unknown, the last checkpoint read is the one
          // that vouches for it.
          if (target < 0 || (seen >= target && result.checkpoint_ms < 0)) {
            result.checkpoint_ms = r.timestamp_ms;
          }
        }
        continue;
      }
      CATCHALL_RETURN_IF_ERROR(apply(r));
    }
    for (int32_t p : batch.end_of_partition()) at_end |= (p == partition);
    if (!batch.records().empty()) last_progress = std::chrono::steady_clock::now();
    if (probe_) probe_->OnRestored(batch.records().size());
    if (stop.load()) return Status::Aborted("stopping");
    if (std::chrono::steady_clock::now() - last_progress > stall_timeout) {
      return Status::Timeout(fmt::format(
          "restoring partition {} from {} made no progress for {} s (read through {}, waiting for "
          "a checkpoint of events offset {}, last seen {}){}",
          partition, topic, stall_timeout.count(), Where(result.next_offset), target, seen,
          beyond >= 0 ? fmt::format("; a checkpoint of events offset {} was skipped: the group's "
                                    "offsets were moved back, or something else than an "
                                    "aggregator wrote it (docs/operations.md, \"A record on the "
                                    "changelog or the ids log does not decode\")",
                                    beyond)
          // Kafka deleted it: the ids log kept for less than the id window
          // (a probe; `catchall topics check` and the roles' start report it).
          : topic == ids_topic_
              ? std::string("; was the ids topic's retention.ms set shorter than "
                            "aggregate.idempotency_window_s? `catchall topics check` compares them")
              : std::string()));
    }
  }
  result.seen = seen;
  return result;
}

Result<int64_t> StateRestorer::Restore(int32_t partition, int64_t committed,
                                       const std::atomic<bool>& stop,
                                       std::chrono::seconds stall_timeout) {
  // Without the group's offset the target is the changelog's last
  // checkpoint, known once the changelog is read to its end (-1 until
  // then). Taken as 0, a member with an empty store counted every event
  // still on the topic from nothing and published those counters over the
  // changelog's, and one with a store counted them again on top (a review).
  const bool known = committed >= 0;
  int64_t target = known ? committed : -1;
  Result<StateCheckpoint> local = store_->ReadCheckpoint(partition);
  if (!local.ok()) return local.status();
  if (known && local->events_offset == target && (local->changelog_offset >= 0 || target == 0)) {
    spdlog::info("aggregate: partition {} local state is current (offset {})", partition, target);
    return target;
  }
  StateCheckpoint from;  // from the start of both logs
  int64_t seen = 0;
  if (!known) {
    // Said once the changelog is read: on a new group's first start it
    // holds no checkpoint, and that is no warning (a probe found one per
    // partition noisy).
    if (local->changelog_offset >= 0) {
      from = *local;
      seen = local->events_offset;
    }
  } else if (local->events_offset > target) {
    spdlog::warn(
        "aggregate: partition {} local state is ahead of the group's offset ({} > {}); the "
        "topics were recreated? restoring from the start of the changelog",
        partition, local->events_offset, target);
  } else if (local->changelog_offset >= 0) {
    from = *local;  // complete up to its events offset: only what came after is missing
    seen = local->events_offset;
  }
  spdlog::info("aggregate: restoring partition {} from {} {} and {} {} ({})", partition,
               status_topic_, Where(from.changelog_offset), ids_topic_, Where(from.ids_offset),
               known ? fmt::format("events offset {}", target)
                     : std::string("to the changelog's last checkpoint"));
  if (probe_) probe_->SetRestoring(1);
  // Back to 0 however the restore ends: a failed one left the gauge at 1,
  // and a member that then gave up said "restoring" while it restored
  // nothing (found by a review, thirteenth session).
  absl::Cleanup not_restoring = [this] {
    if (probe_) probe_->SetRestoring(0);
  };
  auto begun = std::chrono::steady_clock::now();
  KvWriteBatch batch;
  size_t pending = 0;
  size_t skipped = 0;
  size_t changelog_records = 0;  // for the log line operations.md promises
  size_t ids_restored = 0;
  auto flush = [&]() -> Status {
    if (pending == 0) return Status::Ok();
    pending = 0;
    Status s = store_->Write(&batch);
    batch.Clear();
    return s;
  };
  ChangelogApplier applier(store_->counts_column(), partitions_);
  Result<ReadResult> changelog = ReadThrough(
      status_topic_, partition, from.changelog_offset, seen, target,
      [&](const ConsumedRecord& r) -> Status {
        ChangelogEffect effect = applier.Apply(r, &batch);
        ++changelog_records;
        if (effect.kind == ChangelogEffect::kSkipped) {
          ++skipped;
          skipped_->Skip(status_topic_, r, effect.problem);
        }
        return ++pending >= kWriteEvery ? flush() : Status::Ok();
      },
      stop, stall_timeout);
  if (!changelog.ok()) return changelog.status();
  skipped += changelog->skipped_checkpoints;
  if (!known) {
    target = changelog->seen;
    if (target > 0) {
      spdlog::warn(
          "aggregate: partition {}: the group has no committed offset (Kafka drops a group's "
          "offsets after offsets.retention.minutes without members, or they were deleted); "
          "resuming from the changelog's last checkpoint, events offset {}",
          partition, target);
    } else {
      spdlog::info(
          "aggregate: partition {}: nothing counted yet (no committed offset, no checkpoint in "
          "the changelog)",
          partition);
    }
  }
  CATCHALL_RETURN_IF_ERROR(flush());
  // The ids log keeps at least the id window. When the transaction that
  // committed the target is older than that, its checkpoint in the ids log
  // may be gone, and so are all of its ids: everything still there is
  // committed, and reading to the end is enough.
  int64_t window_ms = std::chrono::duration_cast<std::chrono::milliseconds>(id_window_).count();
  bool ids_checkpoint_kept = changelog->checkpoint_ms >= NowMs() - window_ms;
  int64_t ids_seen = from.ids_offset >= 0 ? seen : 0;
  Result<ReadResult> ids = ReadThrough(
      ids_topic_, partition, from.ids_offset, ids_checkpoint_kept ? ids_seen : target, target,
      [&](const ConsumedRecord& r) -> Status {
        Result<size_t> staged = store_->PutIdsOf(r, &batch, partitions_);
        if (staged.ok()) {
          pending += *staged;
          ids_restored += *staged;
        } else {
          ++skipped;
          skipped_->Skip(ids_topic_, r, staged.status().message());
        }
        return pending >= kWriteEvery ? flush() : Status::Ok();
      },
      stop, stall_timeout);
  if (!ids.ok()) return ids.status();
  skipped += ids->skipped_checkpoints;
  StateCheckpoint done;
  done.events_offset = target;
  done.changelog_offset = changelog->next_offset >= 0 ? changelog->next_offset
                                                      : std::max<int64_t>(from.changelog_offset, 0);
  done.ids_offset =
      ids->next_offset >= 0 ? ids->next_offset : std::max<int64_t>(from.ids_offset, 0);
  store_->PutCheckpoint(partition, done, &batch);
  ++pending;
  CATCHALL_RETURN_IF_ERROR(flush());
  spdlog::info("aggregate: partition {} restored in {:.2f} s: {} changelog records, {} ids{}",
               partition,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count(),
               changelog_records, ids_restored,
               skipped ? fmt::format(" ({} records skipped)", skipped) : std::string());
  return target;
}

}  // namespace catchall
