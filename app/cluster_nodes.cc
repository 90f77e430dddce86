#include "cluster_nodes.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <iostream>

#include "engine/kafka.h"
#include "engine/kv_store.h"
#include "engine/store_metrics.h"
#include "ingest/ingest_service.h"
#include "node_common.h"
#include "query/query_service.h"
#include "query/status_materializer.h"
#include "state/aggregation_loop.h"
#include "state/counter_store.h"
#include "state/partition_owners.h"
#include "state/standby_replicas.h"

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

// A topic just created reaches every broker's metadata a moment later, so a
// role started right after `catchall topics create` (a compose file's init
// container, a script) may ask a broker that has not heard of it yet. A
// missing topic is looked up again for this long before the role gives up.
constexpr auto kTopicWait = std::chrono::seconds(15);

// `catchall topics ... --brokers B` with the --set flags of the topic names
// that differ from the defaults: a hint printed without them
// would act on the default topics.
std::string TopicsCommand(const Config& config, std::string_view command) {
  const Config defaults;
  std::string out = fmt::format("catchall topics {} --brokers {}", command, config.brokers);
  for (const Setting& s : AllSettings()) {
    // The topic names (kafka.events_topic, ...), and the id window, which
    // sets the ids topic's retention: without it the command compared
    // against the default window (a review).
    if (!(s.key.starts_with("kafka.") && s.key.ends_with("_topic")) &&
        s.key != "aggregate.idempotency_window_s") {
      continue;
    }
    std::string value = s.get(config);
    if (value != s.get(defaults)) out += fmt::format(" --set {}={}", s.key, value);
  }
  return out;
}

// `checked` (CheckTopics's result) with what to do about each kind of
// problem, the topic names in use in every command: `topics check` said
// "run `catchall topics create`" without them, and for differences that
// create cannot fix (a probe).
Status WithTopicAdvice(const Config& config, const Status& checked,
                       const std::vector<TopicProblem>& problems) {
  if (checked.code() != Code::kFailedPrecondition) return checked;
  auto any = [&](std::initializer_list<TopicProblem::Kind> kinds) {
    return std::any_of(problems.begin(), problems.end(), [&](const TopicProblem& p) {
      return std::find(kinds.begin(), kinds.end(), p.kind) != kinds.end();
    });
  };
  using Kind = TopicProblem::Kind;
  std::string advice = checked.message();
  if (any({Kind::kMissing})) {
    advice += fmt::format("; create the missing topics with `{}`", TopicsCommand(config, "create"));
  }
  if (any({Kind::kConfig})) {
    advice += fmt::format(
        "; set a config with kafka-configs.sh --bootstrap-server {} --alter --entity-type topics "
        "--entity-name TOPIC --add-config NAME=VALUE, TOPIC, NAME and VALUE as named above (`{}` "
        "reports every difference)",
        config.brokers, TopicsCommand(config, "check"));
  }
  if (any({Kind::kPartitions, Kind::kReplicationFactor})) {
    advice +=
        "; `catchall topics create` does not change existing topics: a partition count is chosen "
        "once (docs/operations.md, \"A partition is added\"), a replication factor is changed "
        "with kafka-reassign-partitions.sh";
  }
  return Status(checked.code(), advice);
}

// The topics a role needs, checked at start with a message that says what
// to do.
Status CheckRoleTopics(const Config& config, const std::vector<std::string>& names) {
  std::vector<TopicSpec> specs;
  for (const TopicSpec& t : ProductTopics(config, 0)) {
    for (const auto& n : names) {
      // Any partition count and replication factor: a role only needs
      // the topic to exist (and reads its partition count from it). But
      // the cleanup policy, where one is asked for: a changelog that Kafka
      // deletes loses the counts it is the durable home of, and compacted
      // ids keep only each partition's last batch. And the ids' retention:
      // shorter than the id window, a restore waited for good for a
      // checkpoint Kafka had deleted, and a retry after it counted twice
      // (a probe). CheckTopics picks, of the spec's configs, those it
      // checks; the others (segment.ms, ...) are for creating the topic.
      if (t.name != n) continue;
      specs.push_back({t.name, 0, 0, t.configs});
    }
  }
  std::string report;
  std::vector<TopicProblem> problems;
  Status s = CheckTopicsUntil(
      KafkaOptionsFor(config, "check"), specs, names, std::chrono::steady_clock::now() + kTopicWait,
      &report,
      [](const Status& problem) {
        spdlog::info(
            "{}; looking again for up to {} s (a topic just created reaches every broker "
            "a moment later)",
            problem.message(), kTopicWait.count());
      },
      &problems);
  return WithTopicAdvice(config, s, problems);
}

