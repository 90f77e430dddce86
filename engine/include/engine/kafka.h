// The Apache Kafka backend of the log (cluster mode). librdkafka's headers
// and types stay inside engine/src/kafka_*.cc; these classes are what the
// roles see.
//
//   KafkaAppender               LogAppender for ingest: idempotent, acks=all
//   KafkaConsumer               consumer-group member with cooperative rebalancing
//   KafkaTransactionalProducer  exactly-once output: records + consumed offsets
//   KafkaPartitionReader        reads given partitions from given offsets (restore,
//                               changelog materialization)
//   CreateTopics / CheckTopics  topic administration
#pragma once

#include <chrono>
#include <cstdint>
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
  // Extra librdkafka properties (name -> value), applied last.
  std::map<std::string, std::string> properties;
};

// Offset meaning "from the first record still stored".
inline constexpr int64_t kOffsetBeginning = -2;

// Ingest's producer. Records are partitioned with murmur2 (Kafka's default,
// partitioner.h) by key. Append's callback runs when every record of the
// call is acknowledged by all in-sync replicas, or failed. When no broker is
// reachable, Append returns Unavailable at once.
Status CreateKafkaAppender(const KafkaOptions& options, std::string topic, Metrics* metrics,
                           std::unique_ptr<LogAppender>* appender);

// Messages returned by a poll. Owns them until Clear() or destruction.
class KafkaMessages {
 public:
  KafkaMessages() = default;
  ~KafkaMessages();
  KafkaMessages(const KafkaMessages&) = delete;
  KafkaMessages& operator=(const KafkaMessages&) = delete;

  void Clear();
  const std::vector<ConsumedRecord>& records() const { return records_; }
  // Partitions whose end was reached during the poll.
  const std::vector<int32_t>& end_of_partition() const { return eof_; }

 private:
  friend struct KafkaMessagesAccess;
  std::vector<void*> owned_;  // rd_kafka_message_t*
  std::vector<ConsumedRecord> records_;
  std::vector<int32_t> eof_;
};

// Called by KafkaConsumer::Poll on the polling thread during a rebalance.
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  // Partitions newly given to this member. Return the offset to start each
  // from (absent: the group's committed offset).
  virtual std::map<int32_t, int64_t> OnAssigned(const std::vector<int32_t>& partitions) = 0;
  // Partitions taken away in an orderly rebalance: commit their work now.
  virtual void OnRevoked(const std::vector<int32_t>& partitions) = 0;
  // Partitions lost (session timeout, fenced): their uncommitted work must
  // be dropped, not committed.
  virtual void OnLost(const std::vector<int32_t>& partitions) = 0;
};

struct KafkaConsumerOptions {
  KafkaOptions kafka;
  std::string group_id;
  std::string topic;
  // Messages prefetched per partition. librdkafka's default (100,000 in
  // 2.0) refills slowly enough to starve a fast consumer, while 1,000,000
  // per partition buffered most of a 10M-event backlog (~1.9 GB RSS with
  // 12 partitions); this keeps fetching ahead at a bounded cost.
  int queued_min_messages = 250000;
  // Largest fetch per partition. Fetches are decompressed whole before
  // their messages are queued, so this multiplies into memory: draining a
  // 12-partition backlog, 2 MB gave ~1.5M events/s at ~0.75 GB RSS, 4 MB
  // ~1.75M/s at ~1.15 GB, 10 MB ~2.0M/s at ~1.6 GB (docs/benchmarks.md).
  int max_partition_fetch_kb = 10240;
};

class KafkaTransactionalProducer;

// A consumer-group member on one topic. Offsets are never committed by the
// consumer itself: they are committed inside producer transactions.
// Single-threaded: call everything from the polling thread.
class KafkaConsumer {
 public:
  static Status Create(const KafkaConsumerOptions& options, RebalanceListener* listener,
                       std::unique_ptr<KafkaConsumer>* consumer);
  ~KafkaConsumer();

