// The group member's consumer (a LogConsumer) and the reader (a LogReader).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <set>

#include "engine/kafka.h"
#include "kafka_common.h"

namespace catchall {

namespace {

// Fetch batching of every consumer and reader (see CreateGroupConsumer).
constexpr const char* kFetchMinBytes = "65536";
constexpr const char* kFetchWaitMaxMs = "20";
// A paused consumer's lag is a round trip per partition: asked at most this
// often, waiting at most this long for each partition and for all of them
// (the rest keep their last-known ends), so that the loop calling it keeps
// polling (rebalances, the resume, a stop) even when a leader is away.
constexpr auto kPausedLagInterval = std::chrono::seconds(2);
constexpr int kPausedLagTimeoutMs = 200;
constexpr auto kPausedLagBudget = std::chrono::seconds(1);

std::vector<int32_t> PartitionsOf(const rd_kafka_topic_partition_list_t* list) {
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) out.push_back(list->elems[i].partition);
  return out;
}

// The error callback of a client whose opaque is a T with a `reachability`.
template <typename T>
void OnConsumerError(rd_kafka_t* /*rk*/, int err, const char* reason, void* opaque) {
  static_cast<T*>(opaque)->reachability->OnError(err, reason);
}

}  // namespace

class KafkaConsumer final : public LogConsumer {
 public:
  struct Impl;
  explicit KafkaConsumer(std::unique_ptr<Impl> impl);
  ~KafkaConsumer() override;
  int32_t partition_count() const override;
  Status Poll(std::chrono::milliseconds timeout, size_t max, RecordBatch* out) override;
  Status Committed(const std::vector<int32_t>& partitions,
                   std::map<int32_t, int64_t>* out) override;
  Status Seek(int32_t partition, int64_t offset) override;
  Status Pause(bool paused) override;
  int64_t Lag(const std::map<int32_t, int64_t>& positions) override;
  void Close() override;

 private:
  std::unique_ptr<Impl> impl_;
};

struct KafkaConsumer::Impl {
  rd_kafka_t* rk = nullptr;
  int32_t partitions = 0;
  rd_kafka_queue_t* queue = nullptr;
  std::string topic;
  int timeout_ms = 5000;
  RebalanceListener* listener = nullptr;
  std::set<int32_t> owned;
  bool paused = false;
  std::vector<rd_kafka_message_t*> buffer;
  // Lag while paused: asked of the brokers at most every kPausedLagInterval.
  std::chrono::steady_clock::time_point paused_lag_at;
  int64_t paused_lag = 0;
  // Shared with the member's committer (KafkaGroupLog).
  std::shared_ptr<kafka_internal::BrokerReachability> reachability;

  bool closed = false;
  // Whether the group has ever handed this member an assignment (an empty
  // one counts): see ~Impl.
  bool assigned_once = false;

