// The cluster roles: `catchall ingest`, `catchall aggregate`, `catchall
// query`. Each is a process that any number of copies of can run; they talk
// only through Kafka. Every role serves /metrics, /healthz and /readyz.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/http.h"
#include "engine/metrics.h"
#include "engine/status.h"
#include "node.h"

namespace catchall {

class HttpServer;
class KvStore;
class LogAppender;
class IngestService;
class QueryService;
class KafkaAggregation;
class StatusMaterializer;

// Validates and produces events to the events topic.
class IngestNode final : public Node {
 public:
  explicit IngestNode(Config config);
  ~IngestNode() override;
  Status Start(const std::string& port_file) override;
  void Shutdown() override;

 private:
  Config config_;
  Metrics metrics_;
  std::unique_ptr<LogAppender> appender_;
  std::unique_ptr<IngestService> ingest_;
  HttpRouter router_;
  std::unique_ptr<HttpServer> server_;
};

// Consumes events exactly-once into counters and the changelog.
class AggregatorNode final : public Node {
 public:
  explicit AggregatorNode(Config config);
  ~AggregatorNode() override;
  Status Start(const std::string& port_file) override;
  void Shutdown() override;

 private:
  Config config_;
  Metrics metrics_;
  std::unique_ptr<KvStore> store_;
  // One per aggregate.threads: each a group member with its own consumer
  // and transactional producer; they own disjoint partitions and so touch
  // disjoint keys of the shared store.
  std::vector<std::unique_ptr<KafkaAggregation>> workers_;
  HttpRouter router_;
  std::unique_ptr<HttpServer> server_;
};

// Materializes the changelog and answers lookups.
class QueryNode final : public Node {
 public:
  explicit QueryNode(Config config);
  ~QueryNode() override;
  Status Start(const std::string& port_file) override;
  void Shutdown() override;

 private:
  Config config_;
  Metrics metrics_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<StatusMaterializer> materializer_;
  std::unique_ptr<QueryService> query_;
  HttpRouter router_;
  std::unique_ptr<HttpServer> server_;
};

// `catchall topics create|check`: prints a line per topic to stdout.
// `check` with `expected_partitions` 0 takes the events topic's count as the
// expected one (the changelog must match it).
Status RunTopicsCommand(const Config& config, bool create, int32_t expected_partitions);

}  // namespace catchall
