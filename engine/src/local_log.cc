// LocalLog: opening, appending, committed offsets and retention. The writer
// thread is in local_log_writer.cc, reading in local_log_reader.cc, groups
// in local_group.cc.
#include "engine/local_log.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <limits>
#include <optional>

#include "engine/disk_monitor.h"
#include "engine/partitioner.h"
#include "engine/this_thread.h"
#include "local_log_impl.h"
#include "log_batch.h"
#include "log_probe.h"

namespace catchall {
namespace {

constexpr std::string_view kMetaColumn = "log.meta";
// Newest batches kept in memory for readers right behind the writer
// (LogTailCache), per topic, shared out among its partitions.
constexpr size_t kTailCacheBytesPerTopic = 32 << 20;
constexpr std::string_view kCommittedPrefix = "committed/";

std::string ColumnName(std::string_view topic) { return fmt::format("log:{}", topic); }

}  // namespace

std::string LocalBatchKey(int32_t partition, int64_t offset) {
  std::string key;
  key.reserve(12);
  PutBigEndian32(&key, static_cast<uint32_t>(partition));
  PutBigEndian64(&key, static_cast<uint64_t>(offset));
  return key;
}

int64_t LocalBatchBase(std::string_view key) {
  return static_cast<int64_t>(DecodeBigEndian64(key.data() + 4));
}

Status ReadBatchAtOrBefore(KvIterator* it, int32_t partition, int64_t offset, int64_t* base,
                           LogBatchHeader* header) {
  it->SeekForPrev(LocalBatchKey(partition, offset));
  if (!it->Valid()) {
    // A read error leaves the iterator invalid too; reading it anyway was
    // RocksDB's assertion, not the damage report (a review).
    CATCHALL_RETURN_IF_ERROR(it->status());
    return Status::Corruption(fmt::format("no stored batch at or before offset {}", offset));
  }
  CATCHALL_RETURN_IF_ERROR(DecodeLogBatchHeader(it->value(), header));
  *base = LocalBatchBase(it->key());
  return Status::Ok();
}

std::string CommittedOffsetKey(std::string_view group, std::string_view topic, int32_t partition) {
  // Group names may hold '/', topic names may not (Kafka's rules), so the
  // key splits from the right.
  return fmt::format("{}{}/{}/{}", kCommittedPrefix, group, topic, partition);
}

std::string EncodeOffset(int64_t offset) {
  std::string v;
  PutFixed64(&v, static_cast<uint64_t>(offset));
  return v;
}

class LocalLogAppender : public LogAppender {
 public:
  LocalLogAppender(LocalLogImpl* log, TopicState* topic) : log_(log), topic_(topic) {}
  Status Append(std::vector<LogRecord> records, Callback done) override {
    return log_->Enqueue(topic_, std::move(records), std::move(done));
  }
  int32_t partition_count() const override { return topic_->partitions; }
  Status Health() const override {
    if (log_->options.disk) CATCHALL_RETURN_IF_ERROR(log_->options.disk->Check());
    std::lock_guard<std::mutex> lock(log_->mu);
    if (log_->closing) return Status::Unavailable("the local log is shutting down");
    return log_->write_error;
  }
  Status Flush(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(log_->mu);
    bool done = log_->drained_cv.wait_for(lock, timeout,
                                          [&] { return log_->queue.empty() && !log_->writing; });
    return done ? Status::Ok() : Status::Timeout("local log flush timed out");
  }