  ~Impl() {
    if (queue) rd_kafka_queue_destroy(queue);
    if (!rk) return;
    if (closed && !assigned_once) {
      // librdkafka before 2.3.0 (Debian 12 has 2.0.2) aborts in
      // rd_kafka_destroy when a cooperative-sticky member joined its group
      // but never received an assignment (its assignor state is still
      // null: confluentinc/librdkafka#4312). Measured: SIGTERM to an
      // aggregator with two workers while the second waited for its first
      // assignment exited with SIGABRT in 4 runs of 6. Such a member has
      // left the group (closed) and owns nothing, so its handle is left to
      // the process's exit instead of destroyed.
      spdlog::debug("kafka consumer closed before its first assignment: not destroyed");
      return;
    }
    // Not closed: abandoned like a crashed member's (no rebalance callback,
    // nothing committed; the group moves the partitions after the session
    // timeout).
    rd_kafka_destroy_flags(rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }

  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* parts, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    bool cooperative = std::string(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
    std::vector<int32_t> partitions = PartitionsOf(parts);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      self->assigned_once = true;
      std::map<int32_t, int64_t> start = self->listener->OnAssigned(partitions);
      for (int i = 0; i < parts->cnt; ++i) {
        auto it = start.find(parts->elems[i].partition);
        parts->elems[i].offset = it == start.end() ? RD_KAFKA_OFFSET_INVALID : it->second;
      }
      rd_kafka_error_t* e = nullptr;
      if (cooperative) {
        e = rd_kafka_incremental_assign(rk, parts);
      } else {
        rd_kafka_resp_err_t r = rd_kafka_assign(rk, parts);
        if (r) spdlog::error("kafka assign failed: {}", rd_kafka_err2str(r));
      }
      if (e) {
        spdlog::error("kafka incremental assign failed: {}", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
      self->owned.insert(partitions.begin(), partitions.end());
      // Partitions assigned while the member is paused start paused.
      if (self->paused) rd_kafka_pause_partitions(rk, parts);
    } else {
      if (rd_kafka_assignment_lost(rk)) {
        self->listener->OnLost(partitions);
      } else {
        self->listener->OnRevoked(partitions);
      }
      if (cooperative) {
        rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts);
        if (e) rd_kafka_error_destroy(e);
      } else {
        rd_kafka_assign(rk, nullptr);
      }
      for (int32_t p : partitions) self->owned.erase(p);
    }
  }
};

KafkaConsumer::KafkaConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaConsumer::~KafkaConsumer() = default;

std::map<std::string, std::string> kafka_internal::GroupConsumerProperties(
    const KafkaGroupOptions& options) {
  return {
      {"group.id", options.group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"isolation.level", "read_committed"},
      {"partition.assignment.strategy", "cooperative-sticky"},
      // See KafkaGroupOptions::queued_max_kb. 10,000,000 is the largest
      // count librdkafka takes.
      {"queued.min.messages", "10000000"},
      {"queued.max.messages.kbytes", std::to_string(options.queued_max_kb)},
      {"max.partition.fetch.bytes", std::to_string(int64_t{options.max_partition_fetch_kb} * 1024)},
      {"fetch.max.bytes", std::to_string(std::max<int64_t>(
                              int64_t{options.max_partition_fetch_kb} * 1024 * 5, 16 << 20))},
      // The broker holds a fetch until 64 KB are there or 20 ms passed,
      // instead of answering as soon as one record is (librdkafka's default,
      // fetch.min.bytes=1): measured at 12,000 single PUTs/s over 10M
      // domains, the aggregator's CPU per event fell from 14.5-15.1 to
      // 9.2-9.4 us and the broker's from 38-69 to 31-41 us, with freshness
      // P95 unchanged (191-209 against 166-297 ms; docs/benchmarks.md).
      // kafka.consumer.fetch.min.bytes and fetch.wait.max.ms tune it.
      {"fetch.min.bytes", kFetchMinBytes},
      {"fetch.wait.max.ms", kFetchWaitMaxMs},
      {"session.timeout.ms", "10000"},
      {"heartbeat.interval.ms", "1000"},
      {"max.poll.interval.ms", "300000"},
      // A partition added to the events topic reaches the group (is
      // assigned, its misrouted records dead-lettered) at the next metadata
      // refresh: librdkafka's default is every 5 minutes, and a probe saw
      // nothing happen for 90 s (docs/operations.md, "A partition is added").
      {"topic.metadata.refresh.interval.ms", "30000"},
  };
}

Status kafka_internal::CreateGroupConsumer(const KafkaGroupOptions& options,
                                           RebalanceListener* listener,
                                           std::shared_ptr<BrokerReachability> reachability,
                                           std::unique_ptr<LogConsumer>* consumer,
                                           rd_kafka_t** handle) {
  auto impl = std::make_unique<KafkaConsumer::Impl>();
  impl->topic = options.topic;
  impl->listener = listener;
  impl->reachability = std::move(reachability);
  impl->timeout_ms = static_cast<int>(options.kafka.timeout.count());
  std::map<std::string, std::string> role = kafka_internal::GroupConsumerProperties(options);
  rd_kafka_conf_t* conf = nullptr;
  CATCHALL_RETURN_IF_ERROR(
      kafka_internal::MakeConf(options.kafka, kafka_internal::ClientKind::kConsumer, role, &conf));
  rd_kafka_conf_set_opaque(conf, impl.get());
  rd_kafka_conf_set_rebalance_cb(conf, &KafkaConsumer::Impl::OnRebalance);
  rd_kafka_conf_set_error_cb(conf, &OnConsumerError<KafkaConsumer::Impl>);
  char err[512];
  impl->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (!impl->rk) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(fmt::format("cannot create Kafka consumer: {}", err));
  }
  rd_kafka_poll_set_consumer(impl->rk);
  impl->queue = rd_kafka_queue_get_consumer(impl->rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, options.topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t r = rd_kafka_subscribe(impl->rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (r) return kafka_internal::FromError(r, fmt::format("subscribing to {}", options.topic));
  Result<int32_t> partitions =
      kafka_internal::PartitionCountOnceKnown(impl->rk, impl->topic, impl->timeout_ms);
  if (!partitions.ok()) {
    return Status(partitions.status().code(),
                  fmt::format("{} (run `catchall topics create`)", partitions.status().message()));
  }
  impl->partitions = *partitions;
  *handle = impl->rk;
  *consumer = std::make_unique<KafkaConsumer>(std::move(impl));
  return Status::Ok();
}

int32_t KafkaConsumer::partition_count() const { return impl_->partitions; }

Status KafkaConsumer::Poll(std::chrono::milliseconds timeout, size_t max, RecordBatch* out) {
  // One message at a time with rd_kafka_consumer_poll: librdkafka 2.0's
  // batch API (rd_kafka_consume_batch_queue) can skip offsets of retained
  // partitions when a rebalance or seek happens during the call (a known
  // issue fixed in librdkafka 2.1.0), which would lose events.
  impl_->buffer.clear();
  int wait_ms = static_cast<int>(timeout.count());
  while (impl_->buffer.size() < max) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(impl_->rk, wait_ms);
    if (!m) break;
    impl_->buffer.push_back(m);
    wait_ms = 0;  // only the first call waits
  }
  impl_->reachability->AfterPoll(
      impl_->rk, kafka_internal::AnyFromBroker(impl_->buffer.data(),
                                               static_cast<ssize_t>(impl_->buffer.size())));
  // A rebalance served during the poll may have revoked partitions whose
  // messages were already returned; those are dropped.
  return kafka_internal::CollectMessages(impl_->buffer.data(),
                                         static_cast<ssize_t>(impl_->buffer.size()), out,
                                         [this](int32_t p) { return impl_->owned.count(p) > 0; });
}

Status KafkaConsumer::Committed(const std::vector<int32_t>& partitions,
                                std::map<int32_t, int64_t>* out) {
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
  for (int32_t p : partitions) rd_kafka_topic_partition_list_add(list, impl_->topic.c_str(), p);
  rd_kafka_resp_err_t err = rd_kafka_committed(impl_->rk, list, 4 * impl_->timeout_ms);
  // A timeout here is seldom Kafka being away: the broker holds committed
  // offsets back while a dead member's transaction on them is open, until
  // transaction.timeout.ms aborts it. Said so: "Local: Timed out" alone
  // read as an outage (a probe).
  Status s = kafka_internal::FromError(
      err, err == RD_KAFKA_RESP_ERR__TIMED_OUT
               ? "reading committed offsets (a member that died mid-transaction holds them back "
                 "until its transaction.timeout.ms passes: docs/operations.md, \"An aggregator "
                 "dies\")"
               : "reading committed offsets");
  for (int i = 0; s.ok() && i < list->cnt; ++i) {
    const auto& e = list->elems[i];
    if (e.err) {
      s = kafka_internal::FromError(e.err, "reading a committed offset");
      break;
    }
    (*out)[e.partition] = e.offset < 0 ? kOffsetBeginning : e.offset;
  }
  rd_kafka_topic_partition_list_destroy(list);
  return s;
}

Status KafkaConsumer::Seek(int32_t partition, int64_t offset) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, impl_->topic.c_str(), partition)->offset = offset;
  rd_kafka_error_t* e = rd_kafka_seek_partitions(impl_->rk, list, impl_->timeout_ms);
  Status s;
  if (e) {
    s = Status::IoError(
        fmt::format("seeking partition {}: {}", partition, rd_kafka_error_string(e)));
    rd_kafka_error_destroy(e);
  }
  for (int i = 0; s.ok() && i < list->cnt; ++i) {
    if (list->elems[i].err) s = kafka_internal::FromError(list->elems[i].err, "seeking");
  }
  rd_kafka_topic_partition_list_destroy(list);
  return s;
}

