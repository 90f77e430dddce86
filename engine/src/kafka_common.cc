#include "kafka_common.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace catchall {

namespace kafka_internal {

void AddRecord(RecordBatch* out, rd_kafka_message_t* m) {
  out->Hold(m, [](void* p) { rd_kafka_message_destroy(static_cast<rd_kafka_message_t*>(p)); });
  ConsumedRecord r;
  r.partition = m->partition;
  r.offset = m->offset;
  rd_kafka_timestamp_type_t type;
  r.timestamp_ms = rd_kafka_message_timestamp(m, &type);
  if (m->key) r.key = std::string_view(static_cast<const char*>(m->key), m->key_len);
  if (m->payload) r.value = std::string_view(static_cast<const char*>(m->payload), m->len);
  out->Add(r);
}

void LogToSpdlog(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  const char* name = rk ? rd_kafka_name(rk) : "rdkafka";
  if (level <= 3) {
    spdlog::error("kafka {} {}: {}", name, facility, message);
  } else if (level <= 4) {
    spdlog::warn("kafka {} {}: {}", name, facility, message);
  } else if (level <= 6) {
    spdlog::info("kafka {} {}: {}", name, facility, message);
  } else {
    spdlog::debug("kafka {} {}: {}", name, facility, message);
  }
}

namespace {

// What every catchall producer sets, the ingest node's and the aggregator's
// transactional one alike; each adds its own (timeouts, queue sizes, the
// partitioner, a transactional id) through MakeConf's `role`.
std::map<std::string, std::string> ProducerDefaults() {
  return {
      {"enable.idempotence", "true"},
      {"acks", "all"},
      // librdkafka's (and Kafka 4's) default. Longer lingers fill bigger
      // batches and cut the broker's CPU per event (measured: 45-69 us at
      // 2 ms, 44-47 at 5, 37-39 at 10, 28 at 20; docs/benchmarks.md), but
      // a PUT waits for its batch, so few concurrent clients get at most
      // connections / linger PUTs per second. kafka.producer.linger.ms
      // tunes it.
      {"linger.ms", "5"},
      {"batch.num.messages", "10000"},
      {"batch.size", "1048576"},
      // Not lz4: librdkafka's lz4 path starts an LZ4 frame per message set,
      // and the frame's 64 KB buffer is calloc'ed each time; jemalloc zeroes
      // a recycled extent of that size with madvise(MADV_DONTNEED), so every
      // partition batch cost a system call, a TLB shootdown on the other
      // core and fresh page faults. perf put that at ~12% of an ingest node
      // at 50,000 PUTs/s, whose batches carry a few events each; snappy
      // compresses the events topic as well (61-62 MB against 63 MB for 2M
      // events) without it (docs/benchmarks.md, "The producers'
      // compression").
      {"compression.type", "snappy"},
  };
}

}  // namespace

Status MakeConf(const KafkaOptions& options, ClientKind kind,
                const std::map<std::string, std::string>& role, rd_kafka_conf_t** out) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) -> Status {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      // The value is not repeated: it may be a password.
      return Status::InvalidArgument(fmt::format("Kafka property {}: {}", k, err));
    }
    return Status::Ok();
  };
  std::map<std::string, std::string> props = {
      {"bootstrap.servers", options.brokers},
      {"client.id", options.client_id},
      {"socket.timeout.ms", std::to_string(std::max<int64_t>(options.timeout.count(), 10))},
      {"log.connection.close", "false"},
      // Kafka brokers create a missing topic when a client's metadata
      // request allows it (auto.create.topics.enable is true by default),
      // and librdkafka's producers allow it by default. Every role looks up
      // its topics at start, with a producer handle, so on such a broker a
      // role started before `catchall topics create` made the events topic
      // with the broker's one partition and the changelog and ids topics
      // without compaction (measured on a broker with the setting on).
      // Topics come from `catchall topics create` only.
      {"allow.auto.create.topics", "false"},
  };
  if (kind == ClientKind::kProducer) {
    for (const auto& [k, v] : ProducerDefaults()) props[k] = v;
  }
  for (const auto& [k, v] : role) props[k] = v;
  for (const auto& [k, v] : options.properties) props[k] = v;
  if (kind == ClientKind::kProducer) {
    for (const auto& [k, v] : options.producer_properties) props[k] = v;
  } else if (kind == ClientKind::kConsumer) {
    for (const auto& [k, v] : options.consumer_properties) props[k] = v;
  }
  for (const auto& [k, v] : props) {
    Status s = set(k, v);
    if (!s.ok()) {
      rd_kafka_conf_destroy(conf);
      return s;
    }
  }
  rd_kafka_conf_set_log_cb(conf, &LogToSpdlog);
  *out = conf;
  return Status::Ok();
}

void BrokerReachability::Set(bool down, std::string_view why) {
  if (down_.exchange(down) == down) return;
  if (down) {
    spdlog::error("{}: no Kafka broker reachable ({}); not ready until one is", who_, why);
  } else {
    spdlog::info("{}: Kafka is reachable again", who_);
  }
}

void BrokerReachability::OnError(int err, const char* reason) {
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) return Set(true, reason);
  if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
      err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
    std::lock_guard<std::mutex> lock(topic_mu_);
    topic_error_ = reason;
    topic_error_at_ = std::chrono::steady_clock::now();
  }
  spdlog::warn("{}: Kafka: {} ({})", who_, reason,
               rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
}

