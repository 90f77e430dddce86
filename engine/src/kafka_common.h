// Private helpers shared by the Kafka adapter files.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "engine/kafka.h"
#include "engine/status.h"

namespace catchall {

namespace kafka_internal {

// Hands `message` to *out, which destroys it at Clear(), and exposes it as a
// record.
void AddRecord(RecordBatch* out, rd_kafka_message_t* message);

class BrokerReachability;

// The consumer of a group member (kafka_consumer.cc); its polls tell
// `reachability` whether a broker answers; *handle receives its
// librdkafka handle, which the member's committer needs for the group
// metadata it sends with each transaction's offsets.
Status CreateGroupConsumer(const KafkaGroupOptions& options, RebalanceListener* listener,
                           std::shared_ptr<BrokerReachability> reachability,
                           std::unique_ptr<LogConsumer>* consumer, rd_kafka_t** handle);

// The librdkafka handle of an appender made by CreateKafkaAppender (tests:
// librdkafka's rd_kafka_test_fatal_error needs it).
rd_kafka_t* AppenderHandle(LogAppender* appender);

// The librdkafka properties of a group member's consumer (before the
// user's kafka.client.* and kafka.consumer.* ones, which MakeConf applies
// after them).
std::map<std::string, std::string> GroupConsumerProperties(const KafkaGroupOptions& options);

// Which of the options' extra properties apply to a client.
enum class ClientKind { kAdmin, kProducer, kConsumer };

// A configuration with the options' common properties, then, for a
// producer, what every catchall producer sets (idempotent, acknowledged by
// all in-sync replicas, a 5 ms linger, snappy compression; kafka_common.cc
// says why), then `role` properties, then the user's extra properties for
// every client and for this `kind`. InvalidArgument names a bad property
// (never its value, which may be a secret).
Status MakeConf(const KafkaOptions& options, ClientKind kind,
                const std::map<std::string, std::string>& role, rd_kafka_conf_t** conf);

// Waits until `rk` (a client without an error callback) has a connection to
// a broker that passed TLS and SASL. InvalidArgument (the settings are
// wrong) at the first authentication or TLS failure, naming it; Unavailable with the last
// connection error when no broker answered within `timeout`.
Status AwaitBroker(rd_kafka_t* rk, const std::string& brokers, std::chrono::milliseconds timeout);

// librdkafka log lines go to spdlog.
void LogToSpdlog(const rd_kafka_t* rk, int level, const char* facility, const char* message);

Status FromError(rd_kafka_resp_err_t err, std::string_view what);
// Converts and destroys `error` (null: OK). Abortable transaction errors map
// to kAborted, fatal ones to kFailedPrecondition, retriable to kUnavailable.
Status FromTxnError(rd_kafka_error_t* error, std::string_view what);

// Partition count of `topic` from the cluster metadata.
Result<int32_t> PartitionCount(rd_kafka_t* rk, const std::string& topic, int timeout_ms);
// The fewest replicas any partition of `topic` has (its replication factor,
// unless a reassignment left partitions uneven); NotFound if it does not
// exist.
Result<int32_t> ReplicationFactor(rd_kafka_t* rk, const std::string& topic, int timeout_ms);

// The same for a client that starts on `topic`: while the broker asked does
// not know the topic, asks again (every 100 ms) until `timeout_ms` has
// passed. A topic just created reaches every broker a moment later, and a
// role started right after `catchall topics create` on a three-broker
// cluster failed with "topic ... does not exist" when its producer asked
// a broker that had not heard of it yet.
Result<int32_t> PartitionCountOnceKnown(rd_kafka_t* rk, const std::string& topic, int timeout_ms);

// Whether a client reaches any broker (and finds its topic), for a role's
// /readyz. librdkafka reports every broker down (an error callback with
// _ALL_BROKERS_DOWN) for some clients but not for a group member's
// consumer (measured: a stopped broker left the aggregator's consumer
// silent while its transactional producer said "2/2 brokers are down"),
// and never says when one comes back. So the clients' error callbacks
// report it, and a consumer that has received nothing for a while asks for
// broker metadata: an answer means reachable, none within the wait means
// down. A group member's consumer and committer share one.
class BrokerReachability {
 public:
  // `who` names the client in the log ("aggregate"). Without `probe`,
  // AfterPoll never asks for metadata (a reader whose health nobody reads:
  // restoring or standby state), and only a message clears an outage.
  explicit BrokerReachability(std::string who, bool probe = true)
      : who_(std::move(who)), probe_(probe) {}
  // From the client's error callback (any thread).
  void OnError(int err, const char* reason);
  // After each poll of `rk`, from the thread that polls it. `received`:
  // the poll returned a message (a record or an end-of-partition mark).
  // With nothing received for 2 s, asks `rk` for metadata (waiting up to
  // 1 s) at most every second; two probes without an answer mean down.
  void AfterPoll(rd_kafka_t* rk, bool received);
  // Unavailable("no Kafka broker is reachable") while down; else, for
  // kTopicErrorMemory after the client last reported its topic or a
  // partition of it unknown (a deleted topic: every 0.5-1 s), Unavailable
  // with that report. Thread-safe.
  Status Health() const;

 private:
  static constexpr auto kTopicErrorMemory = std::chrono::seconds(3);

  void Set(bool down, std::string_view why);

  std::string who_;
  bool probe_;
  std::atomic<bool> down_{false};
  mutable std::mutex topic_mu_;
  std::string topic_error_;                               // GUARDED_BY(topic_mu_)
  std::chrono::steady_clock::time_point topic_error_at_;  // GUARDED_BY(topic_mu_)
  std::chrono::steady_clock::time_point last_heard_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_probe_;
  int failed_probes_ = 0;
};

// Whether any of a poll's messages came from a broker (a record or an
// end-of-partition mark), not from the client itself (an error).
inline bool AnyFromBroker(rd_kafka_message_t* const* messages, ssize_t n) {
  for (ssize_t i = 0; i < n; ++i) {
    if (!messages[i]->err || messages[i]->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return true;
  }
  return false;
}

// Turns a poll's messages into records / end-of-partition marks / an error.
// Messages of partitions for which `owned` returns false are dropped.
template <typename Owned>
Status CollectMessages(rd_kafka_message_t** messages, ssize_t n, RecordBatch* out,
                       const Owned& owned) {
  Status first;
  for (ssize_t i = 0; i < n; ++i) {
    rd_kafka_message_t* m = messages[i];
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      out->AddEndOfPartition(m->partition);
      rd_kafka_message_destroy(m);
    } else if (m->err) {
      if (first.ok() && m->err != RD_KAFKA_RESP_ERR__TIMED_OUT) {
        first = FromError(m->err, rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
    } else if (!owned(m->partition)) {
      rd_kafka_message_destroy(m);
    } else {
      AddRecord(out, m);
    }
  }
  return first;
}

}  // namespace kafka_internal
}  // namespace catchall