int64_t KafkaConsumer::Lag(const std::map<int32_t, int64_t>& positions) {
  // The ends librdkafka caches come with fetches, and a paused consumer
  // fetches nothing: its lag read 0 while events piled up (a low-disk
  // pause). Paused, it asks the partitions' leaders instead.
  const auto now = std::chrono::steady_clock::now();
  const bool ask = impl_->paused && now - impl_->paused_lag_at >= kPausedLagInterval;
  if (impl_->paused && !ask) return impl_->paused_lag;
  int64_t lag = 0;
  for (const auto& [p, position] : positions) {
    int64_t low = 0;
    int64_t high = 0;
    rd_kafka_resp_err_t err =
        ask && std::chrono::steady_clock::now() - now < kPausedLagBudget
            ? rd_kafka_query_watermark_offsets(impl_->rk, impl_->topic.c_str(), p, &low, &high,
                                               kPausedLagTimeoutMs)
            : rd_kafka_get_watermark_offsets(impl_->rk, impl_->topic.c_str(), p, &low, &high);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    // Nothing committed yet: everything from the log's start is behind.
    int64_t from = position < 0 ? low : position;
    if (high > from) lag += high - from;
  }
  if (ask) {
    impl_->paused_lag_at = now;
    impl_->paused_lag = lag;
  }
  return lag;
}

