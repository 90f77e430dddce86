// The local log's shared internals: its topics, the writer thread's queue,
// committed group offsets and groups. Private to engine: local_log.cc
// (opening, writing, retention), local_log_reader.cc (reading) and
// local_group.cc (consumer groups and transactions) implement it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/io_round.h"
#include "engine/kv_store.h"
#include "engine/local_log.h"
#include "engine/log.h"
#include "log_batch.h"
#include "log_ends.h"
#include "log_tail_cache.h"

namespace catchall {

class LogProbe;
class LocalLogAppender;
struct TopicState;

// A consumer group on one topic (local_group.cc implements its protocol).
struct LocalGroup {
  std::string name;
  TopicState* topic = nullptr;
  std::mutex mu;
  // Live members by id (join order) -> last poll.
  std::map<uint64_t, std::chrono::steady_clock::time_point> members;  // GUARDED_BY(mu)
  std::vector<uint64_t> owner;  // GUARDED_BY(mu): per partition, 0 when free
  std::vector<uint64_t> epoch;  // GUARDED_BY(mu): bumps whenever the owner changes
  uint64_t next_id = 1;         // GUARDED_BY(mu)
};

struct TopicState {
  std::string name;
  Column column;
  int32_t partitions = 0;
  bool consumed_by_groups = true;                 // LocalTopicSpec
  std::unique_ptr<std::atomic<int64_t>[]> end;    // durable end offset
  std::unique_ptr<std::atomic<int64_t>[]> start;  // first stored offset
  std::unique_ptr<std::atomic<int64_t>[]> floor;  // retention floor
  std::vector<int64_t> next;                      // writer thread only
  std::vector<std::string> buffers;               // writer thread only
  std::vector<uint32_t> counts;                   // writer thread only
  // Records of the group commit being staged that are already sealed in
  // stored batches (writer thread only; LocalLogOptions::max_stored_batch_bytes).
  std::vector<int64_t> sealed;
  std::unique_ptr<LocalLogAppender> appender;
  // The newest batches, for readers right behind the writer.
  std::unique_ptr<LogTailCache> tail;
};

// A transaction on its way to the writer thread.
struct PendingTransaction {
  std::string group;
  TopicState* input = nullptr;  // the topic the offsets are of
  LogTransaction* txn = nullptr;
  // Runs `write` (the store write of the whole transaction) and returns its
  // status, or refuses without running it (fencing), holding the group's
  // lock so that the check and the write are one step for the group. Runs
  // on the writer thread, or the committer's for WriteStateTransaction.
  std::function<Status(const std::function<Status()>& write)> guard;
  // Filled by the writer: per (topic, partition) written, the end offset
  // after this transaction.
  std::map<std::pair<std::string, int32_t>, int64_t> ends;
};

// An append or a transaction waiting for the writer thread.
struct PendingWrite {
  TopicState* topic = nullptr;  // appends
  std::vector<LogRecord> records;
  PendingTransaction* txn = nullptr;  // transactions (records above unused)
  LogAppender::Callback done;
  size_t bytes = 0;
};

struct LocalLogImpl;

// Writes what the HTTP thread queued during a round, on that thread, at the
// round's end (engine/io_round.h).
class LocalLogFlusher final : public RoundTask {
 public:
  explicit LocalLogFlusher(LocalLogImpl* log) : log_(log) {}
  void RunAtEndOfRound() override;

 private:
  LocalLogImpl* log_;
};

struct LocalLogImpl {
  LocalLogOptions options;
  KvStore* store = nullptr;
  std::unique_ptr<LogProbe> probe;  // null without metrics
  Column meta;
  std::vector<std::unique_ptr<TopicState>> topics;

  std::mutex mu;
  std::condition_variable writer_cv;
  std::condition_variable drained_cv;
  std::vector<PendingWrite> queue;  // GUARDED_BY(mu)
  size_t pending_bytes = 0;         // GUARDED_BY(mu)
  bool closing = false;             // GUARDED_BY(mu)
  // The writer's token: whoever sets it (the writer thread, or an HTTP
  // thread at the end of its round) writes what it took from the queue,
  // alone, and then clears it.
  bool writing = false;   // GUARDED_BY(mu)
  int direct_writes = 0;  // GUARDED_BY(mu): state-only transactions in flight
  Status write_error;     // GUARDED_BY(mu): last failed write
  std::thread writer;
  LocalLogFlusher flusher{this};
  // Records the ends (LocalLogOptions::ends_file) on its own thread, so
  // that the write-ahead log's sync holds up no write.
  std::thread ends_recorder;
  std::mutex record_mu;  // one RecordEnds at a time: they share the file
  std::mutex ends_mu;
  std::condition_variable ends_cv;  // wakes the recorder to close
  bool ends_closing = false;        // GUARDED_BY(ends_mu)
  LogEnds recorded;                 // GUARDED_BY(ends_mu): last written
  Status RecordEnds();
  void EndsLoop();
  // Scratch of the token's holder (only it touches them).
  std::vector<PendingWrite> taken;
  std::vector<PendingWrite> appends;
  KvWriteBatch batch;
  // A group commit's stored batches, in the order written (writer's token).
  struct StagedBatch {
    TopicState* topic;
    int32_t partition;
    int64_t base;  // offset of its first record
    uint32_t count;
    std::string data;
  };
  std::vector<StagedBatch> staged;

  // Changes after every durable write; readers wait on it.
  mutable std::mutex seq_mu;
  mutable std::condition_variable seq_cv;
  std::atomic<uint64_t> seq{0};