// An aggregator writes partition p's state and checkpoints to partition p
// of the changelog and of the ids log, so each needs at least the events
// topic's partitions: with fewer, every transaction failed ("Unknown
// partition") and nothing was counted, while the role looked healthy. (More
// work, unused; `catchall topics check` reports them.) Returns the events
// topic's partition count: records of both logs are routed by it.
Result<int32_t> CheckLogsHoldEveryPartition(const Config& config) {
  KafkaOptions kafka = KafkaOptionsFor(config, "check");
  // A topic created a moment ago may be unknown to the broker asked yet.
  auto count = [&](const std::string& topic) {
    return TopicPartitionCount(kafka, topic, kTopicWait);
  };
  Result<int32_t> events = count(config.events_topic);
  if (!events.ok()) return events.status();
  for (const std::string& topic : {config.status_topic, config.ids_topic}) {
    Result<int32_t> n = count(topic);
    if (!n.ok()) return n.status();
    if (*n < *events) {
      return Status::FailedPrecondition(fmt::format(
          "topic {} has {} partitions and {} has {}: the changelog and the ids log need at "
          "least the events topic's partitions (`{}` reports every difference)",
          topic, *n, config.events_topic, *events, TopicsCommand(config, "check")));
    }
  }
  return *events;
}

// An ingest node routes by the events topic's partition count when it
// starts (`routed`, its appender's); aggregators route by the count the
// topics were made with, which the changelog keeps (partitions are added to
// the events topic alone). One started after a partition was added took the
// new count: it said ready and answered 204, and the aggregators
// dead-lettered every event it took (a black-box probe). Running nodes
// refuse events then (the appender's topic check); a new one refuses to
// start.
Status CheckRoutedLikeTheChangelog(const Config& config, int32_t routed) {
  // Ingest needs no right on the changelog (ACLs may keep it to the
  // aggregators), and a changelog not created yet or a broker slow to
  // answer is no reason to stay down: only a count it could read decides
  // (a review).
  Result<int32_t> changelog =
      TopicPartitionCount(KafkaOptionsFor(config, "check"), config.status_topic, {});
  if (!changelog.ok()) {
    spdlog::warn(
        "ingest: the changelog {} could not be read ({}); the events topic's partition "
        "count is not checked against it",
        config.status_topic, changelog.status().message());
    return Status::Ok();
  }
  if (*changelog >= routed) return Status::Ok();
  return Status::FailedPrecondition(fmt::format(
      "the events topic {} has {} partitions and its changelog {} has {}: partitions were added "
      "to the events topic, and the aggregators would dead-letter the events this node routes "
      "by the new count (docs/operations.md, \"A partition is added\"); or kafka.status_topic "
      "does not name the changelog of this events topic",
      config.events_topic, routed, config.status_topic, *changelog));
}

}  // namespace

IngestNode::IngestNode(Config config) : Node(std::move(config), "ingest") {}
IngestNode::~IngestNode() { Shutdown(); }

Status IngestNode::Open() {
  const Config& c = config();
  CATCHALL_RETURN_IF_ERROR(RequireBrokers(c, "ingest"));
  CATCHALL_RETURN_IF_ERROR(CheckRoleTopics(c, {c.events_topic}));
  CATCHALL_RETURN_IF_ERROR(
      CreateKafkaAppender(KafkaOptionsFor(c, "ingest"), c.events_topic, metrics(), &appender_));
  CATCHALL_RETURN_IF_ERROR(CheckRoutedLikeTheChangelog(c, appender_->partition_count()));
  ingest_ = std::make_unique<IngestService>(
      IngestOptions{c.max_batch_items, 1000, c.offload_batch_bytes}, appender_.get(), metrics());
  router()->Mount(
      "/events",
      [this](const HttpRequest& r, const Responder& respond) { ingest_->Handle(r, respond); },
      IngestService::ServesPath, IngestService::kMethods);
  return Status::Ok();
}