Status KafkaConsumer::Pause(bool paused) {
  impl_->paused = paused;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_assignment(impl_->rk, &assignment);
  if (err) return kafka_internal::FromError(err, "reading the assignment");
  err = paused ? rd_kafka_pause_partitions(impl_->rk, assignment)
               : rd_kafka_resume_partitions(impl_->rk, assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  return kafka_internal::FromError(err, paused ? "pausing consumption" : "resuming consumption");
}

void KafkaConsumer::Close() {
  if (!impl_ || !impl_->rk || !impl_->queue) return;
  rd_kafka_consumer_close(impl_->rk);
  rd_kafka_queue_destroy(impl_->queue);
  impl_->queue = nullptr;
  impl_->closed = true;
}

namespace {

// A LogReader: partitions assigned by hand, no group, never commits.
class KafkaReader final : public LogReader {
 public:
  ~KafkaReader() override {
    if (queue_) rd_kafka_queue_destroy(queue_);
    if (rk_) {
      rd_kafka_consumer_close(rk_);
      rd_kafka_destroy(rk_);
    }
  }

  Status Init(const KafkaOptions& options, const std::string& topic) {
    topic_ = topic;
    timeout_ms_ = static_cast<int>(options.timeout.count());
    // A group id is required by the consumer API, but this reader never
    // joins the group (it assigns partitions itself) and never commits.
    std::map<std::string, std::string> role = {
        {"group.id", "catchall-reader-unused"}, {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},  {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},      {"isolation.level", "read_committed"},
        {"queued.min.messages", "1000000"},     {"fetch.max.bytes", "52428800"},
        {"fetch.min.bytes", kFetchMinBytes},    {"fetch.wait.max.ms", kFetchWaitMaxMs},
    };
    rd_kafka_conf_t* conf = nullptr;
    CATCHALL_RETURN_IF_ERROR(
        kafka_internal::MakeConf(options, kafka_internal::ClientKind::kConsumer, role, &conf));
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_error_cb(conf, &OnConsumerError<KafkaReader>);
    char err[512];
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument(fmt::format("cannot create Kafka reader: {}", err));
    }
    rd_kafka_poll_set_consumer(rk_);
    queue_ = rd_kafka_queue_get_consumer(rk_);
    Result<int32_t> partitions = kafka_internal::PartitionCountOnceKnown(rk_, topic_, timeout_ms_);
    if (!partitions.ok()) {
      return Status(partitions.status().code(), fmt::format("{} (run `catchall topics create`)",
                                                            partitions.status().message()));
    }
    partitions_ = *partitions;
    return Status::Ok();
  }

  int32_t partition_count() const override { return partitions_; }

  Status Seek(int32_t partition, int64_t offset) override {
    if (partition < 0 || partition >= partitions_) {
      return Status::InvalidArgument(fmt::format("no partition {} of topic {}", partition, topic_));
    }
    int64_t start = offset < 0 ? RD_KAFKA_OFFSET_BEGINNING : offset;
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic_.c_str(), partition)->offset = start;
    Status s;
    if (assigned_.count(partition)) {
      rd_kafka_error_t* e = rd_kafka_seek_partitions(rk_, list, timeout_ms_);
      if (e) {
        s = Status::IoError(
            fmt::format("seeking partition {}: {}", partition, rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_error_t* e = rd_kafka_incremental_assign(rk_, list);
      if (e) {
        s = Status::IoError(fmt::format("assigning partition {} of {}: {}", partition, topic_,
                                        rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
      } else {
        assigned_.insert(partition);
      }
    }
    rd_kafka_topic_partition_list_destroy(list);
    return s;
  }

  Status Unassign(int32_t partition) override {
    if (!assigned_.count(partition)) return Status::Ok();
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic_.c_str(), partition);
    rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk_, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) {
      Status s = Status::IoError(fmt::format("unassigning partition {} of {}: {}", partition,
                                             topic_, rd_kafka_error_string(e)));
      rd_kafka_error_destroy(e);
      return s;
    }
    assigned_.erase(partition);
    return Status::Ok();
  }

  Status Poll(std::chrono::milliseconds timeout, size_t max, RecordBatch* out) override {
    // rd_kafka_consume_batch_queue returns only when it has `max` messages
    // or the timeout expired, which held every changelog record back up to
    // the whole timeout (measured: +50 ms freshness on average). Wait for
    // the first message only, then take what is already queued.
    if (max == 0) return Status::Ok();
    buffer_.resize(max);
    rd_kafka_message_t* first = rd_kafka_consume_queue(queue_, static_cast<int>(timeout.count()));
    if (!first) {
      reachability->AfterPoll(rk_, false);
      return Status::Ok();
    }
    buffer_[0] = first;
    ssize_t n = 1;
    if (max > 1) {
      ssize_t more = rd_kafka_consume_batch_queue(queue_, 0, buffer_.data() + 1, max - 1);
      if (more > 0) n += more;
    }
    reachability->AfterPoll(rk_, kafka_internal::AnyFromBroker(buffer_.data(), n));
    return kafka_internal::CollectMessages(buffer_.data(), n, out, [](int32_t) { return true; });
  }

  Result<int64_t> EndOffset(int32_t partition) override {
    int64_t low = 0;
    int64_t high = 0;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(rk_, topic_.c_str(), partition, &low, &high, timeout_ms_);
    if (err) return kafka_internal::FromError(err, "reading the end offset");
    return high;
  }

  Status Health() const override { return reachability->Health(); }

  // Public for the error callback; set before Init.
  std::shared_ptr<kafka_internal::BrokerReachability> reachability;

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;
  std::string topic_;
  int timeout_ms_ = 5000;
  int32_t partitions_ = 0;
  std::set<int32_t> assigned_;
  std::vector<rd_kafka_message_t*> buffer_;
};

}  // namespace

Status CreateKafkaReader(const KafkaOptions& options, const std::string& topic,
                         std::unique_ptr<LogReader>* reader, bool watch_brokers) {
  auto r = std::make_unique<KafkaReader>();
  r->reachability = std::make_shared<kafka_internal::BrokerReachability>("kafka reader of " + topic,
                                                                         watch_brokers);
  CATCHALL_RETURN_IF_ERROR(r->Init(options, topic));
  *reader = std::move(r);
  return Status::Ok();
}

}  // namespace catchall
