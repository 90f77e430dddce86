// The cluster roles: `catchall ingest`, `catchall aggregate`, `catchall
// query`. Each is a process that any number of copies of can run; they talk
// only through Kafka. Every role serves /metrics, /healthz and /readyz.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/env.h"
#include "engine/status.h"
#include "node.h"

namespace catchall {

class AggregationLoop;
class CounterStore;
class DiskMonitor;
class GroupLog;
class IngestService;
class KvStore;
class LogAppender;
class QueryService;
class PartitionOwners;
class StandbyReplicas;
class StatusMaterializer;

// Validates and produces events to the events topic.
class IngestNode final : public Node {
 public:
  explicit IngestNode(Config config);
  ~IngestNode() override;

 protected:
  Status Open() override;
  Status Readiness() const override;
  void Close() override;
  std::string Describe() const override;

 private:
  std::unique_ptr<LogAppender> appender_;
  std::unique_ptr<IngestService> ingest_;
};

// Consumes events exactly-once into counters and the changelog.
class AggregatorNode final : public Node {
 public:
  explicit AggregatorNode(Config config, Env* env = Env::Default());
  ~AggregatorNode() override;

 protected:
  Status Open() override;
  Status Readiness() const override;
  void Close() override;
  std::string Describe() const override;

 private:
  Env* env_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<DiskMonitor> disk_;
  std::unique_ptr<CounterStore> counters_;
  // Which worker writes each partition (declared before the workers, which
  // tell it, so that it outlives them).
  std::unique_ptr<PartitionOwners> owners_;
  // One per aggregate.threads: each a group member with its own consumer
  // and transactional producer; they own disjoint partitions and so touch
  // disjoint keys of the shared store.
  struct Worker {
    std::unique_ptr<GroupLog> log;
    std::unique_ptr<AggregationLoop> loop;
  };
  std::vector<Worker> workers_;
  // aggregate.standby_replicas: warm copies of the partitions no worker
  // owns, kept in the same store.
  std::unique_ptr<GroupLog> standby_log_;
  std::unique_ptr<StandbyReplicas> standby_;
};

// Materializes the changelog and answers lookups.
class QueryNode final : public Node {
 public:
  explicit QueryNode(Config config, Env* env = Env::Default());
  ~QueryNode() override;

 protected:
  Status Open() override;
  Status Readiness() const override;
  void Close() override;
  std::string Describe() const override;

 private:
  Env* env_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<DiskMonitor> disk_;
  std::unique_ptr<StatusMaterializer> materializer_;
  std::unique_ptr<QueryService> query_;
};

// `catchall topics create|check`: prints a line per topic to stdout.
// `check` with `expected_partitions` 0 takes the events topic's count as the
// expected one (the changelog must match it), and checks each topic's
// replication factor only when `expected_replication` is above 0.
Status RunTopicsCommand(const Config& config, bool create, int32_t expected_partitions,
                        int32_t expected_replication);

}  // namespace catchall
