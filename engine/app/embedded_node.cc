#include "embedded_node.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "engine/http_server.h"
#include "engine/kv_store.h"
#include "engine/local_log.h"
#include "engine/log_probe.h"
#include "engine/runtime.h"
#include "ingest/ingest_service.h"
#include "node_common.h"
#include "query/query_service.h"
#include "state/counter_store.h"
#include "state/embedded_aggregation.h"

namespace catchall {

EmbeddedNode::EmbeddedNode(Config config) : config_(std::move(config)) {}

EmbeddedNode::~EmbeddedNode() { Shutdown(); }

Status EmbeddedNode::Start(const std::string& port_file) {
  LocalLogOptions log_options;
  log_options.topics = {{std::string(kEventsTopic), config_.partitions},
                        {std::string(kDeadLetterTopic), 1}};
  log_options.max_pending_bytes = config_.max_pending_mb << 20;
  log_options.max_unconsumed_records = static_cast<int64_t>(config_.max_unconsumed_events);
  log_options.retention = std::chrono::minutes(config_.retention_minutes);

  std::vector<ColumnSpec> columns = LocalLog::Columns(log_options);
  for (auto& c : CounterStore::Columns(std::chrono::seconds(config_.idempotency_window_s))) {
    columns.push_back(std::move(c));
  }
  CATCHALL_RETURN_IF_ERROR(OpenStore(config_, std::move(columns), &store_));
  log_probe_ = std::make_unique<LogProbe>(metrics_);
  CATCHALL_RETURN_IF_ERROR(LocalLog::Open(log_options, store_.get(), log_probe_.get(), &log_));
  counters_ = std::make_unique<CounterStore>(store_.get(), std::string(kEventsTopic));

  EmbeddedAggregationOptions agg_options;
  agg_options.commit_interval = std::chrono::milliseconds(config_.commit_interval_ms);
  agg_options.commit_max_records = config_.commit_max_events;
  agg_options.id_window = std::chrono::seconds(config_.idempotency_window_s);
  aggregation_ =
      std::make_unique<EmbeddedAggregation>(agg_options, log_.get(), counters_.get(), &metrics_);
  CATCHALL_RETURN_IF_ERROR(aggregation_->Start());

  LogAppender* appender = log_->Appender(kEventsTopic);
  ingest_ = std::make_unique<IngestService>(IngestOptions{config_.max_batch_items, 1000}, appender,
                                            &metrics_);
  query_ = std::make_unique<QueryService>(
      QueryOptions{config_.catchall_threshold, config_.max_lookup_domains}, counters_.get(),
      &metrics_);
  router_.Mount("/events", [this](const HttpRequest& r, const Responder& respond) {
    ingest_->Handle(r, respond);
  });
  router_.Mount("/domains", [this](const HttpRequest& r, const Responder& respond) {
    query_->Handle(r, respond);
  });
  MountRuntimeEndpoints(
      &router_, &metrics_,
      [this, appender]() -> Status {
        CATCHALL_RETURN_IF_ERROR(appender->Health());
        CATCHALL_RETURN_IF_ERROR(aggregation_->Health());
        if (!aggregation_->ready()) {
          return Status::Unavailable("catching up: counting events logged before the restart");
        }
        return Status::Ok();
      },
      "serve");

  CATCHALL_RETURN_IF_ERROR(StartHttp(config_, &router_, &metrics_, port_file, &server_));
  spdlog::info(
      "catchall serve (embedded mode) listening on {} (port {}); data in '{}', {} partitions, "
      "catch-all threshold {}",
      config_.listen, server_->port(), config_.data_dir, config_.partitions,
      config_.catchall_threshold);
  return Status::Ok();
}

void EmbeddedNode::Shutdown() {
  if (server_) {
    server_->Shutdown(std::chrono::milliseconds(config_.shutdown_timeout_ms));
    server_.reset();
  }
  if (log_) log_->Close();
  if (aggregation_) aggregation_->Stop();
  if (store_) {
    Status s = store_->Flush();
    if (!s.ok()) spdlog::warn("flushing the store on shutdown failed: {}", s.ToString());
  }
  aggregation_.reset();
  log_.reset();
  counters_.reset();
  store_.reset();
}

}  // namespace catchall