Status IngestNode::Readiness() const { return appender_->Health(); }

std::string IngestNode::Describe() const {
  return fmt::format("producing to {} at {}", config().events_topic, config().brokers);
}

void IngestNode::Close() {
  if (ingest_) ingest_->Stop();  // batches still on its thread append first
  if (appender_) {
    Status s = appender_->Flush(std::chrono::milliseconds(config().shutdown_timeout_ms));
    if (!s.ok()) spdlog::warn("flushing the producer: {}", s.ToString());
    appender_.reset();
  }
}

AggregatorNode::AggregatorNode(Config config, Env* env)
    : Node(std::move(config), "aggregate"), env_(env) {}
AggregatorNode::~AggregatorNode() { Shutdown(); }

Status AggregatorNode::Open() {
  const Config& c = config();
  CATCHALL_RETURN_IF_ERROR(RequireBrokers(c, "aggregate"));
  CATCHALL_RETURN_IF_ERROR(
      CheckRoleTopics(c, {c.events_topic, c.status_topic, c.ids_topic, c.dead_letter_topic}));
  Result<int32_t> partitions = CheckLogsHoldEveryPartition(c);
  if (!partitions.ok()) return partitions.status();
  // The state is a cache of the changelog: what a crash drops from it, a
  // restore reads back (StateRestorer), so it needs no write-ahead log.
  CATCHALL_RETURN_IF_ERROR(
      OpenStore(env_, c, CounterStore::Columns(std::chrono::seconds(c.idempotency_window_s)),
                &store_, c.state_write_ahead_log));
  CATCHALL_RETURN_IF_ERROR(BindStoreToTopics(
      store_.get(), CounterStore::kOffsetsColumn, c,
      fmt::format("events={} changelog={} ids={}", c.events_topic, c.status_topic, c.ids_topic)));
  disk_ = WatchDisk(env_, c, metrics());
  ExportStoreMetrics(store_.get(), metrics());
  counters_ = std::make_unique<CounterStore>(store_.get(), c.events_topic);
  AggregationOptions options;
  options.events_topic = c.events_topic;
  options.dead_letter_topic = c.dead_letter_topic;
  options.status_topic = c.status_topic;
  options.ids_topic = c.ids_topic;
  options.ids_log_batches = c.ids_log_batches;
  options.commit_interval = std::chrono::milliseconds(c.commit_interval_ms);
  options.commit_max_records = c.commit_max_events;
  options.id_window = std::chrono::seconds(c.idempotency_window_s);
  options.catchall_threshold = c.catchall_threshold;
  options.may_consume = [this] { return disk_->Check(); };
  KafkaGroupOptions group;
  group.kafka = KafkaOptionsFor(c, "aggregate");
  group.group_id = c.group_id;
  group.topic = c.events_topic;
  group.max_partition_fetch_kb = c.max_partition_fetch_kb;
  std::string base_id = "catchall-aggregator-" + InstanceId(c);
  if (c.standby_replicas > 0) {
    // Its log only opens readers: the id is never used for transactions.
    group.transactional_id = base_id + "-standby";
    CATCHALL_RETURN_IF_ERROR(CreateKafkaGroupLog(group, &standby_log_));
    StandbyOptions standby;
    standby.status_topic = c.status_topic;
    standby.ids_topic = c.ids_topic;
    // The events topic's: the changelog and the ids log may have more
    // partitions (unused), and records are routed by the events topic's
    // count, which the standby's partition checks must use (a review).
    standby.partitions = *partitions;
    standby.may_consume = options.may_consume;
    standby_ =
        std::make_unique<StandbyReplicas>(standby, standby_log_.get(), counters_.get(), metrics());
    standby_->Start();
  }
  // The workers share the store: one takes a partition only once another
  // that was evicted unawares has let it go. As long as a restore may stall.
  owners_ = std::make_unique<PartitionOwners>(standby_.get(), std::chrono::seconds(60), metrics());
  options.ownership = owners_.get();
  for (int i = 0; i < c.aggregate_threads; ++i) {
    Worker& w = workers_.emplace_back();
    // Worker 0 keeps the plain id, so that one worker per process (the
    // default) fences exactly the transactions it fenced before.
    group.transactional_id = i == 0 ? base_id : fmt::format("{}-{}", base_id, i);
    CATCHALL_RETURN_IF_ERROR(CreateKafkaGroupLog(group, &w.log));
    // The workers share one store, so one of them reports its size: the
    // other workers' gauges stay 0 and a sum over workers is right.
    options.report_store_size = i == 0;
    options.worker = i;
    w.loop = std::make_unique<AggregationLoop>(options, w.log.get(), counters_.get(), metrics());
    CATCHALL_RETURN_IF_ERROR(w.loop->Start());
  }
  return Status::Ok();
}