 private:
  LocalLogImpl* log_;
  TopicState* topic_;
};

TopicState* LocalLogImpl::Find(std::string_view name) const {
  for (const auto& t : topics) {
    if (t->name == name) return t.get();
  }
  return nullptr;
}

namespace {
// Records written but not yet below the retention floor (consumed).
int64_t Unconsumed(const TopicState& topic) {
  if (!topic.consumed_by_groups) return 0;  // nobody consumes it to fall behind
  int64_t n = 0;
  for (int32_t p = 0; p < topic.partitions; ++p) {
    // Below the start nothing is stored to consume (a floor set back, as
    // ResetGroups may, does not count deleted records).
    n += topic.end[p].load(std::memory_order_relaxed) -
         std::max(topic.floor[p].load(std::memory_order_relaxed),
                  topic.start[p].load(std::memory_order_relaxed));
  }
  return n;
}
}  // namespace

Status LocalLogImpl::Enqueue(TopicState* topic, std::vector<LogRecord> records,
                             LogAppender::Callback done) {
  size_t bytes = 0;
  for (const auto& r : records) bytes += r.key.size() + r.value.size() + 8;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (closing) return Status::Unavailable("the local log is shutting down");
    if (!write_error.ok()) {
      // A write that met a full disk keeps its code: every later one was
      // answered 503 log_unavailable, though the disk is what refuses them
      // (507, as the contract has it; a review, thirteenth session).
      return Status(write_error.code() == Code::kNoSpace ? Code::kNoSpace : Code::kUnavailable,
                    fmt::format("the local log cannot write: {}", write_error.message()));
    }
    if (pending_bytes + bytes > options.max_pending_bytes && !queue.empty()) {
      if (probe) probe->OnRejected();
      return Status::Unavailable("the local log's write queue is full; retry shortly");
    }
    if (options.disk) {
      Status space = options.disk->Admit(bytes);
      if (!space.ok()) return space;
    }
    if (options.max_unconsumed_records > 0 && Unconsumed(*topic) > options.max_unconsumed_records) {
      if (probe) probe->OnRejected();
      return Status::Unavailable(
          fmt::format("aggregation is more than {} events behind; retry shortly",
                      options.max_unconsumed_records));
    }
    pending_bytes += bytes;
    queue.push_back(PendingWrite{topic, std::move(records), nullptr, std::move(done), bytes});
  }
  // On an HTTP thread the write waits for the end of the round, and serves
  // every request of it (and the thread answers them without a hand-off);
  // elsewhere the writer thread wakes.
  if (!DeferToEndOfRound(&flusher)) writer_cv.notify_one();
  return Status::Ok();
}

Status LocalLogImpl::EnqueueTransaction(PendingTransaction* txn, LogAppender::Callback done) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (closing) return Status::Unavailable("the local log is shutting down");
    // Transactions are not refused for a full queue or a backlog: they are
    // what drains the backlog.
    queue.push_back(PendingWrite{nullptr, {}, txn, std::move(done), 0});
  }
  writer_cv.notify_one();
  return Status::Ok();
}

std::map<int32_t, int64_t> LocalLogImpl::CommittedOffsets(std::string_view group,
                                                          std::string_view topic) const {
  std::lock_guard<std::mutex> lock(committed_mu);
  auto g = committed.find(group);
  if (g == committed.end()) return {};
  auto t = g->second.find(topic);
  return t == g->second.end() ? std::map<int32_t, int64_t>() : t->second;
}

std::map<int32_t, int64_t> LocalLogImpl::MaxCommitted(std::string_view topic) const {
  std::lock_guard<std::mutex> lock(committed_mu);
  std::map<int32_t, int64_t> most;
  for (const auto& [group, topics_of_group] : committed) {
    auto t = topics_of_group.find(topic);
    if (t == topics_of_group.end()) continue;
    for (const auto& [part, offset] : t->second) {
      auto [it, added] = most.emplace(part, offset);
      if (!added) it->second = std::max(it->second, offset);
    }
  }
  return most;
}

void LocalLogImpl::OnCommitted(const std::string& group, TopicState* topic,
                               const std::map<int32_t, int64_t>& offsets) {
  std::lock_guard<std::mutex> lock(committed_mu);
  auto& mine = committed[group][topic->name];
  for (const auto& [part, offset] : offsets) mine[part] = offset;
  // A partition's floor is the lowest offset any group still needs.
  for (const auto& [part, offset] : offsets) {
    int64_t floor = offset;
    for (const auto& [name, topics_of_group] : committed) {
      auto t = topics_of_group.find(topic->name);
      if (t == topics_of_group.end()) continue;
      auto o = t->second.find(part);
      if (o != t->second.end()) floor = std::min(floor, o->second);
    }
    topic->floor[part].store(floor, std::memory_order_release);
  }
}

