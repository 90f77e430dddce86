#include "cluster_nodes.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "engine/http_server.h"
#include "engine/kafka.h"
#include "engine/kv_store.h"
#include "engine/runtime.h"
#include "ingest/ingest_service.h"
#include "node_common.h"
#include "query/query_service.h"
#include "query/status_materializer.h"
#include "state/counter_store.h"
#include "state/kafka_aggregation.h"

namespace catchall {
namespace {

Status RequireBrokers(const Config& config, std::string_view role) {
  if (config.brokers.empty()) {
    return Status::InvalidArgument(fmt::format(
        "catchall {} needs Kafka: pass --brokers HOST:PORT,... (or set kafka.brokers); for "
        "everything in one process without Kafka, use `catchall serve`",
        role));
  }
  return Status::Ok();
}

// The topics a role needs, checked at start with a message that says what
// to do.
Status CheckRoleTopics(const Config& config, const std::vector<std::string>& names) {
  std::vector<TopicSpec> specs;
  for (const TopicSpec& t : ProductTopics(config, 0)) {
    for (const auto& n : names) {
      if (t.name == n) specs.push_back({t.name, 0, 1, {}});
    }
  }
  std::string report;
  Status s = CheckTopics(KafkaOptionsFor(config, "check"), specs, &report);
  if (s.code() == Code::kFailedPrecondition) {
    return Status::FailedPrecondition(
        fmt::format("{}; create the topics with `catchall topics create --brokers {}`", s.message(),
                    config.brokers));
  }
  return s;
}

}  // namespace

IngestNode::IngestNode(Config config) : config_(std::move(config)) {}
IngestNode::~IngestNode() { Shutdown(); }

Status IngestNode::Start(const std::string& port_file) {
  CATCHALL_RETURN_IF_ERROR(RequireBrokers(config_, "ingest"));
  CATCHALL_RETURN_IF_ERROR(CheckRoleTopics(config_, {config_.events_topic}));
  CATCHALL_RETURN_IF_ERROR(CreateKafkaAppender(KafkaOptionsFor(config_, "ingest"),
                                               config_.events_topic, &metrics_, &appender_));
  ingest_ = std::make_unique<IngestService>(IngestOptions{config_.max_batch_items, 1000},
                                            appender_.get(), &metrics_);
  router_.Mount("/events", [this](const HttpRequest& r, const Responder& respond) {
    ingest_->Handle(r, respond);
  });
  MountRuntimeEndpoints(
      &router_, &metrics_, [this] { return appender_->Health(); }, "ingest");
  CATCHALL_RETURN_IF_ERROR(StartHttp(config_, &router_, &metrics_, port_file, &server_));
  spdlog::info("catchall ingest listening on {}; producing to {} at {}", config_.listen,
               config_.events_topic, config_.brokers);
  return Status::Ok();
}

void IngestNode::Shutdown() {
  if (server_) {
    server_->Shutdown(std::chrono::milliseconds(config_.shutdown_timeout_ms));
    server_.reset();
  }
  if (appender_) {
    Status s = appender_->Flush(std::chrono::milliseconds(config_.shutdown_timeout_ms));
    if (!s.ok()) spdlog::warn("flushing the producer: {}", s.ToString());
    appender_.reset();
  }
}

AggregatorNode::AggregatorNode(Config config) : config_(std::move(config)) {}
AggregatorNode::~AggregatorNode() { Shutdown(); }

Status AggregatorNode::Start(const std::string& port_file) {
  CATCHALL_RETURN_IF_ERROR(RequireBrokers(config_, "aggregate"));
  CATCHALL_RETURN_IF_ERROR(CheckRoleTopics(
      config_, {config_.events_topic, config_.status_topic, config_.dead_letter_topic}));
  CATCHALL_RETURN_IF_ERROR(OpenStore(
      config_, CounterStore::Columns(std::chrono::seconds(config_.idempotency_window_s)), &store_));
  KafkaAggregationOptions options;
  options.kafka = KafkaOptionsFor(config_, "aggregate");
  options.events_topic = config_.events_topic;
  options.status_topic = config_.status_topic;
  options.dead_letter_topic = config_.dead_letter_topic;
  options.group_id = config_.group_id;
  options.commit_interval = std::chrono::milliseconds(config_.commit_interval_ms);
  options.commit_max_records = config_.commit_max_events;
  options.id_window = std::chrono::seconds(config_.idempotency_window_s);
  options.catchall_threshold = config_.catchall_threshold;
  options.max_partition_fetch_kb = config_.max_partition_fetch_kb;
  std::string base_id = "catchall-aggregator-" + InstanceId(config_);
  for (int i = 0; i < config_.aggregate_threads; ++i) {
    options.worker = i;
    // Worker 0 keeps the plain id, so that one worker per process (the
    // default) fences exactly the transactions it fenced before.
    options.transactional_id = i == 0 ? base_id : fmt::format("{}-{}", base_id, i);
    workers_.push_back(std::make_unique<KafkaAggregation>(options, store_.get(), &metrics_));
    CATCHALL_RETURN_IF_ERROR(workers_.back()->Start());
  }
  MountRuntimeEndpoints(
      &router_, &metrics_,
      [this]() -> Status {
        for (const auto& w : workers_) {
          if (!w->ready()) {
            return Status::Unavailable("joining the consumer group and restoring partitions");
          }
          CATCHALL_RETURN_IF_ERROR(w->Health());
        }
        return Status::Ok();
      },
      "aggregate");
  CATCHALL_RETURN_IF_ERROR(StartHttp(config_, &router_, &metrics_, port_file, &server_));
  spdlog::info("catchall aggregate listening on {}; group {}, {} worker(s), transactional id {}",
               config_.listen, config_.group_id, workers_.size(), base_id);
  return Status::Ok();
}

void AggregatorNode::Shutdown() {
  if (server_) {
    server_->Shutdown(std::chrono::milliseconds(config_.shutdown_timeout_ms));
    server_.reset();
  }
  // Ask every worker to stop before joining any, so that they leave the
  // group together instead of passing partitions to each other.
  for (auto& w : workers_) w->RequestStop();
  for (auto& w : workers_) w->Stop();
  workers_.clear();
  if (store_) {
    Status s = store_->Flush();
    if (!s.ok()) spdlog::warn("flushing the store: {}", s.ToString());
    store_.reset();
  }
}

QueryNode::QueryNode(Config config) : config_(std::move(config)) {}
QueryNode::~QueryNode() { Shutdown(); }

Status QueryNode::Start(const std::string& port_file) {
  CATCHALL_RETURN_IF_ERROR(RequireBrokers(config_, "query"));
  CATCHALL_RETURN_IF_ERROR(CheckRoleTopics(config_, {config_.status_topic}));
  CATCHALL_RETURN_IF_ERROR(OpenStore(config_, StatusMaterializer::Columns(), &store_));
  materializer_ = std::make_unique<StatusMaterializer>(
      KafkaOptionsFor(config_, "query"), config_.status_topic, store_.get(), &metrics_);
  CATCHALL_RETURN_IF_ERROR(materializer_->Start());
  query_ = std::make_unique<QueryService>(
      QueryOptions{config_.catchall_threshold, config_.max_lookup_domains}, materializer_.get(),
      &metrics_);
  router_.Mount("/domains", [this](const HttpRequest& r, const Responder& respond) {
    query_->Handle(r, respond);
  });
  MountRuntimeEndpoints(
      &router_, &metrics_,
      [this]() -> Status {
        CATCHALL_RETURN_IF_ERROR(materializer_->Health());
        if (!materializer_->ready()) {
          return Status::Unavailable("catching up with the changelog");
        }
        return Status::Ok();
      },
      "query");
  CATCHALL_RETURN_IF_ERROR(StartHttp(config_, &router_, &metrics_, port_file, &server_));
  spdlog::info("catchall query listening on {}; materializing {}", config_.listen,
               config_.status_topic);
  return Status::Ok();
}

void QueryNode::Shutdown() {
  if (server_) {
    server_->Shutdown(std::chrono::milliseconds(config_.shutdown_timeout_ms));
    server_.reset();
  }
  if (materializer_) {
    materializer_->Stop();
    materializer_.reset();
  }
  if (store_) {
    Status s = store_->Flush();
    if (!s.ok()) spdlog::warn("flushing the store: {}", s.ToString());
    store_.reset();
  }
}

Status RunTopicsCommand(const Config& config, bool create, int32_t expected_partitions) {
  CATCHALL_RETURN_IF_ERROR(RequireBrokers(config, "topics"));
  KafkaOptions kafka = KafkaOptionsFor(config, "admin");
  int32_t partitions = config.kafka_partitions;
  if (!create && expected_partitions <= 0) {
    Result<int32_t> events = TopicPartitionCount(kafka, config.events_topic);
    if (events.status().code() == Code::kNotFound) {
      return Status::FailedPrecondition(fmt::format(
          "topic {} does not exist; run `catchall topics create`", config.events_topic));
    }
    if (!events.ok()) return events.status();
    partitions = *events;
  } else if (expected_partitions > 0) {
    partitions = expected_partitions;
  }
  std::vector<TopicSpec> topics = ProductTopics(config, partitions);
  std::string report;
  Status s = create ? CreateTopics(kafka, topics, &report) : CheckTopics(kafka, topics, &report);
  std::cout << report;
  return s;
}

}  // namespace catchall
