// The log: catchall's durable, partitioned, offset-addressed record streams,
// and the one seam between them and everything that reads or writes them.
//
// Two backends implement every interface here: Apache Kafka (cluster mode,
// kafka.h) and LocalLog (embedded mode, local_log.h, on a KvStore). Both
// route a record to partition murmur2(key) % partitions (partitioner.h) and
// give each record of a partition a dense, increasing offset, so the code
// above the log and its exactly-once reasoning are the same in both modes:
//
//   writing   LogAppender     appends records (ingest)
//   reading   LogReader       reads chosen partitions from chosen offsets
//                             (restore, changelog materialization)
//             LogConsumer     a consumer-group member: the group decides which
//                             partitions it reads (aggregation)
//   committing LogCommitter   the exactly-once step: output records, consumed
//                             offsets and the consumer's state change at once
//   connecting GroupLog       makes a member's consumer and committer (again,
//                             after a fatal error) and its readers
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace catchall {

class KvWriteBatch;

// Topic names of the product (see docs/architecture.md).
inline constexpr std::string_view kEventsTopic = "catchall.events";
inline constexpr std::string_view kStatusTopic = "catchall.domain-status";
inline constexpr std::string_view kIdsTopic = "catchall.ids";
inline constexpr std::string_view kDeadLetterTopic = "catchall.events.dlq";

// Offset meaning "from the first record still stored".
inline constexpr int64_t kOffsetBeginning = -2;

// A record to append.
struct LogRecord {
  std::string key;
  std::string value;
};

// A record a transaction writes to `topic`; partition -1 routes by key.
struct OutputRecord {
  std::string topic;
  int32_t partition = -1;
  std::string key;
  std::string value;
};

// A record read back. The views are owned by the RecordBatch it came in. An
// empty value is a tombstone (Kafka's null value).
struct ConsumedRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;  // when the log accepted it
  std::string_view key;
  std::string_view value;
};

// What one poll returned: records, and the partitions whose end was reached
// (each time a reader catches up with a partition). Owns the bytes the
// records point into until Clear() or destruction. Not thread-safe.
class RecordBatch {
 public:
  RecordBatch() = default;
  ~RecordBatch() { Clear(); }
  RecordBatch(const RecordBatch&) = delete;
  RecordBatch& operator=(const RecordBatch&) = delete;

  const std::vector<ConsumedRecord>& records() const { return records_; }
  const std::vector<int32_t>& end_of_partition() const { return end_of_partition_; }
  bool empty() const { return records_.empty() && end_of_partition_.empty(); }
  // Releases everything held.
  void Clear();

  // For backends: what a poll adds.
  void Add(const ConsumedRecord& record) { records_.push_back(record); }
  void AddEndOfPartition(int32_t partition) { end_of_partition_.push_back(partition); }
  // Keeps `bytes` alive until Clear(); the returned view stays valid as long.
  std::string_view Keep(std::string bytes);
  // Calls release(resource) at Clear() (e.g. a library's message handle).
  void Hold(void* resource, void (*release)(void*)) { held_.push_back({resource, release}); }

 private:
  struct Held {
    void* resource;
    void (*release)(void*);
  };
  std::vector<ConsumedRecord> records_;
  std::vector<int32_t> end_of_partition_;
  std::deque<std::string> kept_;
  std::vector<Held> held_;
};

// Appends records to one topic. Thread-safe.
class LogAppender {
 public:
  // Runs exactly once per accepted Append when every record of the call is
  // durable (OK) or when any of them failed (or, Kafka's, when
  // kafka.timeout_ms passed first: Unavailable, and the records may still be
  // stored): on a thread of the log, or (the local log) on the HTTP I/O
  // thread that appended, at the end of its round (io_round.h). Kafka's may
  // also run inside Append, on the appending thread, when every record was
  // settled before Append returned. It must not block.
  using Callback = std::function<void(const Status&)>;

  virtual ~LogAppender() = default;

  // Enqueues `records`. Never blocks. Returns OK when accepted (then `done`
  // will run); returns Unavailable, without running `done`, when the log is
  // unreachable or its queue is full, so the caller can shed load at once.
  virtual Status Append(std::vector<LogRecord> records, Callback done) = 0;

  virtual int32_t partition_count() const = 0;

  // Ready to take writes, for /readyz: the store open (local log); a broker
  // reachable, the events topic as it was, and Kafka storing what it is
  // given (Kafka).
  virtual Status Health() const = 0;

  // Waits until everything appended so far is durable or failed.
  virtual Status Flush(std::chrono::milliseconds timeout) = 0;
};

// Reads chosen partitions of one topic from chosen offsets, outside any
// group. Sees only committed transactions (read_committed). Single-threaded.
class LogReader {
 public:
  virtual ~LogReader() = default;
  virtual int32_t partition_count() const = 0;
  // Reads `partition` from `offset` on (kOffsetBeginning: the first record
  // still stored), adding it to the partitions read if it was not one.
  virtual Status Seek(int32_t partition, int64_t offset) = 0;
  // Stops reading `partition`. Records of it fetched before may still come
  // out of the next polls; callers that care filter them by offset.
  virtual Status Unassign(int32_t partition) = 0;
  // Waits up to `timeout` for records of the partitions read, then appends
  // at most `max` of them (and end-of-partition marks) to *out.
  virtual Status Poll(std::chrono::milliseconds timeout, size_t max, RecordBatch* out) = 0;
  // The offset the next record appended to `partition` will get (Kafka's
  // high watermark).
  virtual Result<int64_t> EndOffset(int32_t partition) = 0;
  // Whether the log is reachable, for /readyz: Unavailable while no broker
  // answers. Thread-safe. A local log is always reachable.
  virtual Status Health() const { return Status::Ok(); }
};