Result<std::vector<std::string>> LocalLogImpl::ResetGroups(
    std::string_view keep, TopicState* topic, const std::map<int32_t, int64_t>& offsets) {
  {
    std::lock_guard<std::mutex> lock(groups_mu);
    if (!groups.empty()) {
      return Status::FailedPrecondition("the local log's groups are reset only before any opens");
    }
  }
  std::lock_guard<std::mutex> lock(committed_mu);
  std::vector<std::string> dropped;
  KvWriteBatch batch;
  for (const auto& [group, topics_of_group] : committed) {
    if (group == keep) continue;
    dropped.push_back(group);
    for (const auto& [name, of_topic] : topics_of_group) {
      for (const auto& [part, offset] : of_topic) {
        batch.Delete(meta, CommittedOffsetKey(group, name, part));
      }
    }
  }
  for (const auto& [part, offset] : offsets) {
    batch.Put(meta, CommittedOffsetKey(keep, topic->name, part), EncodeOffset(offset));
  }
  CATCHALL_RETURN_IF_ERROR(store->Write(&batch));
  for (const std::string& group : dropped) committed.erase(group);
  auto& mine = committed[std::string(keep)][topic->name];
  for (const auto& [part, offset] : offsets) mine[part] = offset;
  // Each floor is now the kept group's offset, or 0 (keep everything) where
  // it has none.
  const auto& kept = committed.find(keep)->second;
  for (auto& t : topics) {
    auto of_topic = kept.find(t->name);
    for (int32_t part = 0; part < t->partitions; ++part) {
      int64_t floor = 0;
      if (of_topic != kept.end()) {
        auto o = of_topic->second.find(part);
        if (o != of_topic->second.end()) floor = o->second;
      }
      t->floor[part].store(floor, std::memory_order_release);
    }
  }
  return dropped;
}

void LocalLogImpl::WaitForWrite(uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(seq_mu);
  seq_cv.wait_for(lock, timeout, [&] { return seq.load(std::memory_order_acquire) != seen; });
}

void LocalLogImpl::MaybeEnforceRetention() {
  auto now = std::chrono::steady_clock::now();
  if (now - last_retention < std::chrono::seconds(30)) return;
  last_retention = now;
  Status s = EnforceRetention(std::chrono::system_clock::now());
  if (!s.ok()) spdlog::warn("local log retention failed: {}", s.ToString());
}

Status LocalLogImpl::EnforceRetention(std::chrono::system_clock::time_point now) {
  int64_t cutoff = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch() -
                                                                         options.retention)
                       .count();
  // Each partition on its own: one that cannot be read (a damaged batch)
  // used to end the pass, so no later partition or topic was ever deleted
  // and the log grew until the disk was full (a review, seventeenth
  // session).
  Status first;
  for (auto& t : topics) {
    for (int32_t part = 0; part < t->partitions; ++part) {
      Status s = EnforceRetention(t.get(), part, cutoff);
      if (!s.ok() && first.ok()) {
        first =
            Status(s.code(), fmt::format("topic {} partition {}: {}", t->name, part, s.message()));
      }
    }
  }
  return first;
}

