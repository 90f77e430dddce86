#include "embedded_node.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>

#include "engine/kv_store.h"
#include "engine/local_log.h"
#include "engine/store_metrics.h"
#include "ingest/ingest_service.h"
#include "node_common.h"
#include "query/query_service.h"
#include "state/aggregation_loop.h"
#include "state/counter_store.h"

namespace catchall {
namespace {
// The consumer group under which serve commits its offsets in the local
// log, whatever kafka.group_id says. serve used to take kafka.group_id's
// value (while warning that it did not use it); a data dir run once under
// another name kept that name's offsets, which held the log's retention
// floor for good: the log grew without bound and, log.max_unconsumed_events
// later, every write got 503. This is kafka.group_id's default, which most
// data dirs already hold.
constexpr std::string_view kEmbeddedGroup = "catchall-aggregators";
}  // namespace

EmbeddedNode::EmbeddedNode(Config config, Env* env) : Node(std::move(config), "serve"), env_(env) {}

EmbeddedNode::~EmbeddedNode() { Shutdown(); }

Status EmbeddedNode::Open() {
  const Config& c = config();
  LocalLogOptions log_options;
  // A data dir keeps the count it was made with unless one is asked for.
  log_options.topics = {{std::string(kEventsTopic), c.partitions, !c.partitions_given},
                        {std::string(kDeadLetterTopic), 1, false, /*consumed_by_groups=*/false}};
  log_options.max_pending_bytes = c.max_pending_mb << 20;
  log_options.max_unconsumed_records = static_cast<int64_t>(c.max_unconsumed_events);
  log_options.retention = std::chrono::minutes(c.retention_minutes);
  log_options.fetch_min_records = c.fetch_min_events;
  log_options.fetch_max_wait = std::chrono::milliseconds(c.fetch_wait_ms);
  // Beside the store, not in it: what RocksDB rolls back with a lost file
  // must not roll this back too (LocalLogOptions::ends_file).
  log_options.ends_file = (std::filesystem::path(c.data_dir) / "catchall-log-ends").string();
  log_options.accept_lost_ends = c.recover_damaged_wal;

  std::vector<ColumnSpec> columns = LocalLog::Columns(log_options);
  for (auto& column : CounterStore::Columns(std::chrono::seconds(c.idempotency_window_s))) {
    columns.push_back(std::move(column));
  }
  CATCHALL_RETURN_IF_ERROR(OpenStore(env_, c, std::move(columns), &store_));
  disk_ = WatchDisk(env_, c, metrics());
  ExportStoreMetrics(store_.get(), metrics());
  log_options.disk = disk_.get();
  CATCHALL_RETURN_IF_ERROR(LocalLog::Open(log_options, store_.get(), metrics(), &log_));
  if (int32_t kept = log_->PartitionCount(kEventsTopic); kept != c.partitions) {
    spdlog::info(
        "the local log keeps the {} partitions this data dir was made with ({} for a new "
        "one; docs/operations.md, log.partitions)",
        kept, c.partitions);
  }
  counters_ = std::make_unique<CounterStore>(store_.get(), std::string(kEventsTopic));
  // A damaged data dir (a cut MANIFEST, files copied in part) can open with
  // the counters and the log's offsets from different moments: refuse it
  // rather than serve counts that are wrong from then on.
  std::map<int32_t, int64_t> ends;
  std::map<int32_t, int64_t> starts;
  for (int32_t p = 0; p < log_->PartitionCount(kEventsTopic); ++p) {
    ends[p] = log_->EndOffset(kEventsTopic, p);
    starts[p] = log_->StartOffset(kEventsTopic, p);
  }
  // Every group's offsets, not only this one's: an older version may have
  // committed under another kafka.group_id, and no group's may be ahead of
  // the state.
  if (Status s = counters_->CheckAgainstLog(log_->MaxCommitted(kEventsTopic), ends, starts);
      !s.ok()) {
    return Status::Corruption(
        fmt::format("the data dir '{}' is damaged: {}. Restore it from a backup (docs/"
                    "operations.md, \"A damaged data dir\")",
                    c.data_dir, s.message()));
  }
  // Counting resumes from the state's checkpoints (AggregationLoop::
  // OnAssigned), so they are this group's offsets; other groups' (an older
  // version's kafka.group_id) would only hold the retention floor back.
  std::map<int32_t, int64_t> checkpoints;
  for (const auto& [p, end] : ends) {
    Result<StateCheckpoint> checkpoint = counters_->ReadCheckpoint(p);
    if (!checkpoint.ok()) return checkpoint.status();
    checkpoints[p] = checkpoint->events_offset;
  }
  Result<std::vector<std::string>> dropped =
      log_->ResetGroups(kEmbeddedGroup, kEventsTopic, checkpoints);
  if (!dropped.ok()) return dropped.status();
  for (const std::string& group : *dropped) {
    spdlog::info(
        "dropped the local log's committed offsets of consumer group '{}' (the kafka.group_id "
        "an older version ran serve under); counting resumes from the state's checkpoints",
        group);
  }

  // The state shares the log's store, so each commit writes the counters,
  // ids and offsets in one atomic write with its dead letters.
  CATCHALL_RETURN_IF_ERROR(log_->NewGroupLog(std::string(kEmbeddedGroup), kEventsTopic,
                                             /*state_in_transaction=*/true, &group_log_));
  AggregationOptions options;
  options.commit_interval = std::chrono::milliseconds(c.commit_interval_ms);
  options.commit_max_records = c.commit_max_events;
  options.id_window = std::chrono::seconds(c.idempotency_window_s);
  // Embedded mode only: a cluster aggregator creates librdkafka's threads
  // on this thread at every rejoin, and they would inherit its nice 19.
  options.low_priority = c.aggregate_low_priority;
  options.catchall_threshold = c.catchall_threshold;
  options.ready_when_caught_up = true;
  options.may_consume = [this] { return disk_->Check(); };
  aggregation_ =
      std::make_unique<AggregationLoop>(options, group_log_.get(), counters_.get(), metrics());
  CATCHALL_RETURN_IF_ERROR(aggregation_->Start());

  ingest_ =
      std::make_unique<IngestService>(IngestOptions{c.max_batch_items, 1000, c.offload_batch_bytes},
                                      log_->Appender(kEventsTopic), metrics());
  query_ = std::make_unique<QueryService>(QueryOptions{c.catchall_threshold, c.max_lookup_domains},
                                          counters_.get(), metrics());
  router()->Mount(
      "/events",
      [this](const HttpRequest& r, const Responder& respond) { ingest_->Handle(r, respond); },
      IngestService::ServesPath, IngestService::kMethods);
  router()->Mount(
      "/domains",
      [this](const HttpRequest& r, const Responder& respond) { query_->Handle(r, respond); },
      QueryService::ServesPath, QueryService::kMethods);
  return Status::Ok();
}

Status EmbeddedNode::Readiness() const {
  CATCHALL_RETURN_IF_ERROR(store_->WriteHealth());
  CATCHALL_RETURN_IF_ERROR(store_->ReadHealth());
  CATCHALL_RETURN_IF_ERROR(log_->Appender(kEventsTopic)->Health());
  CATCHALL_RETURN_IF_ERROR(aggregation_->Health());
  if (!aggregation_->ready()) {
    return Status::Unavailable("catching up: counting events logged before the restart");
  }
  return Status::Ok();
}

std::string EmbeddedNode::Describe() const {
  int32_t partitions = log_ ? log_->PartitionCount(kEventsTopic) : config().partitions;
  return fmt::format("embedded mode, data in '{}', {} partition{}, catch-all threshold {}",
                     config().data_dir, partitions, partitions == 1 ? "" : "s",
                     config().catchall_threshold);
}

void EmbeddedNode::Close() {
  // Requests in flight are answered (their appends durable) by now, but
  // for batches still on the ingest's thread (after a shutdown timeout):
  // they append before the log closes. The aggregation commits what it
  // has through the log, then the log stops.
  if (ingest_) ingest_->Stop();
  if (aggregation_) aggregation_->Stop();
  if (log_) log_->Close();
  if (store_) FlushStoreOnShutdown(store_.get(), disk_.get(), config().write_buffer_mb << 20);
  aggregation_.reset();
  group_log_.reset();
  log_.reset();
  counters_.reset();
  disk_.reset();
  store_.reset();
}

}  // namespace catchall
