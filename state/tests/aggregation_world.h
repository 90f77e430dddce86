// AggregationWorld: a log and aggregator processes counting it, in either
// mode, over real RocksDB stores in a scratch directory, with a
// FaultInjector per process. The tests of the aggregation loop and its
// fault-injection tests share it.
//
//   embedded: a process owns one store holding the local log and its state;
//             it commits its state inside the log's writes. Killing it
//             reopens store and log, as a restart of `catchall serve` does.
//   cluster:  the world owns the log (standing in for Kafka: events,
//             changelog, ids, dead letters) and survives the processes; each
//             process keeps its state in a store of its own, a cache of the
//             changelog, and commits through the log's transactions.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "engine/local_log.h"
#include "engine/metrics.h"
#include "fault_injection.h"
#include "state/aggregation_loop.h"
#include "state/counter_store.h"
#include "state/standby_replicas.h"

namespace catchall::test {

enum class Mode { kEmbedded, kCluster };

std::string ModeName(Mode mode);
inline void PrintTo(Mode mode, std::ostream* os) { *os << ModeName(mode); }

inline constexpr int32_t kWorldPartitions = 4;

// Options that make a test's few hundred events take several polls and
// commits, and its waits short.
inline AggregationOptions SmallCommits() {
  using namespace std::chrono_literals;
  AggregationOptions o;
  o.commit_interval = 5ms;
  o.commit_max_records = 50;
  o.poll_max_records = 40;
  o.ready_without_assignment = 100ms;
  o.retry_delay = 10ms;
  return o;
}
inline constexpr std::string_view kWorldGroup = "aggregators";

class AggregationWorld {
 public:
  // One aggregator process.
  struct Process {
    std::string machine;
    testing::FaultInjector injector;
    std::unique_ptr<KvStore> store;  // the process's store (a twin)
    std::unique_ptr<LocalLog> log;   // embedded mode: the process's own log
    std::unique_ptr<CounterStore> counters;
    std::unique_ptr<GroupLog> base_group;
    std::unique_ptr<testing::FaultInjectionGroupLog> group;
    Metrics metrics;
    std::unique_ptr<StandbyReplicas> standby;  // with UseStandbys
    std::unique_ptr<AggregationLoop> loop;
  };

  // `log_partitions`: of the changelog and the ids log (cluster mode), which
  // may be more than the events topic's kWorldPartitions, as on Kafka.
  AggregationWorld(Mode mode, std::string dir, AggregationOptions options = {},
                   int32_t log_partitions = kWorldPartitions);
  ~AggregationWorld();

  Mode mode() const { return mode_; }
  // The log as it is now (embedded: the live process's, or the one reopened
  // for appends).
  LocalLog* log();

  // Cluster mode: processes started from now on keep warm standbys
  // (StandbyReplicas), stepped with their loops.
  void UseStandbys() { standbys_ = true; }

  // Starts a process and joins the group. `machine` names its state dir in
  // cluster mode (a restarted process finds its old state there). Embedded
  // mode runs one process at a time.
  Process* Start(const std::string& machine = "a");
  // kill -9: no shutdown code runs; whatever was durable stays.
  void Kill(Process* p);
  // SIGTERM: commits, leaves the group, closes.
  void Stop(Process* p);
  const std::vector<std::unique_ptr<Process>>& processes() const { return processes_; }

  // Appends `n` events over `domains` domains (some bounces, some with ids,
  // some retries of an earlier id, a few malformed records), remembering
  // what they must count to.
  void AppendEvents(int n, int domains, uint32_t seed);
  // Appends one event; `id` may be empty.
  void AppendEvent(const std::string& domain, bool bounced, const std::string& id = {});
  // Appends a record that is not a valid event (it must be dead-lettered).
  void AppendMalformed(const std::string& key, const std::string& value);
  // Cluster mode: appends a record to another topic of the log (the
  // changelog, the ids log), as any Kafka tool could by mistake.
  void AppendTo(std::string_view topic, const std::string& key, const std::string& value);

  // Steps every live process once (its loop, then its standby).
  void StepAll();
  // Every partition's committed offset is the end of the log (no step).
  bool CaughtUp();
  // Steps until every partition's committed offset is the end of the log;
  // false after `deadline`.
  bool RunUntilCaughtUp(std::chrono::milliseconds deadline = std::chrono::seconds(30));
  // Steps until `done()`; false after `deadline`.
  bool RunUntil(const std::function<bool()>& done,
                std::chrono::milliseconds deadline = std::chrono::seconds(30));

  // What every domain must count: each valid event once, ids deduplicated.
  const std::map<std::string, DomainCounts>& expected() const { return expected_; }
  size_t malformed() const { return malformed_; }
  // The counts as clients would see them: the live process's state
  // (embedded), or the changelog materialized the way a query node does
  // (cluster).
  std::map<std::string, DomainCounts> Visible();
  // Describes every difference between Visible() and expected(), and
  // between each live process's cache and expected() for the partitions it
  // owns (cluster); empty when all match.
  std::string Differences();
  // Records in the dead-letter topic.
  size_t DeadLetters();

 private:
  KvStoreOptions StoreOptions(const std::string& path, std::vector<ColumnSpec> columns) const;
  LocalLogOptions LogOptions() const;
  // Embedded: (re)opens the process's store and log.
  void OpenEmbedded(Process* p);
  // Cluster: opens the world's log.
  void OpenClusterLog();
  void Append(std::vector<LogRecord> records, std::string_view topic = kEventsTopic);
  void Forget(Process* p);

  Mode mode_;
  int32_t log_partitions_;
  std::string dir_;
  AggregationOptions options_;
  // Cluster mode: the log every process shares.
  std::unique_ptr<KvStore> log_store_;
  std::unique_ptr<LocalLog> cluster_log_;
  // Embedded mode without a live process: the store and log reopened to
  // append to.
  std::unique_ptr<KvStore> idle_store_;
  std::unique_ptr<LocalLog> idle_log_;
  bool standbys_ = false;
  std::vector<std::unique_ptr<Process>> processes_;
  std::map<std::string, DomainCounts> expected_;
  std::map<std::string, bool> seen_ids_;
  size_t malformed_ = 0;
  std::mt19937 rng_{7};
};

}  // namespace catchall::test