Status LocalLogImpl::EnforceRetention(TopicState* t, int32_t part, int64_t cutoff_ms) {
  // A topic no group consumes goes by time alone.
  const int64_t floor = t->consumed_by_groups ? t->floor[part].load(std::memory_order_acquire)
                                              : std::numeric_limits<int64_t>::max();
  const int64_t start = t->start[part].load();
  const int64_t end = t->end[part].load(std::memory_order_acquire);
  if (start >= end) return Status::Ok();
  auto it = store->NewIterator(t->column, LocalBatchKey(part, 0), LocalBatchKey(part + 1, 0));
  // The stored batch holding `offset` (base and count), or an error.
  auto batch_at = [&](int64_t offset, int64_t* base, LogBatchHeader* header) -> Status {
    CATCHALL_RETURN_IF_ERROR(ReadBatchAtOrBefore(it.get(), part, offset, base, header));
    if (*base + header->count <= offset) {
      return Status::Corruption(
          fmt::format("the stored batch at offset {} ({} records) does not "
                      "hold offset {}",
                      *base, header->count, offset));
    }
    return Status::Ok();
  };
  // The first batch to keep: the oldest one that is young or holds a record
  // at or after the floor. Both only grow with the offset (batches are
  // stamped with the writer's clock as they are written), so a bisection
  // over the offsets finds it in a few dozen reads. Reading every expired
  // batch, as before, read 30 s of the log's data per pass while holding
  // the writer's token, and every append waited for it (a review).
  int64_t lo = start;
  int64_t hi = end;  // the first kept batch's base is in [lo, hi]; end: none
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    int64_t base = 0;
    LogBatchHeader header;
    CATCHALL_RETURN_IF_ERROR(batch_at(mid, &base, &header));
    if (header.timestamp_ms >= cutoff_ms || base + header.count > floor) {
      hi = base;
    } else {
      lo = base + header.count;
    }
  }
  int64_t new_start = lo;
  if (new_start >= end) {
    // Everything is expired and consumed. The newest batch stays: Open
    // recovers the end offset from it, so offsets never restart at 0.
    int64_t base = 0;
    LogBatchHeader header;
    CATCHALL_RETURN_IF_ERROR(batch_at(end - 1, &base, &header));
    new_start = base;
  }
  if (new_start <= start) return Status::Ok();
  KvWriteBatch del;
  del.DeleteRange(t->column, LocalBatchKey(part, 0), LocalBatchKey(part, new_start));
  CATCHALL_RETURN_IF_ERROR(store->Write(&del));
  t->start[part].store(new_start);
  return Status::Ok();
}

std::vector<ColumnSpec> LocalLog::Columns(const LocalLogOptions& options) {
  std::vector<ColumnSpec> columns;
  columns.push_back({std::string(kMetaColumn), ColumnKind::kPlain, {}});
  for (const auto& t : options.topics) {
    columns.push_back({ColumnName(t.name), ColumnKind::kLog, {}});
  }
  return columns;
}

namespace {

// Reads the committed offsets stored in the meta column.
Status LoadCommitted(LocalLogImpl* impl) {
  std::string lower(kCommittedPrefix);
  std::string upper = lower;
  upper.back() = static_cast<char>(upper.back() + 1);
  auto it = impl->store->NewIterator(impl->meta, lower, upper);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key = it->key().substr(kCommittedPrefix.size());
    size_t last = key.rfind('/');
    size_t middle = last == std::string_view::npos ? last : key.rfind('/', last - 1);
    if (middle == std::string_view::npos || it->value().size() != 8) {
      return Status::Corruption(fmt::format("bad committed offset entry '{}'", it->key()));
    }
    std::string group(key.substr(0, middle));
    std::string_view topic = key.substr(middle + 1, last - middle - 1);
    std::string_view digits = key.substr(last + 1);
    int32_t part = -1;
    auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), part);
    if (err != std::errc() || end != digits.data() + digits.size()) {
      return Status::Corruption(fmt::format("bad committed offset entry '{}'", it->key()));
    }
    TopicState* t = impl->Find(topic);
    if (!t || part < 0 || part >= t->partitions) continue;  // a topic no longer configured
    impl->OnCommitted(group, t, {{part, static_cast<int64_t>(DecodeFixed64(it->value().data()))}});
  }
  return it->status();
}

}  // namespace

