// The Apache Kafka backend of the log (cluster mode). librdkafka's headers
// and types stay inside engine/src/kafka_*.cc; these classes are what the
// roles see.
//
//   CreateKafkaAppender   LogAppender for ingest: idempotent, acks=all
//   CreateKafkaReader     LogReader: given partitions from given offsets
//                         (restore, changelog materialization)
//   CreateKafkaGroupLog   GroupLog: a consumer-group member (LogConsumer) and
//                         its transactional LogCommitter
//   CreateTopics / CheckTopics  topic administration
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/log.h"
#include "engine/status.h"

namespace catchall {

class Metrics;

struct KafkaOptions {
  std::string brokers;  // bootstrap servers, HOST:PORT,...
  std::string client_id = "catchall";
  std::chrono::milliseconds timeout{5000};  // request and delivery timeout
  // Extra librdkafka properties (name -> value), applied after catchall's
  // own: `properties` to every client, the others to producers or consumers
  // (readers included) only.
  std::map<std::string, std::string> properties;
  std::map<std::string, std::string> producer_properties;
  std::map<std::string, std::string> consumer_properties;
};

// Ingest's producer. Records are partitioned with murmur2 (Kafka's default,
// partitioner.h) by key. Append's callback runs when every record of the
// call is acknowledged by all in-sync replicas, or failed. When no broker is
// reachable, Append returns Unavailable at once.
Status CreateKafkaAppender(const KafkaOptions& options, std::string topic, Metrics* metrics,
                           std::unique_ptr<LogAppender>* appender);

// A LogReader of `topic` (read_committed: skips aborted transactions and
// stops at the last stable offset), outside any group. It starts with no
// partition; Seek adds them. With `watch_brokers` (a reader that follows
// the log for a role's /readyz), a reader that has received nothing for
// 2 s asks for broker metadata so that its Health() knows when no broker
// answers; otherwise Health() only reflects librdkafka's all-brokers-down
// error until the next message.
Status CreateKafkaReader(const KafkaOptions& options, const std::string& topic,
                         std::unique_ptr<LogReader>* reader, bool watch_brokers = false);

struct KafkaGroupOptions {
  KafkaOptions kafka;
  std::string group_id;
  std::string topic;  // consumed by the group
  // Stable per member: a new incarnation with the same id fences the old
  // one's transactions (exactly-once v2).
  std::string transactional_id;
  // The prefetch bound: kilobytes of (decompressed) messages the consumer
  // holds before it stops fetching. librdkafka applies it, and its message
  // count (queued.min.messages, set to its maximum so that bytes decide), to
  // the consumer's one queue, not per partition. Once over it, librdkafka
  // 2.0 fetches again only when its broker thread next wakes, up to a
  // second later (2.4 made that wait a setting, fetch.queue.backoff.ms): a
  // bound below one fetch's worth, or below a second of the aggregator's
  // work, left it idle between fetches (docs/benchmarks.md, "The consumer's
  // prefetch bound").
  int queued_max_kb = 65536;
  // Largest fetch per partition (compressed); a fetch asks for at most
  // five of them (fetch.max.bytes, at least 16 MB). Fetches are decompressed
  // whole before their messages are queued, so a fetch can overshoot
  // queued_max_kb by its decompressed size, and one that alone exceeds it
  // stops fetching for up to a second (see there). 4 MB (20 MB per fetch)
  // under a 64 MB bound drained small events 1.5x faster than 10 MB
  // (50 MB, ~200 MB decompressed) did, at no more memory
  // (docs/benchmarks.md, "The consumer's prefetch bound").
  int max_partition_fetch_kb = 4096;
};

// Membership of a consumer group through Kafka: Join makes a consumer with
// cooperative rebalancing and a transactional committer bound to it (it
// sends the consumer's offsets inside its transactions, so that the group
// coordinator fences zombies, like Kafka Streams' exactly_once_v2).
// OpenReader makes CreateKafkaReader readers.
Status CreateKafkaGroupLog(const KafkaGroupOptions& options, std::unique_ptr<GroupLog>* out);

struct TopicSpec {
  std::string name;
  int32_t partitions = 1;
  // CheckTopics: 0 accepts any.
  int32_t replication_factor = 1;
  std::map<std::string, std::string> configs;  // e.g. cleanup.policy=compact
};

// One difference between a topic and its spec, as CheckTopics finds it:
// callers pick their advice by kind, not by the message's words.
struct TopicProblem {
  enum class Kind { kMissing, kPartitions, kReplicationFactor, kConfig };
  Kind kind;
  std::string topic;
  std::string message;  // "topic T has ..., expected ..."
};

// Creates the topics that do not exist. An existing topic with another
// partition count is an error (FailedPrecondition), not silently accepted.
// A spec with 0 partitions accepts any count.
// *report gets one human line per topic; *problems (may be null) the
// differences of the existing topics, as CheckTopics's.
Status CreateTopics(const KafkaOptions& options, const std::vector<TopicSpec>& topics,
                    std::string* report, std::vector<TopicProblem>* problems = nullptr);
// Partition count of `topic` (NotFound when it does not exist). With
// `wait_if_unknown`, a topic the broker asked does not know yet (one just
// created, on a cluster) is asked for again until that much time passed.
Result<int32_t> TopicPartitionCount(
    const KafkaOptions& options, const std::string& topic,
    std::chrono::milliseconds wait_if_unknown = std::chrono::milliseconds(0));

// Checks that the topics exist with the expected partition counts (and, for
// those with cleanup.policy or retention.bytes in their spec, that value;
// with retention.ms, that they keep records at least that long).
// FailedPrecondition names every problem, and *problems (may be null) gets
// each; Unavailable when the brokers cannot be reached. A config that
// cannot be read (no DescribeConfigs right) is a note in *report, not a
// problem.
Status CheckTopics(const KafkaOptions& options, const std::vector<TopicSpec>& topics,
                   std::string* report, std::vector<TopicProblem>* problems = nullptr);

// CheckTopics, asked again every 100 ms until `until` while one of its
// problems names a topic of `fresh`. A topic just created shows up in every
// broker's metadata, and its configs in their answers, a moment later, so
// for a topic that may be new a problem means "not yet". `on_first_wait`
// (may be empty) is called with the problem before the first wait. *report
// gets the last check's lines when it fails, and *problems (may be null)
// its problems.
Status CheckTopicsUntil(const KafkaOptions& options, const std::vector<TopicSpec>& topics,
                        const std::vector<std::string>& fresh,
                        std::chrono::steady_clock::time_point until, std::string* report,
                        const std::function<void(const Status&)>& on_first_wait = {},
                        std::vector<TopicProblem>* problems = nullptr);

}  // namespace catchall