Status AggregatorNode::Readiness() const {
  CATCHALL_RETURN_IF_ERROR(store_->WriteHealth());
  CATCHALL_RETURN_IF_ERROR(store_->ReadHealth());
  // Errors first (no broker, low disk, aborted commits): a member that lost
  // its partitions in a broker outage said "joining the consumer group"
  // instead of why (a review, thirteenth session).
  for (const Worker& w : workers_) CATCHALL_RETURN_IF_ERROR(w.loop->Health());
  for (const Worker& w : workers_) {
    if (!w.loop->ready()) {
      return Status::Unavailable("joining the consumer group and restoring partitions");
    }
  }
  return Status::Ok();
}

std::string AggregatorNode::Describe() const {
  return fmt::format(
      "group {}, {} worker(s), transactional id catchall-aggregator-{}, warm standbys {}",
      config().group_id, workers_.size(), InstanceId(config()), standby_ ? "on" : "off");
}

void AggregatorNode::Close() {
  // Ask every worker to stop before joining any, so that they leave the
  // group together instead of passing partitions to each other.
  for (Worker& w : workers_) {
    if (w.loop) w.loop->RequestStop();
  }
  if (owners_) owners_->Stop();  // a worker waiting for another stops waiting
  // The standby stops first: the partitions the workers hand over while
  // leaving need no warm copy now.
  if (standby_) standby_->Stop();
  for (Worker& w : workers_) {
    if (w.loop) w.loop->Stop();
  }
  workers_.clear();
  owners_.reset();
  standby_.reset();
  standby_log_.reset();
  if (store_) FlushStoreOnShutdown(store_.get(), disk_.get(), config().write_buffer_mb << 20);
  counters_.reset();
  disk_.reset();
  store_.reset();
}

QueryNode::QueryNode(Config config, Env* env) : Node(std::move(config), "query"), env_(env) {}
QueryNode::~QueryNode() { Shutdown(); }

Status QueryNode::Open() {
  const Config& c = config();
  CATCHALL_RETURN_IF_ERROR(RequireBrokers(c, "query"));
  CATCHALL_RETURN_IF_ERROR(CheckRoleTopics(c, {c.status_topic}));
  CATCHALL_RETURN_IF_ERROR(OpenStore(env_, c, StatusMaterializer::Columns(), &store_));
  CATCHALL_RETURN_IF_ERROR(BindStoreToTopics(store_.get(), StatusMaterializer::kOffsetsColumn, c,
                                             fmt::format("changelog={}", c.status_topic)));
  disk_ = WatchDisk(env_, c, metrics());
  ExportStoreMetrics(store_.get(), metrics());
  std::unique_ptr<LogReader> reader;
  CATCHALL_RETURN_IF_ERROR(CreateKafkaReader(KafkaOptionsFor(c, "query"), c.status_topic, &reader,
                                             /*watch_brokers=*/true));
  MaterializerOptions materializer;
  materializer.checkpoint_domains = c.checkpoint_domains;
  materializer.checkpoint_interval = std::chrono::seconds(c.checkpoint_interval_s);
  materializer.checkpoint_low_priority = c.compaction_low_priority;
  materializer_ = std::make_unique<StatusMaterializer>(
      std::move(reader), c.status_topic, store_.get(), metrics(), [this] { return disk_->Check(); },
      materializer);
  CATCHALL_RETURN_IF_ERROR(materializer_->Start());
  query_ = std::make_unique<QueryService>(QueryOptions{c.catchall_threshold, c.max_lookup_domains},
                                          materializer_.get(), metrics());
  router()->Mount(
      "/domains",
      [this](const HttpRequest& r, const Responder& respond) { query_->Handle(r, respond); },
      QueryService::ServesPath, QueryService::kMethods);
  return Status::Ok();
}