namespace {

// RocksDB opens a store that lost writes (a deleted or cut write-ahead log,
// a MANIFEST cut short) as an older, consistent one: a probe's server
// started ready with up to all of 60,000 acknowledged events gone and
// nothing logged. The ends recorded beside it (after syncing the log) say
// what it held at least.
// The ends recorded before this start; none without a file (a new data
// dir, or an older version's). Read before Open writes anything.
Result<LogEnds> ReadRecordedEnds(const LocalLogOptions& options) {
  if (options.ends_file.empty()) return LogEnds();
  Result<std::optional<LogEnds>> recorded = ReadLogEnds(options.ends_file);
  if (!recorded.ok() && options.accept_lost_ends) {
    spdlog::warn("local log: {}; not checked (storage.recover_damaged_wal)",
                 recorded.status().message());
    return LogEnds();
  }
  if (!recorded.ok()) {
    return Status(recorded.status().code(),
                  fmt::format("{}; move it aside to start without the check, or start once with "
                              "storage.recover_damaged_wal=true",
                              recorded.status().message()));
  }
  return recorded->value_or(LogEnds());
}

// A loss, refused unless accepted (then logged at error level).
Status LostWrites(const LocalLogOptions& options, const std::string& what) {
  std::string lost = fmt::format(
      "{} (recorded in '{}' once the write-ahead log was synced): the store lost acknowledged "
      "writes (a deleted or cut write-ahead log *.log, a MANIFEST cut short, or files of "
      "different moments)",
      what, options.ends_file);
  if (!options.accept_lost_ends) return Status::Corruption(lost);
  spdlog::error("{}; opened anyway (storage.recover_damaged_wal): those writes are gone", lost);
  return Status::Ok();
}

Status CheckRecordedEnds(const LocalLogImpl& impl, const LogEnds& recorded) {
  for (const auto& [where, recorded_end] : recorded) {
    const auto& [topic, part] = where;
    const TopicState* t = nullptr;
    for (const auto& candidate : impl.topics) {
      if (candidate->name == topic) t = candidate.get();
    }
    if (t == nullptr) continue;  // a topic this log no longer has
    if (part >= t->partitions) {
      // The store kept fewer partitions than were recorded.
      if (recorded_end == 0) continue;
      CATCHALL_RETURN_IF_ERROR(LostWrites(
          impl.options, fmt::format("the local log's topic {} has {} partitions, but partition "
                                    "{} was stored up to offset {}",
                                    topic, t->partitions, part, recorded_end)));
      continue;
    }
    const int64_t end = t->end[part].load();
    if (end >= recorded_end) continue;
    CATCHALL_RETURN_IF_ERROR(LostWrites(
        impl.options, fmt::format("the local log's topic {} partition {} ends at offset {}, but "
                                  "offset {} was stored",
                                  topic, part, end, recorded_end)));
  }
  return Status::Ok();
}

}  // namespace

