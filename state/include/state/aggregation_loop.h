// AggregationLoop: the exactly-once aggregation of both modes.
//
// A member of the aggregators' consumer group on the events topic (through
// a GroupLog: the local log in embedded mode, Kafka in cluster mode). For
// the partitions it owns, it folds events into an Aggregator's delta and,
// every commit interval, commits in ONE LogCommitter transaction:
//   - the dead letters (malformed records) of the interval,
//   - the consumed offsets,
//   - the state change: inside the same atomic write when the committer
//     supports it (embedded mode: state and log share one store), else
//     published as the changelog (absolute counters of changed domains,
//     new idempotency ids) and applied to the local store after the commit
//     (cluster mode: the store is a checkpointed cache of the changelog,
//     restored from it whenever its checkpoint is behind the committed
//     offset: after a crash between the two steps, or when the partition
//     comes from another aggregator).
// A failed or unknown commit never counts anything twice: an aborted
// transaction rewinds to the last commit; anything else rejoins the group
// and resumes from the committed offsets read back from the log.
// Single-threaded: Step() (tests) or the loop's own thread (Start).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/kv_store.h"
#include "engine/log.h"
#include "engine/skipped_records.h"
#include "engine/status.h"
#include "state/aggregator.h"
#include "state/counter_store.h"

namespace catchall {

class AggregatorProbe;
class Metrics;
class StateRestorer;
struct PublishOptions;

// Told when a worker takes partitions on and lets them go (the process's
// other workers: PartitionOwners; its warm standbys: StandbyReplicas).
// Called on the worker's thread.
class OwnershipListener {
 public:
  virtual ~OwnershipListener() = default;
  // Before the worker restores or reads `partitions`; returns once nothing
  // else of the process writes their state. Not OK: they may not be taken
  // now (the worker rejoins the group and tries again).
  virtual Status Taking(int worker, const std::vector<int32_t>& partitions) = 0;
  // After the worker stopped writing their state (handed over, lost, or
  // dropped on a rejoin).
  virtual void Released(int worker, const std::vector<int32_t>& partitions) = 0;
};

// What `top -H` and perf call an aggregation loop's thread: "aggregate" in
// embedded mode, "aggregate-N" for a cluster process's worker N.
inline constexpr const char* kAggregationThreadName = "aggregate";

struct AggregationOptions {
  std::string events_topic{kEventsTopic};
  std::string dead_letter_topic{kDeadLetterTopic};
  // Cluster mode: publish the state to these topics and restore from them.
  // Absent (embedded mode), the committer must write the state in its
  // transaction, and the local state is the truth.
  std::optional<std::string> status_topic;
  std::string ids_topic{kIdsTopic};
  // Cluster mode: write the ids log in batch records (one per partition
  // per transaction) rather than one record per id. Versions before batch
  // records skip them, so a rolling upgrade from one first runs with this
  // off (docs/operations.md).
  bool ids_log_batches = true;
  uint64_t catchall_threshold = 1000;
  std::chrono::milliseconds commit_interval{100};
  size_t commit_max_records = 500000;
  // Records taken from the log per poll.
  size_t poll_max_records = 20000;
  std::chrono::seconds id_window{std::chrono::hours(24)};
  // Ready (for /readyz) only once the backlog found at assignment is
  // counted (embedded mode); otherwise once the assigned partitions are
  // restored (cluster mode).
  bool ready_when_caught_up = false;
  // Wait before joining again after a failure, and between attempts to
  // prepare assigned partitions.
  std::chrono::milliseconds retry_delay{std::chrono::seconds(1)};
  // Cluster mode: a restore that reads nothing for this long gives up (the
  // member retries, then rejoins): a changelog or ids log it cannot read
  // must not hold its partitions for good.
  std::chrono::seconds restore_stall_timeout{60};
  // A member that gets no partitions is still ready after this.
  std::chrono::milliseconds ready_without_assignment{std::chrono::seconds(15)};
  // This worker reports the store's size gauges (one worker per store).
  bool report_store_size = true;
  // With several workers in one process (cluster mode's aggregate.threads),
  // each one's metrics carry its number as a `worker` label.
  std::optional<int> worker;
  // The loop's thread at the lowest CPU priority (nice 19): on cores shared
  // with the HTTP threads, requests wait less for counting, which then runs
  // in the cores' idle time (aggregate.low_priority). Embedded mode only:
  // threads created on the loop's thread inherit its priority, and in
  // cluster mode every rejoin creates Kafka clients' threads there.
  bool low_priority = false;
  // Consumption pauses while this says no (the disk is low): the member
  // keeps its partitions but reads nothing, and Health() reports why.
  std::function<Status()> may_consume;
  // Told about every change of the partitions owned (may be null; must
  // outlive the loop).
  OwnershipListener* ownership = nullptr;
};

class AggregationLoop : private RebalanceListener {
 public:
  // `log` and `state` must outlive this; metrics go to `metrics` (may be
  // null).
  AggregationLoop(AggregationOptions options, GroupLog* log, CounterStore* state, Metrics* metrics);
  ~AggregationLoop() override;

  // Joins the group. Then Step() consumes, or Start() runs it on a thread.
  Status Join();
  // One round: poll (rebalances happen here), apply, commit when due.
  void Step();
  // Commits what is pending now (tests; Step commits when due).
  Status CommitNow();