Status QueryNode::Readiness() const {
  CATCHALL_RETURN_IF_ERROR(store_->WriteHealth());
  CATCHALL_RETURN_IF_ERROR(store_->ReadHealth());
  CATCHALL_RETURN_IF_ERROR(materializer_->Health());
  if (!materializer_->ready()) return Status::Unavailable("catching up with the changelog");
  return Status::Ok();
}

std::string QueryNode::Describe() const {
  return fmt::format("materializing {}", config().status_topic);
}

void QueryNode::Close() {
  if (materializer_) {
    materializer_->Stop();
    materializer_.reset();
  }
  if (store_) FlushStoreOnShutdown(store_.get(), disk_.get(), config().write_buffer_mb << 20);
  disk_.reset();
  store_.reset();
}

Status RunTopicsCommand(const Config& config, bool create, int32_t expected_partitions,
                        int32_t expected_replication) {
  CATCHALL_RETURN_IF_ERROR(RequireBrokers(config, "topics"));
  KafkaOptions kafka = KafkaOptionsFor(config, "admin");
  std::string report;
  int32_t partitions = expected_partitions > 0 ? expected_partitions : config.kafka_partitions;
  // The events topic, where it exists, says how many partitions the others
  // must have (the changelog and ids must have the events'): `create` with
  // --partitions must match it, and without --partitions `create` adds
  // what is missing with its count and `check` compares against it. For
  // `create`, a changelog or ids topic left without its events topic is
  // the reference as well: an events topic made with another count would
  // leave the set mismatched, and the aggregators refusing to start.
  if (create || expected_partitions <= 0) {
    std::vector<std::string> references = {config.events_topic};
    if (create) references.insert(references.end(), {config.status_topic, config.ids_topic});
    std::string reference;
    Result<int32_t> count = Status::NotFound("no topic of the set exists");
    for (const std::string& topic : references) {
      count = TopicPartitionCount(kafka, topic);
      if (count.ok()) {
        reference = topic;
        break;
      }
      if (count.status().code() != Code::kNotFound) return count.status();
    }
    if (count.ok() && expected_partitions > 0 && *count != expected_partitions) {
      // Create nothing, and say what to run.
      return Status::FailedPrecondition(fmt::format(
          "topic {} exists with {} partitions, not the {} asked for; nothing was created (a "
          "topic's partitions route its domains and must match the events'). Run `catchall "
          "topics create` without --partitions to create the missing topics with {}",
          reference, *count, expected_partitions, *count));
    }
    if (count.ok() && expected_partitions <= 0) {
      partitions = *count;
      if (create) {
        report +=
            fmt::format("using the {} partitions of the existing {}\n", partitions, reference);
      }
    } else if (!count.ok() && !create) {
      partitions = 0;  // no reference: check the rest for everything else
      report += fmt::format("{} is missing: the other topics' partition counts are not compared\n",
                            config.events_topic);
    }
  }
  std::vector<TopicSpec> topics = ProductTopics(config, partitions);
  if (!create) {
    for (TopicSpec& t : topics) t.replication_factor = expected_replication;
  }
  std::vector<TopicProblem> problems;
  Status s = create ? CreateTopics(kafka, topics, &report, &problems)
                    : CheckTopics(kafka, topics, &report, &problems);
  std::cout << report;
  return WithTopicAdvice(config, s, problems);
}

}  // namespace catchall