Status LocalLog::Open(const LocalLogOptions& options, KvStore* store, Metrics* metrics,
                      std::unique_ptr<LocalLog>* log) {
  auto impl = std::make_unique<LocalLogImpl>();
  impl->options = options;
  impl->store = store;
  if (metrics) impl->probe = std::make_unique<LogProbe>(*metrics);
  impl->meta = store->GetColumn(kMetaColumn);
  if (!impl->meta.valid()) return Status::Internal("local log columns missing from the store");
  Result<LogEnds> recorded = ReadRecordedEnds(options);
  if (!recorded.ok()) return recorded.status();
  for (const auto& spec : options.topics) {
    if (spec.partitions <= 0) {
      return Status::InvalidArgument(
          fmt::format("topic {} needs at least one partition", spec.name));
    }
    auto t = std::make_unique<TopicState>();
    t->name = spec.name;
    t->column = store->GetColumn(ColumnName(spec.name));
    t->partitions = spec.partitions;
    t->consumed_by_groups = spec.consumed_by_groups;
    std::string meta_key = fmt::format("partitions/{}", spec.name);
    std::string stored;
    Status s = store->Get(impl->meta, meta_key, &stored);
    if (s.ok()) {
      int32_t existing = 0;
      std::from_chars(stored.data(), stored.data() + stored.size(), existing);
      if (existing < 1) {
        return Status::Corruption(
            fmt::format("the local log's topic {} has an unreadable partition count on disk: '{}'",
                        spec.name, stored));
      }
      if (existing != spec.partitions && !spec.keep_count_on_disk) {
        return Status::FailedPrecondition(fmt::format(
            "the local log's topic {} has {} partitions on disk but {} are configured; changing "
            "the count would move domains to other partitions. Use --partitions {} or a new "
            "--data-dir",
            spec.name, existing, spec.partitions, existing));
      }
      t->partitions = existing;
    } else if (s.code() == Code::kNotFound) {
      // A count lost with the rest: writing the configured one would hide
      // what was recorded of the partitions beyond it (a review).
      bool stored = false;
      for (auto it = recorded->lower_bound({spec.name, 0});
           it != recorded->end() && it->first.first == spec.name; ++it) {
        stored |= it->second > 0;
      }
      if (stored) {
        CATCHALL_RETURN_IF_ERROR(
            LostWrites(options, fmt::format("the local log's topic {} has no partition count on "
                                            "disk, but its partitions were stored",
                                            spec.name)));
      }
      KvWriteBatch batch;
      batch.Put(impl->meta, meta_key, std::to_string(spec.partitions));
      CATCHALL_RETURN_IF_ERROR(store->Write(&batch));
    } else {
      return s;
    }
    t->end = std::make_unique<std::atomic<int64_t>[]>(t->partitions);
    t->start = std::make_unique<std::atomic<int64_t>[]>(t->partitions);
    t->floor = std::make_unique<std::atomic<int64_t>[]>(t->partitions);
    t->next.assign(t->partitions, 0);
    t->buffers.resize(t->partitions);
    t->tail = std::make_unique<LogTailCache>(
        t->partitions, kTailCacheBytesPerTopic / static_cast<size_t>(t->partitions));
    t->counts.assign(t->partitions, 0);
    t->sealed.assign(t->partitions, 0);
    for (int32_t part = 0; part < t->partitions; ++part) {
      auto it = store->NewIterator(t->column, LocalBatchKey(part, 0), LocalBatchKey(part + 1, 0));
      int64_t end = 0;
      int64_t start = 0;
      it->SeekToFirst();
      if (it->Valid()) {
        start = LocalBatchBase(it->key());
        int64_t newest = 0;
        LogBatchHeader header;
        if (Status s = ReadBatchAtOrBefore(it.get(), part, INT64_MAX, &newest, &header); !s.ok()) {
          return Status(s.code(), fmt::format("topic {} partition {}: its newest batch cannot be "
                                              "read: {}",
                                              t->name, part, s.message()));
        }
        end = newest + header.count;
      }
      CATCHALL_RETURN_IF_ERROR(it->status());
      t->end[part].store(end);
      t->start[part].store(start);
      t->floor[part].store(0);
      t->next[part] = end;
    }
    t->appender = std::make_unique<LocalLogAppender>(impl.get(), t.get());
    impl->topics.push_back(std::move(t));
  }
  CATCHALL_RETURN_IF_ERROR(CheckRecordedEnds(*impl, *recorded));
  CATCHALL_RETURN_IF_ERROR(LoadCommitted(impl.get()));
  LocalLogImpl* raw = impl.get();
  impl->writer = std::thread([raw] {
    NameThisThread("log-writer");
    raw->WriterLoop();
  });
  if (!options.ends_file.empty()) {
    // An accepted loss is recorded at once: a crash before the first
    // recording would otherwise meet the old ends again.
    if (options.accept_lost_ends) {
      if (Status s = raw->RecordEnds(); !s.ok()) {
        spdlog::warn("local log: cannot record its ends in '{}': {}", options.ends_file,
                     s.ToString());
      }
    }
    impl->ends_recorder = std::thread([raw] {
      NameThisThread("log-ends");
      raw->EndsLoop();
    });
  }
  log->reset(new LocalLog(std::move(impl)));
  return Status::Ok();
}

Status LocalLogImpl::RecordEnds() {
  if (options.ends_file.empty()) return Status::Ok();
  std::lock_guard<std::mutex> one_at_a_time(record_mu);
  // Read before the sync: the sync makes at least these durable.
  LogEnds ends;
  for (const auto& t : topics) {
    for (int32_t part = 0; part < t->partitions; ++part) {
      ends[{t->name, part}] = t->end[part].load(std::memory_order_acquire);
    }
  }
  {
    std::lock_guard<std::mutex> lock(ends_mu);
    if (ends == recorded) return Status::Ok();
  }
  CATCHALL_RETURN_IF_ERROR(store->SyncWal());
  CATCHALL_RETURN_IF_ERROR(WriteLogEnds(options.ends_file, ends));
  std::lock_guard<std::mutex> lock(ends_mu);
  recorded = std::move(ends);
  return Status::Ok();
}