  // Joins and runs Step() on the loop's thread until Stop().
  Status Start();
  // Asks the thread to stop without waiting (Stop() then joins), so that a
  // process stops all its workers at once instead of handing partitions
  // from one to the next.
  void RequestStop() { stop_.store(true); }
  // Commits what is pending, leaves the group and stops.
  void Stop();

  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // Not OK after a failed commit or a failed join, until the next success,
  // while consumption is paused, and while no broker answers.
  Status Health() const;
  std::vector<int32_t> owned() const;

 private:
  // On the loop's thread: names it (kAggregationThreadName) and lowers its
  // priority if options_.low_priority.
  void NameAndPrioritizeThisThread();
  // RebalanceListener, called inside consumer_->Poll.
  std::map<int32_t, int64_t> OnAssigned(const std::vector<int32_t>& partitions) override;
  void OnRevoked(const std::vector<int32_t>& partitions) override;
  void OnLost(const std::vector<int32_t>& partitions) override;

  // The exactly-once step. Non-OK: the caller must rejoin.
  Status Commit();
  // Hands the outcomes of the records a commit made final to the probe.
  void ReportCommittedOutcomes();
  // Drops what was not committed and puts every owned partition back at its
  // committed offset. False if a partition could not be rewound.
  bool Rewind();
  // Leaves the group without committing and forgets everything uncommitted.
  void Rejoin(const Status& why);
  void Apply(const RecordBatch& batch);
  // Clears a rejoin's failure once the member is ready again and a commit
  // interval passed without another.
  void ClearHealthAfterRejoin(std::chrono::steady_clock::time_point now);
  void UpdateGauges(std::chrono::steady_clock::time_point now);
  // Not ready, and ready again as a new member is: once the group gives it
  // partitions (restored, caught up where asked), or after
  // ready_without_assignment without any. After losing every partition
  // (OnLost) and after a rejoin.
  void StartReadinessOver();
  void UpdateReady(std::chrono::steady_clock::time_point now);
  void SetHealth(const Status& s);
  void PublishOwned();
  // Tells options_.ownership that these partitions are no longer written.
  void Release(const std::vector<int32_t>& partitions);
  // Pauses or resumes the consumer as options_.may_consume says.
  void ApplyGate();
  // Sleeps `d`, waking early when the loop is asked to stop.
  void SleepUnlessStopping(std::chrono::milliseconds d) const;

  AggregationOptions options_;
  GroupLog* log_;
  CounterStore* state_;
  std::unique_ptr<AggregatorProbe> probe_;  // null without metrics
  Metrics* metrics_;                        // may be null
  // Cluster mode: records a restore could not decode (with the restorer).
  std::unique_ptr<SkippedRecords> restore_skips_;
  std::unique_ptr<PublishOptions> publish_;
  std::unique_ptr<StateRestorer> restorer_;
  std::unique_ptr<Aggregator> aggregator_;
  std::unique_ptr<LogConsumer> consumer_;
  std::unique_ptr<LogCommitter> committer_;
  int32_t partitions_ = 0;
  std::map<int32_t, int64_t> committed_;  // owned partition -> next offset committed
  // Owned partition -> next offset expected from the consumer. A record
  // below it was applied already and is not applied again.
  std::map<int32_t, int64_t> position_;
  // Assigned partitions past partitions_, not taken on (OnAssigned): their
  // records are dropped as not ours.
  std::set<int32_t> not_taken_;
  // Owned partition -> end offset when it was assigned (ready_when_caught_up).
  std::map<int32_t, int64_t> backlog_end_;
  std::vector<OutputRecord> dead_letters_;
  // Records applied since the last commit, by ApplyOutcome: they reach the
  // probe (catchall_aggregate_records_total) when their transaction
  // commits, so a transaction aborted and read again counts its records
  // once (a probe saw one malformed record counted as 423 dead letters
  // while its transaction was retried).
  std::array<size_t, 3> uncommitted_outcomes_{};
  // Records dead-lettered (each application: a redone one again), for the
  // warnings' rate limit (LogsNthWarning).
  uint64_t dead_letter_lines_ = 0;
  RecordBatch batch_;
  KvWriteBatch state_batch_;
  // Apply's records of one poll and their outcomes (kept to reuse).
  std::vector<const ConsumedRecord*> applying_;
  std::vector<Aggregator::Applied> applied_;
  std::chrono::steady_clock::time_point last_commit_;
  std::chrono::steady_clock::time_point joined_;
  std::chrono::steady_clock::time_point last_gauges_;
  bool assigned_once_ = false;
  bool paused_ = false;
  // The health's error is an aborted transaction's, which the next commit
  // (or finding nothing left to commit) clears.
  bool aborted_ = false;
  // Set inside a rebalance callback when the member must rejoin.
  std::optional<Status> must_rejoin_;
  // Counts Rewind calls: Step sees whether one ran inside its poll.
  uint64_t rewinds_ = 0;
  // Set by Rejoin (and a failed join): the health keeps that failure until
  // ClearHealthAfterRejoin, at clear_health_at_ once ready again.
  bool rejoined_ = false;
  std::optional<std::chrono::steady_clock::time_point> clear_health_at_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  mutable std::mutex mu_;
  Status health_;          // GUARDED_BY(mu_)
  Status paused_because_;  // GUARDED_BY(mu_)
  // When the commit in progress began (steady clock, ns), 0 if none: a
  // commit waiting longer than kCommitStuck makes the member unready.
  std::atomic<int64_t> commit_started_ns_{0};
  static constexpr std::chrono::seconds kCommitStuck{5};
  std::set<int32_t> owned_view_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace catchall
