// KafkaConsumer and KafkaPartitionReader.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

#include "engine/kafka.h"
#include "kafka_common.h"

namespace catchall {

namespace {

std::vector<int32_t> PartitionsOf(const rd_kafka_topic_partition_list_t* list) {
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) out.push_back(list->elems[i].partition);
  return out;
}

void OnConsumerError(rd_kafka_t* /*rk*/, int err, const char* reason, void* /*opaque*/) {
  spdlog::warn("kafka consumer: {} ({})", reason,
               rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
}

}  // namespace

struct KafkaConsumer::Impl {
  rd_kafka_t* rk = nullptr;
  rd_kafka_queue_t* queue = nullptr;
  std::string topic;
  int timeout_ms = 5000;
  RebalanceListener* listener = nullptr;
  std::set<int32_t> owned;
  std::vector<rd_kafka_message_t*> buffer;

  ~Impl() {
    if (queue) rd_kafka_queue_destroy(queue);
    if (rk) rd_kafka_destroy(rk);
  }

  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* parts, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    bool cooperative = std::string(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
    std::vector<int32_t> partitions = PartitionsOf(parts);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
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
KafkaConsumer::~KafkaConsumer() { Close(); }

Status KafkaConsumer::Create(const KafkaConsumerOptions& options, RebalanceListener* listener,
                             std::unique_ptr<KafkaConsumer>* consumer) {
  auto impl = std::make_unique<Impl>();
  impl->topic = options.topic;
  impl->listener = listener;
  impl->timeout_ms = static_cast<int>(options.kafka.timeout.count());
  std::map<std::string, std::string> role = {
      {"group.id", options.group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"isolation.level", "read_committed"},
      {"partition.assignment.strategy", "cooperative-sticky"},
      {"queued.min.messages", std::to_string(options.queued_min_messages)},
      // Bytes of prefetched messages per partition. librdkafka's default
      // (64 MB per partition) let a 12-partition aggregator reach ~1.8 GB
      // RSS while draining a backlog (each small message also costs a few
      // hundred bytes of bookkeeping).
      {"queued.max.messages.kbytes", "16384"},
      {"max.partition.fetch.bytes", std::to_string(options.max_partition_fetch_kb * 1024)},
      {"fetch.max.bytes",
       std::to_string(std::max(options.max_partition_fetch_kb * 1024 * 5, 16 << 20))},
      {"session.timeout.ms", "10000"},
      {"heartbeat.interval.ms", "1000"},
      {"max.poll.interval.ms", "300000"},
  };
  rd_kafka_conf_t* conf = nullptr;
  CATCHALL_RETURN_IF_ERROR(kafka_internal::MakeConf(options.kafka, role, &conf));
  rd_kafka_conf_set_opaque(conf, impl.get());
  rd_kafka_conf_set_rebalance_cb(conf, &Impl::OnRebalance);
  rd_kafka_conf_set_error_cb(conf, &OnConsumerError);
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
  consumer->reset(new KafkaConsumer(std::move(impl)));
  return Status::Ok();
}

Status KafkaConsumer::Poll(std::chrono::milliseconds timeout, size_t max, KafkaMessages* out) {
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
  Status s = kafka_internal::FromError(err, "reading committed offsets");
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

void* KafkaConsumer::native_handle() const { return impl_->rk; }

int64_t KafkaConsumer::Lag(const std::map<int32_t, int64_t>& positions) {
  int64_t lag = 0;
  for (const auto& [p, position] : positions) {
    int64_t low = 0;
    int64_t high = 0;
    if (position < 0) continue;
    if (rd_kafka_get_watermark_offsets(impl_->rk, impl_->topic.c_str(), p, &low, &high) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        high > position) {
      lag += high - position;
    }
  }
  return lag;
}

Result<int32_t> KafkaConsumer::PartitionCount() {
  return kafka_internal::PartitionCount(impl_->rk, impl_->topic, impl_->timeout_ms);
}

void KafkaConsumer::Close() {
  if (!impl_ || !impl_->rk || !impl_->queue) return;
  rd_kafka_consumer_close(impl_->rk);
  rd_kafka_queue_destroy(impl_->queue);
  impl_->queue = nullptr;
}

struct KafkaPartitionReader::Impl {
  rd_kafka_t* rk = nullptr;
  rd_kafka_queue_t* queue = nullptr;
  std::string topic;
  int timeout_ms = 5000;
  std::vector<rd_kafka_message_t*> buffer;
  ~Impl() {
    if (queue) rd_kafka_queue_destroy(queue);
    if (rk) {
      rd_kafka_consumer_close(rk);
      rd_kafka_destroy(rk);
    }
  }
};

KafkaPartitionReader::KafkaPartitionReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaPartitionReader::~KafkaPartitionReader() = default;

Status KafkaPartitionReader::Create(const KafkaOptions& options, const std::string& topic,
                                    const std::map<int32_t, int64_t>& start_offsets,
                                    std::unique_ptr<KafkaPartitionReader>* reader) {
  auto impl = std::make_unique<Impl>();
  impl->topic = topic;
  impl->timeout_ms = static_cast<int>(options.timeout.count());
  // A group id is required by the consumer API, but this reader never joins
  // the group (it assigns partitions itself) and never commits.
  std::map<std::string, std::string> role = {
      {"group.id", "catchall-reader-unused"}, {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},  {"enable.partition.eof", "true"},
      {"auto.offset.reset", "earliest"},      {"isolation.level", "read_committed"},
      {"queued.min.messages", "1000000"},     {"fetch.max.bytes", "52428800"},
  };
  rd_kafka_conf_t* conf = nullptr;
  CATCHALL_RETURN_IF_ERROR(kafka_internal::MakeConf(options, role, &conf));
  rd_kafka_conf_set_error_cb(conf, &OnConsumerError);
  char err[512];
  impl->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (!impl->rk) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(fmt::format("cannot create Kafka reader: {}", err));
  }
  rd_kafka_poll_set_consumer(impl->rk);
  impl->queue = rd_kafka_queue_get_consumer(impl->rk);
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(start_offsets.size()));
  for (const auto& [p, offset] : start_offsets) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset =
        offset < 0 ? RD_KAFKA_OFFSET_BEGINNING : offset;
  }
  rd_kafka_resp_err_t r = rd_kafka_assign(impl->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (r) return kafka_internal::FromError(r, fmt::format("assigning partitions of {}", topic));
  reader->reset(new KafkaPartitionReader(std::move(impl)));
  return Status::Ok();
}

Status KafkaPartitionReader::Poll(std::chrono::milliseconds timeout, size_t max,
                                  KafkaMessages* out) {
  // rd_kafka_consume_batch_queue returns only when it has `max` messages or
  // the timeout expired, which held every changelog record back up to the
  // whole timeout (measured: +50 ms freshness on average). Wait for the
  // first message only, then take what is already queued without waiting.
  if (max == 0) return Status::Ok();
  impl_->buffer.resize(max);
  rd_kafka_message_t* first =
      rd_kafka_consume_queue(impl_->queue, static_cast<int>(timeout.count()));
  if (!first) return Status::Ok();
  impl_->buffer[0] = first;
  ssize_t n = 1;
  if (max > 1) {
    ssize_t more = rd_kafka_consume_batch_queue(impl_->queue, 0, impl_->buffer.data() + 1, max - 1);
    if (more > 0) n += more;
  }
  return kafka_internal::CollectMessages(impl_->buffer.data(), n, out,
                                         [](int32_t) { return true; });
}

Result<int32_t> KafkaPartitionReader::PartitionCount() {
  return kafka_internal::PartitionCount(impl_->rk, impl_->topic, impl_->timeout_ms);
}

}  // namespace catchall