// Called by LogConsumer::Poll, on the polling thread, when the group moves
// partitions.
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  // Partitions newly given to this member. Returns the offset to start each
  // from (absent: the group's committed offset).
  virtual std::map<int32_t, int64_t> OnAssigned(const std::vector<int32_t>& partitions) = 0;
  // Partitions taken away in an orderly rebalance: commit their work now.
  virtual void OnRevoked(const std::vector<int32_t>& partitions) = 0;
  // Partitions lost (session timeout, fenced): someone else may own them
  // already, so their uncommitted work must be dropped, not committed.
  virtual void OnLost(const std::vector<int32_t>& partitions) = 0;
};

// A member of a consumer group on one topic: the group decides which
// partitions it reads. Offsets are committed only by its LogCommitter,
// inside transactions. Single-threaded: call everything from the polling
// thread. Destroying it without Close() abandons the membership the way a
// crashed process does (the group hands its partitions on, uncommitted work
// is lost).
class LogConsumer {
 public:
  virtual ~LogConsumer() = default;
  virtual int32_t partition_count() const = 0;
  // Waits up to `timeout` for records of the owned partitions (at most
  // `max`); rebalance callbacks run inside. Returns only owned partitions'
  // records.
  virtual Status Poll(std::chrono::milliseconds timeout, size_t max, RecordBatch* out) = 0;
  // Restarts an owned partition at `offset` (after an aborted transaction).
  virtual Status Seek(int32_t partition, int64_t offset) = 0;
  // While paused, Poll returns no records (but keeps the membership alive
  // and runs rebalances); partitions assigned meanwhile are paused too.
  virtual Status Pause(bool paused) = 0;
  // The group's committed offsets (kOffsetBeginning where none), once
  // commits in flight have settled.
  virtual Status Committed(const std::vector<int32_t>& partitions,
                           std::map<int32_t, int64_t>* out) = 0;
  // Records between `positions` (partition -> next offset to consume; a
  // negative one: the partition's start) and the partitions' ends as last
  // known, with no round trip; while paused (which stops the fetches that
  // bring the ends), a log may ask for them.
  virtual int64_t Lag(const std::map<int32_t, int64_t>& positions) = 0;
  // Leaves the group in order: revokes the owned partitions through the
  // listener (which commits their work) first.
  virtual void Close() = 0;
};

// The exactly-once step of a consumer.
struct LogTransaction {
  // Records to write (changelog, ids, dead letters).
  std::vector<OutputRecord> records;
  // Input partition -> next offset to consume, committed for the group.
  std::map<int32_t, int64_t> offsets;
  // The consumer's own state change; see LogCommitter::state_in_transaction.
  KvWriteBatch* state = nullptr;
};

// Commits a group member's transactions. Single-threaded, bound to the
// consumer it was made with.
class LogCommitter {
 public:
  virtual ~LogCommitter() = default;

  // True when the committer writes LogTransaction::state in the same atomic
  // write as the records and offsets (embedded mode: the state lives in the
  // log's own store). False when it commits records and offsets only, and
  // the caller applies the state change after a successful commit; that
  // state is then a checkpointed cache, restored from the log's changelog
  // whenever it is behind the committed offsets (cluster mode).
  virtual bool state_in_transaction() const = 0;

  // Makes `txn` durable as one step. The outcome says what happened:
  //   OK                   all of it is durable;
  //   kAborted             none of it: rewind to the last commit, carry on;
  //   kFailedPrecondition  fenced (the partitions belong to another member
  //                        now) or fatal: none of it; reconnect;
  //   anything else        unknown (e.g. a timeout after the broker got the
  //                        commit): reconnect and trust only the committed
  //                        offsets read back, never the local guess.
  virtual Status Commit(LogTransaction* txn) = 0;

  // The offset after the last record a committed transaction of this
  // committer wrote to `topic`'s `partition`, or -1 if none did.
  virtual int64_t CommittedEnd(std::string_view topic, int32_t partition) const = 0;
};

// How a group member reaches the log: Join makes its consumer and committer
// (again, after a fatal error), OpenReader makes readers of other topics
// (to restore state from a changelog). Thread-safe.
class GroupLog {
 public:
  virtual ~GroupLog() = default;
  virtual Status Join(RebalanceListener* listener, std::unique_ptr<LogConsumer>* consumer,
                      std::unique_ptr<LogCommitter>* committer) = 0;
  virtual Status OpenReader(std::string_view topic, std::unique_ptr<LogReader>* reader) = 0;
  // Whether the member's consumer and committer reach the log, for /readyz:
  // Unavailable while no broker answers. Thread-safe, and answers while a
  // call of the consumer or committer blocks. A local log is always
  // reachable.
  virtual Status Health() const { return Status::Ok(); }
};

}  // namespace catchall
