// LocalLog: the embedded-mode log, kept in a KvStore. It implements every
// side of the log seam (log.h), the way Kafka does in cluster mode.
//
// Each topic is a column; a partition's records are stored in batches under
// key (partition, base offset), big-endian, like Kafka's record batches. An
// append is group-committed: one writer thread drains every pending Append
// into one KvStore write, so a 204 means the event is in the write-ahead log
// (fsynced when the store syncs writes) and many concurrent requests share
// one write.
//
// Consumer groups work as in Kafka: members of a group split a topic's
// partitions, a member's committed offsets are stored in the log, and its
// LogCommitter writes output records, offsets and (when the member's state
// lives in the same store) its state change in one atomic store write.
// Transactions of a member that lost a partition are fenced.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/kv_store.h"
#include "engine/log.h"
#include "engine/status.h"

namespace catchall {

class DiskMonitor;
class Metrics;
struct LocalLogImpl;

struct LocalTopicSpec {
  std::string name;
  int32_t partitions = 1;
  // The count is fixed once the topic exists (a key's partition depends on
  // it). False: a different count on disk fails Open. True: the count on
  // disk is used, and `partitions` only applies to a new topic.
  bool keep_count_on_disk = false;
  // False for a topic no group consumes (the dead letters, which operators
  // read): retention then goes by time alone. With no group's offsets its
  // floor stayed at 0, and it was never deleted at all.
  bool consumed_by_groups = true;
};

struct LocalLogOptions {
  std::vector<LocalTopicSpec> topics;
  // Appends waiting for the writer beyond this many bytes are refused with
  // Unavailable (backpressure instead of unbounded memory).
  size_t max_pending_bytes = 64 << 20;
  // A group commit stores each partition's records in batches of about
  // this many bytes at most: RocksDB refuses a value of 4 GiB or more, and
  // max_pending_bytes plus one body may be more than that.
  size_t max_stored_batch_bytes = 64 << 20;
  // Appends are refused with Unavailable while a topic has more records
  // than this past its retention floors (written but not yet consumed), so
  // that an overloaded consumer slows producers down instead of falling
  // ever further behind. 0: no limit.
  int64_t max_unconsumed_records = 0;
  // Records older than this are deleted, but never records at or after a
  // partition's retention floor (the oldest offset a consumer still needs).
  std::chrono::milliseconds retention{std::chrono::hours(1)};
  // A group member that has not polled for this long loses its partitions
  // to the other members (Kafka's session timeout).
  std::chrono::milliseconds session_timeout{std::chrono::seconds(10)};
  // A poll that finds fewer than `fetch_min_records` records (but some)
  // waits `fetch_max_wait` once for more, like a Kafka fetch with
  // fetch.min.bytes and fetch.wait.max.ms. Without it a reader behind a
  // busy writer wakes for every group commit of a few records: at 50,000
  // single PUTs/s that was 6.1 of `catchall serve`'s 18.9 µs of CPU per PUT.
  // The wait is a sleep, not a wait for the writer's signal, so the writer
  // wakes nobody meanwhile. 0 turns it off.
  size_t fetch_min_records = 1000;
  std::chrono::milliseconds fetch_max_wait{5};
  // When set (it must outlive the log), appends are refused with NoSpace
  // while the data dir's disk is low.
  DiskMonitor* disk = nullptr;
  // When set, the log records its partitions' ends in this file every
  // `ends_interval` (and at Close), each time after syncing the store's
  // write-ahead log, and Open
  // refuses a store whose log ends before a recorded end (Corruption): its
  // files lost acknowledged writes (a deleted or cut *.log, a MANIFEST cut
  // short, files from different moments), which RocksDB opens as an older
  // store without a word. With `accept_lost_ends` the loss is logged and
  // the log opens (storage.recover_damaged_wal).
  std::string ends_file;
  bool accept_lost_ends = false;
  // The sync is a synced write, which holds up the writes behind it for an
  // fsync: once a second added ~3 ms to the p99 of single PUTs at 60,000/s
  // (docs/benchmarks.md). Writes of the last interval before a loss are
  // not covered.
  std::chrono::milliseconds ends_interval{std::chrono::seconds(10)};
};

class LocalLog {
 public:
  // Columns a KvStore must have for these topics (add them to its options).
  static std::vector<ColumnSpec> Columns(const LocalLogOptions& options);

  // Opens the log over `store`, which must outlive it, exporting its
  // metrics to `metrics` (may be null). Fails with FailedPrecondition if a
  // topic exists with another partition count (re-partitioning would send a
  // domain to another partition).
  static Status Open(const LocalLogOptions& options, KvStore* store, Metrics* metrics,
                     std::unique_ptr<LocalLog>* log);
  ~LocalLog();  // stops the writer after draining pending appends

  // REQUIRES: `topic` is one of the options' topics. Valid while the log is.
  LogAppender* Appender(std::string_view topic);

  // A reader of `topic` (NotFound for another topic). It must not outlive
  // the log.
  Status NewReader(std::string_view topic, std::unique_ptr<LogReader>* reader);

  // Membership of consumer group `group` on `topic`. With
  // `state_in_transaction`, members' commits write LogTransaction::state in
  // the same store write as their records and offsets: the state's columns
  // must then belong to this log's store. The GroupLog must not outlive the
  // log.
  Status NewGroupLog(std::string group, std::string_view topic, bool state_in_transaction,
                     std::unique_ptr<GroupLog>* out);

  // Offsets committed by `group` for `topic` (partitions with none are
  // absent).
  std::map<int32_t, int64_t> Committed(std::string_view group, std::string_view topic) const;

  // The highest offset any group committed, per partition of `topic`.
  std::map<int32_t, int64_t> MaxCommitted(std::string_view topic) const;
  // Makes `group` the only consumer group the log keeps offsets for:
  // every other group's are deleted and `group`'s on `topic` become
  // `offsets`, in one write, and the retention floors follow (0, keep
  // everything, where it then has none). Returns the names dropped. A
  // group nobody consumes as any more would otherwise hold the floor where
  // it left it for good. FailedPrecondition once a GroupLog was opened.
  Result<std::vector<std::string>> ResetGroups(std::string_view group, std::string_view topic,
                                               const std::map<int32_t, int64_t>& offsets);

  int32_t PartitionCount(std::string_view topic) const;
  // Offset the next record of the partition will get (durable end).
  int64_t EndOffset(std::string_view topic, int32_t partition) const;
  // Earliest offset still stored.
  int64_t StartOffset(std::string_view topic, int32_t partition) const;

  // The oldest offset a consumer of the partition still needs; retention
  // never deletes at or after it. Committing group offsets moves it (to the
  // lowest committed offset of any group); tests may set it directly.
  void SetRetentionFloor(std::string_view topic, int32_t partition, int64_t offset);
  // Deletes batches past retention (called periodically by the log itself,
  // public for tests).
  Status EnforceRetention(std::chrono::system_clock::time_point now);
  // Syncs the store's write-ahead log and records the ends in
  // LocalLogOptions::ends_file (called periodically by the log itself,
  // public for tests). Ok without an ends file.
  Status RecordEnds();

  // Stops accepting appends and waits for the pending ones to finish.
  void Close();

 private:
  explicit LocalLog(std::unique_ptr<LocalLogImpl> impl);
  std::unique_ptr<LocalLogImpl> impl_;
};

}  // namespace catchall