  // Waits up to `timeout` for messages (at most `max`) of assigned
  // partitions; rebalance callbacks run inside.
  Status Poll(std::chrono::milliseconds timeout, size_t max, KafkaMessages* out);
  // The group's committed offsets (kOffsetBeginning where none), waiting
  // for transactional commits in flight to settle.
  Status Committed(const std::vector<int32_t>& partitions, std::map<int32_t, int64_t>* out);
  // Restarts consumption of `partition` at `offset` (after an abort).
  Status Seek(int32_t partition, int64_t offset);
  // Partitions of the topic.
  Result<int32_t> PartitionCount();
  // Records between `positions` (partition -> next offset to consume) and
  // the partitions' high watermarks as last reported by the fetcher; no
  // broker request.
  int64_t Lag(const std::map<int32_t, int64_t>& positions);
  // Leaves the group (revoking partitions through the listener).
  void Close();

 private:
  friend class KafkaTransactionalProducer;
  // The librdkafka handle, for the producer's group metadata.
  void* native_handle() const;
  struct Impl;
  explicit KafkaConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A transactional producer (exactly-once v2: the consumer's group metadata
// fences zombies). Single-threaded.
class KafkaTransactionalProducer {
 public:
  static Status Create(const KafkaOptions& options, std::string transactional_id,
                       std::unique_ptr<KafkaTransactionalProducer>* producer);
  ~KafkaTransactionalProducer();

  Status Begin();
  // Enqueues a record to an explicit partition (waits while the queue is full).
  Status Produce(std::string_view topic, int32_t partition, std::string_view key,
                 std::string_view value);
  // Adds the consumer's next offsets to the transaction.
  Status SendOffsets(KafkaConsumer* consumer, const std::string& topic,
                     const std::map<int32_t, int64_t>& next_offsets);
  // Commits. On failure the status says what to do:
  //   kAborted              abort, rewind to the last commit, carry on
  //   kFailedPrecondition   fatal (fenced): recreate producer and consumer
  //   other                 retriable: call Commit again
  Status Commit();
  Status Abort();
  // Highest offset written per partition of `topic` by the last committed
  // transaction (from delivery reports); -1 where nothing was written.
  std::map<int32_t, int64_t> LastOffsets(const std::string& topic) const;

 private:
  struct Impl;
  explicit KafkaTransactionalProducer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads chosen partitions of a topic from chosen offsets, without a group.
// read_committed: skips aborted transactions and stops at the last stable
// offset. Single-threaded.
class KafkaPartitionReader {
 public:
  static Status Create(const KafkaOptions& options, const std::string& topic,
                       const std::map<int32_t, int64_t>& start_offsets,
                       std::unique_ptr<KafkaPartitionReader>* reader);
  ~KafkaPartitionReader();
  Status Poll(std::chrono::milliseconds timeout, size_t max, KafkaMessages* out);
  Result<int32_t> PartitionCount();

 private:
  struct Impl;
  explicit KafkaPartitionReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct TopicSpec {
  std::string name;
  int32_t partitions = 1;
  int32_t replication_factor = 1;
  std::map<std::string, std::string> configs;  // e.g. cleanup.policy=compact
};

// Creates the topics that do not exist. An existing topic with another
// partition count is an error (FailedPrecondition), not silently accepted.
// A spec with 0 partitions accepts any count.
// *report gets one human line per topic.
Status CreateTopics(const KafkaOptions& options, const std::vector<TopicSpec>& topics,
                    std::string* report);
// Partition count of `topic` (NotFound when it does not exist).
Result<int32_t> TopicPartitionCount(const KafkaOptions& options, const std::string& topic);

// Checks that the topics exist with the expected partition counts (and, for
// those with cleanup.policy in their spec, that policy). FailedPrecondition
// names every problem; Unavailable when the brokers cannot be reached.
Status CheckTopics(const KafkaOptions& options, const std::vector<TopicSpec>& topics,
                   std::string* report);

}  // namespace catchall