void LocalLogImpl::EndsLoop() {
  // Not time_point::min(): `now - min()` overflows, and no warning came
  // (a review).
  std::optional<std::chrono::steady_clock::time_point> last_warning;
  std::unique_lock<std::mutex> lock(ends_mu);
  while (!ends_cv.wait_for(lock, options.ends_interval, [&] { return ends_closing; })) {
    lock.unlock();
    Status s = RecordEnds();
    // A full disk fails this at every interval; once a minute is enough.
    auto now = std::chrono::steady_clock::now();
    if (!s.ok() && (!last_warning || now - *last_warning >= std::chrono::minutes(1))) {
      spdlog::warn("local log: cannot record its ends in '{}' (retrying every {} ms): {}",
                   options.ends_file, options.ends_interval.count(), s.ToString());
      last_warning = now;
    }
    lock.lock();
  }
}

LocalLog::LocalLog(std::unique_ptr<LocalLogImpl> impl) : impl_(std::move(impl)) {}

Status LocalLog::RecordEnds() { return impl_->RecordEnds(); }

LocalLog::~LocalLog() { Close(); }

void LocalLog::Close() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->closing = true;
  }
  impl_->writer_cv.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
  if (impl_->ends_recorder.joinable()) {
    {
      std::lock_guard<std::mutex> lock(impl_->ends_mu);
      impl_->ends_closing = true;
    }
    impl_->ends_cv.notify_all();
    impl_->ends_recorder.join();
    // What the writer wrote last, recorded too.
    if (Status s = impl_->RecordEnds(); !s.ok()) {
      spdlog::warn("local log: cannot record its ends in '{}': {}", impl_->options.ends_file,
                   s.ToString());
    }
  }
  // A state-only transaction is written by its committer's thread.
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->drained_cv.wait(lock, [&] { return impl_->direct_writes == 0; });
}

LogAppender* LocalLog::Appender(std::string_view topic) {
  TopicState* t = impl_->Find(topic);
  return t ? t->appender.get() : nullptr;
}

Status LocalLog::NewReader(std::string_view topic, std::unique_ptr<LogReader>* reader) {
  TopicState* t = impl_->Find(topic);
  if (!t) return Status::NotFound(fmt::format("the local log has no topic {}", topic));
  *reader = std::make_unique<LocalLogReader>(impl_.get(), t);
  return Status::Ok();
}

std::map<int32_t, int64_t> LocalLog::Committed(std::string_view group,
                                               std::string_view topic) const {
  return impl_->CommittedOffsets(group, topic);
}

Result<std::vector<std::string>> LocalLog::ResetGroups(std::string_view group,
                                                       std::string_view topic,
                                                       const std::map<int32_t, int64_t>& offsets) {
  TopicState* t = impl_->Find(topic);
  if (!t) return Status::NotFound(fmt::format("the local log has no topic {}", topic));
  return impl_->ResetGroups(group, t, offsets);
}

std::map<int32_t, int64_t> LocalLog::MaxCommitted(std::string_view topic) const {
  return impl_->MaxCommitted(topic);
}

int32_t LocalLog::PartitionCount(std::string_view topic) const {
  TopicState* t = impl_->Find(topic);
  return t ? t->partitions : 0;
}

int64_t LocalLog::EndOffset(std::string_view topic, int32_t partition) const {
  return impl_->Find(topic)->end[partition].load(std::memory_order_acquire);
}

int64_t LocalLog::StartOffset(std::string_view topic, int32_t partition) const {
  return impl_->Find(topic)->start[partition].load(std::memory_order_acquire);
}

void LocalLog::SetRetentionFloor(std::string_view topic, int32_t partition, int64_t offset) {
  impl_->Find(topic)->floor[partition].store(offset, std::memory_order_release);
}

Status LocalLog::EnforceRetention(std::chrono::system_clock::time_point now) {
  return impl_->EnforceRetention(now);
}

}  // namespace catchall