  // Committed offsets: group -> topic -> partition -> next offset.
  mutable std::mutex committed_mu;
  std::map<std::string, std::map<std::string, std::map<int32_t, int64_t>, std::less<>>,
           std::less<>>
      committed;  // GUARDED_BY(committed_mu)

  std::mutex groups_mu;
  std::map<std::string, std::unique_ptr<LocalGroup>> groups;  // GUARDED_BY(groups_mu)

  std::chrono::steady_clock::time_point last_retention = std::chrono::steady_clock::now();

  TopicState* Find(std::string_view name) const;

  // Queues an append or a transaction for the writer thread.
  Status Enqueue(TopicState* topic, std::vector<LogRecord> records, LogAppender::Callback done);
  Status EnqueueTransaction(PendingTransaction* txn, LogAppender::Callback done);
  // A transaction that writes no log records takes no place among the
  // appends: the committing thread writes it itself, beside the writer's
  // group commits (the store inserts both at once). Returns the write's
  // status, or Unavailable when the log is closing.
  Status WriteStateTransaction(PendingTransaction* txn);

  // Reads records of `partition` with offset >= `from`, at most
  // `max_records` (whole batches may exceed it slightly), into *out.
  // Returns the number of records added.
  Result<size_t> Read(const TopicState& topic, int32_t partition, int64_t from, size_t max_records,
                      RecordBatch* out) const;
  // Returns when `seq` != `seen` or after `timeout`.
  void WaitForWrite(uint64_t seen, std::chrono::milliseconds timeout) const;

  // The committed offsets of `group` for `topic`.
  std::map<int32_t, int64_t> CommittedOffsets(std::string_view group, std::string_view topic) const;
  // Records newly committed offsets and moves the retention floors.
  void OnCommitted(const std::string& group, TopicState* topic,
                   const std::map<int32_t, int64_t>& offsets);

  // LocalLog::ResetGroups and LocalLog::MaxCommitted.
  Result<std::vector<std::string>> ResetGroups(std::string_view keep, TopicState* topic,
                                               const std::map<int32_t, int64_t>& offsets);
  std::map<int32_t, int64_t> MaxCommitted(std::string_view topic) const;

  void WriterLoop();
  // With `mu` held and the token free: takes the token and the queued
  // writes (only the appends before the first transaction if
  // `appends_only`) into `taken`.
  void TakeQueue(bool appends_only);
  // Writes `taken`, in order: appends group-committed, transactions alone.
  void WriteTaken();
  // Gives the token back; with `hand_on`, wakes the writer thread for what
  // was queued meanwhile.
  void FinishWriting(bool hand_on);
  // At the end of an HTTP thread's round: if the token is free, writes the
  // appends queued so far on this thread, and answers them; else leaves
  // them to the token's holder, who looks at the queue again when done.
  void WriteQueuedHere();
  void WriteAppends(std::vector<PendingWrite>* work, KvWriteBatch* batch);
  void WriteTransaction(PendingWrite* write, KvWriteBatch* scratch);
  // The offsets of `pending` into `batch`, then the guarded store write.
  Status WriteOffsetsAndState(PendingTransaction* pending, KvWriteBatch* batch);
  void Published(const Status& s);
  void MaybeEnforceRetention();
  // Every partition of every topic; the first error, after trying them all.
  Status EnforceRetention(std::chrono::system_clock::time_point now);
  // One partition: deletes its batches that are older than `cutoff_ms` and
  // entirely below its floor, keeping the newest batch.
  Status EnforceRetention(TopicState* t, int32_t part, int64_t cutoff_ms);
};

// Key of a batch in a topic's column: partition, base offset (big-endian).
std::string LocalBatchKey(int32_t partition, int64_t offset);
// The base offset in such a key.
int64_t LocalBatchBase(std::string_view key);
// Seeks `it` (over `partition`'s batches) to the last batch whose base is
// at or before `offset` and reads its base and header. Corruption, or the
// read's error, when there is none.
Status ReadBatchAtOrBefore(KvIterator* it, int32_t partition, int64_t offset, int64_t* base,
                           LogBatchHeader* header);
// Key of a committed offset in the meta column.
std::string CommittedOffsetKey(std::string_view group, std::string_view topic, int32_t partition);
// Its value.
std::string EncodeOffset(int64_t offset);

// The reader of one topic (LocalLog::NewReader; also what a group member
// reads its partitions with).
class LocalLogReader final : public LogReader {
 public:
  LocalLogReader(const LocalLogImpl* log, const TopicState* topic) : log_(log), topic_(topic) {}
  int32_t partition_count() const override { return topic_->partitions; }
  Status Seek(int32_t partition, int64_t offset) override;
  Status Poll(std::chrono::milliseconds timeout, size_t max, RecordBatch* out) override;
  Result<int64_t> EndOffset(int32_t partition) override;
  Status Unassign(int32_t partition) override;
  // Next offset to read of every partition read.
  const std::map<int32_t, int64_t>& positions() const { return positions_; }

 private:
  // One pass over the partitions; returns the records added.
  Result<size_t> ReadSome(size_t max, RecordBatch* out);

  const LocalLogImpl* log_;
  const TopicState* topic_;
  std::map<int32_t, int64_t> positions_;
  std::map<int32_t, bool> at_end_;  // end-of-partition already reported
  size_t next_ = 0;                 // round-robin start
};

}  // namespace catchall
