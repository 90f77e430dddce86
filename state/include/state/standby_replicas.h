// StandbyReplicas: warm copies of the partitions this process does not own
// (cluster mode, aggregate.standby_replicas).
//
// It tails the changelog and the ids log of every partition that no
// aggregation worker of the process owns, and applies them to the local
// store the way StateRestorer does. Each time both logs have been read
// through the checkpoint of the same transaction, it writes that point as
// the partition's local StateCheckpoint, in the same write as the records
// before it. When a worker later takes the partition over, the restorer
// finds a checkpoint close to the group's committed offset and reads only
// the tail instead of the whole partition.
//
// Why every partition the process does not own, and not exactly N copies:
// the group's assignor (librdkafka's cooperative-sticky) cannot be told to
// give a partition to the member that holds its warm copy, so any member may
// be the next owner. With two aggregators that is exactly one copy each.
//
// Correctness does not depend on it: the store may run ahead of the
// written checkpoint (records are absolute counters and ids, so reading
// them again is harmless), and a partition is never written by the standby
// once a worker has said it is taking it (Taking() waits for that).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/kv_store.h"
#include "engine/log.h"
#include "engine/skipped_records.h"
#include "engine/status.h"
#include "state/aggregation_loop.h"
#include "state/counter_store.h"

namespace prometheus {
class Counter;
class Gauge;
}  // namespace prometheus

namespace catchall {

class Metrics;

struct StandbyOptions {
  std::string status_topic{kStatusTopic};
  std::string ids_topic{kIdsTopic};
  // Partitions of the events topic, which route the records of both logs
  // and are the ones kept warm; 0: as many as the changelog has, and then
  // records are not checked for their partition (the changelog may have
  // more partitions than the events topic; checked against its count, most
  // records were skipped: a review).
  int32_t partitions = 0;
  // Records read per log per step.
  size_t poll_max_records = 5000;
  // Tailing starts at the first rebalance of a worker, or after this: until
  // then the process does not know which partitions it will own.
  std::chrono::milliseconds begin_after{std::chrono::seconds(15)};
  // Wait after a failure before reading again.
  std::chrono::milliseconds retry_delay{std::chrono::seconds(1)};
  // Reading pauses while this says no (the disk is low).
  std::function<Status()> may_consume;
};

class StandbyReplicas final : public OwnershipListener {
 public:
  // `log` (for its readers) and `store` must outlive this; metrics go to
  // `metrics` (may be null).
  StandbyReplicas(StandbyOptions options, GroupLog* log, CounterStore* store, Metrics* metrics);
  ~StandbyReplicas() override;
  StandbyReplicas(const StandbyReplicas&) = delete;
  StandbyReplicas& operator=(const StandbyReplicas&) = delete;

  // Runs Step() on a thread of its own until Stop().
  void Start();
  // Writes what was read and stops; later ownership calls return at once.
  void Stop();
  // One round: starts tailing partitions nobody here owns, reads what the
  // logs have (waiting up to `timeout`), and writes it with the checkpoints
  // reached. Tests call it; Start()'s thread calls it in a loop.
  void Step(std::chrono::milliseconds timeout);

  // OwnershipListener (any thread).
  // Always OK: a standby stops writing what a worker takes.
  Status Taking(int worker, const std::vector<int32_t>& partitions) override;
  void Released(int worker, const std::vector<int32_t>& partitions) override;

  // Partitions kept warm now, and those of them whose logs were read to
  // their end at the last read.
  std::vector<int32_t> tracked() const;
  std::vector<int32_t> caught_up() const;

 private:
  enum Log { kChangelog = 0, kIds = 1 };
  struct Tail {
    std::array<int64_t, 2> next = {0, 0};  // next offset to read of each log
    std::array<bool, 2> at_end = {false, false};
    // Checkpoints read in one log and not yet in the other: events offset
    // -> the offset after the checkpoint record.
    std::array<std::map<int64_t, int64_t>, 2> marks;
    std::array<int64_t, 2> last_mark = {-1, -1};
    StateCheckpoint reached;  // both logs read through it
    bool dirty = false;       // `reached` not written yet
  };

  void StepLocked(std::chrono::milliseconds timeout);
  Status OpenReaders();
  Status Adopt(int32_t partition);
  Status Drop(int32_t partition);
  void Apply(Log log, const ConsumedRecord& r);
  void OnCheckpoint(Tail* t, Log log, int64_t through, int64_t after);
  Status Flush();
  // Forgets everything read (after a failure): the next step starts again
  // from the checkpoints in the store.
  void Reset(const Status& why);
  void UpdateGauges();

  StandbyOptions options_;
  // The partition count records are checked against: options_.partitions
  // as given (0 when it was not, and no check).
  int32_t check_partitions_ = 0;
  GroupLog* log_;
  CounterStore* store_;
  prometheus::Gauge* tracked_gauge_ = nullptr;
  prometheus::Gauge* behind_gauge_ = nullptr;
  prometheus::Counter* records_ = nullptr;
  SkippedRecords skipped_;  // records that did not decode

  mutable std::mutex mu_;  // everything below
  std::chrono::steady_clock::time_point created_;
  bool begun_ = false;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point failed_at_;
  bool failed_ = false;
  std::map<int32_t, std::set<int>> owners_;  // partition -> workers owning it
  std::array<std::unique_ptr<LogReader>, 2> readers_;
  std::map<int32_t, Tail> tails_;
  KvWriteBatch batch_;
  size_t pending_ = 0;  // changes staged in batch_: records, and each id of a batch
  RecordBatch polled_;

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace catchall