void BrokerReachability::AfterPoll(rd_kafka_t* rk, bool received) {
  auto now = std::chrono::steady_clock::now();
  if (received) {
    last_heard_ = now;
    failed_probes_ = 0;
    if (down_.load(std::memory_order_relaxed)) Set(false, "");
    return;
  }
  if (!probe_ || now - last_heard_ < std::chrono::seconds(2) ||
      now - last_probe_ < std::chrono::seconds(1)) {
    return;
  }
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, nullptr, &md, 1000);
  // From the answer (or the wait's end): a probe that times out is not
  // followed by the next one at once.
  last_probe_ = std::chrono::steady_clock::now();
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    // The answer covers the topics the client knows (its subscription). One
    // the broker does not know keeps the topic error fresh: the client
    // reports it only now and then, and a query node whose changelog was
    // deleted said ready for ~25 s between reports (a probe).
    for (int i = 0; i < md->topic_cnt; ++i) {
      const rd_kafka_metadata_topic_t& t = md->topics[i];
      if (t.err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) continue;
      std::lock_guard<std::mutex> lock(topic_mu_);
      topic_error_ = fmt::format("topic {}: {}", t.topic, rd_kafka_err2str(t.err));
      topic_error_at_ = std::chrono::steady_clock::now();
    }
    rd_kafka_metadata_destroy(md);
    last_heard_ = std::chrono::steady_clock::now();
    failed_probes_ = 0;
    Set(false, "");
  } else if (++failed_probes_ >= 2) {
    // Twice in a row: one slow answer (a broker's GC pause) is not an outage.
    Set(true, rd_kafka_err2str(err));
  }
}

Status BrokerReachability::Health() const {
  if (down_.load(std::memory_order_acquire)) {
    return Status::Unavailable("no Kafka broker is reachable");
  }
  std::lock_guard<std::mutex> lock(topic_mu_);
  if (!topic_error_.empty() &&
      std::chrono::steady_clock::now() - topic_error_at_ < kTopicErrorMemory) {
    return Status::Unavailable(fmt::format("Kafka: {}", topic_error_));
  }
  return Status::Ok();
}

Status FromError(rd_kafka_resp_err_t err, std::string_view what) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  std::string msg = fmt::format("{}: {}", what, rd_kafka_err2str(err));
  switch (err) {
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT: return Status::Timeout(msg);
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION: return Status::Unavailable(msg);
    // A missing topic and a fenced producer both need an operator or a
    // restart, not a retry.
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH: return Status::FailedPrecondition(msg);
    default: return Status::IoError(msg);
  }
}

Status FromTxnError(rd_kafka_error_t* error, std::string_view what) {
  if (!error) return Status::Ok();
  // "Kafka" in the message: it becomes an aggregator's /readyz reason.
  std::string msg = fmt::format("Kafka failed {}: {}", what, rd_kafka_error_string(error));
  Status s;
  if (rd_kafka_error_is_fatal(error)) {
    s = Status::FailedPrecondition(msg);
  } else if (rd_kafka_error_txn_requires_abort(error)) {
    s = Status::Aborted(msg);
  } else if (rd_kafka_error_is_retriable(error)) {
    s = Status::Unavailable(msg);
  } else {
    s = Status::IoError(msg);
  }
  rd_kafka_error_destroy(error);
  return s;
}

namespace {

// One number read from `topic`'s metadata; NotFound if it does not exist.
template <typename Read>
Result<int32_t> FromTopicMetadata(rd_kafka_t* rk, const std::string& topic, int timeout_ms,
                                  Read read) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
  rd_kafka_topic_destroy(rkt);
  if (err) return FromError(err, fmt::format("metadata of topic {}", topic));
  Result<int32_t> result = Status::NotFound(fmt::format("topic {} does not exist", topic));
  if (md->topic_cnt == 1) {
    const auto& t = md->topics[0];
    if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      result = read(t);
    } else if (t.err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      result = FromError(t.err, fmt::format("metadata of topic {}", topic));
    }
  }
  rd_kafka_metadata_destroy(md);
  return result;
}

}  // namespace

Result<int32_t> PartitionCount(rd_kafka_t* rk, const std::string& topic, int timeout_ms) {
  return FromTopicMetadata(rk, topic, timeout_ms, [](const rd_kafka_metadata_topic_t& t) {
    return static_cast<int32_t>(t.partition_cnt);
  });
}

Result<int32_t> ReplicationFactor(rd_kafka_t* rk, const std::string& topic, int timeout_ms) {
  return FromTopicMetadata(rk, topic, timeout_ms, [](const rd_kafka_metadata_topic_t& t) {
    int32_t fewest = t.partition_cnt > 0 ? t.partitions[0].replica_cnt : 0;
    for (int i = 1; i < t.partition_cnt; ++i) {
      fewest = std::min(fewest, t.partitions[i].replica_cnt);
    }
    return fewest;
  });
}

Result<int32_t> PartitionCountOnceKnown(rd_kafka_t* rk, const std::string& topic, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    Result<int32_t> count =
        PartitionCount(rk, topic, static_cast<int>(std::max<int64_t>(left.count(), 100)));
    if (count.ok() || count.status().code() != Code::kNotFound ||
        std::chrono::steady_clock::now() + std::chrono::milliseconds(100) >= deadline) {
      return count;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace kafka_internal
}  // namespace catchall
