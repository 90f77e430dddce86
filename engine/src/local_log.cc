#include "engine/local_log.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "engine/log_probe.h"
#include "engine/partitioner.h"
#include "log_batch.h"

namespace catchall {
namespace {

constexpr std::string_view kMetaColumn = "log.meta";

std::string ColumnName(std::string_view topic) { return fmt::format("log:{}", topic); }

std::string BatchKey(int32_t partition, int64_t offset) {
  std::string key;
  key.reserve(12);
  PutBigEndian32(&key, static_cast<uint32_t>(partition));
  PutBigEndian64(&key, static_cast<uint64_t>(offset));
  return key;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class LocalLogAppender;

struct TopicState {
  std::string name;
  Column column;
  int32_t partitions = 0;
  std::unique_ptr<std::atomic<int64_t>[]> end;    // durable end offset
  std::unique_ptr<std::atomic<int64_t>[]> start;  // first stored offset
  std::unique_ptr<std::atomic<int64_t>[]> floor;  // retention floor
  std::vector<int64_t> next;                      // writer thread only
  std::vector<std::string> buffers;               // writer thread only
  std::vector<uint32_t> counts;                   // writer thread only
  std::unique_ptr<LocalLogAppender> appender;
};

struct PendingAppend {
  TopicState* topic = nullptr;
  std::vector<LogRecord> records;
  LogAppender::Callback done;
  size_t bytes = 0;
};

struct LocalLogImpl {
  LocalLogOptions options;
  KvStore* store = nullptr;
  LogProbe* probe = nullptr;
  Column meta;
  std::vector<std::unique_ptr<TopicState>> topics;

  std::mutex mu;
  std::condition_variable writer_cv;
  std::condition_variable drained_cv;
  std::vector<PendingAppend> queue;  // GUARDED_BY(mu)
  size_t pending_bytes = 0;          // GUARDED_BY(mu)
  bool closing = false;              // GUARDED_BY(mu)
  bool writing = false;              // GUARDED_BY(mu)
  Status write_error;                // GUARDED_BY(mu): last failed write
  std::thread writer;

  mutable std::mutex seq_mu;
  mutable std::condition_variable seq_cv;
  std::atomic<uint64_t> seq{0};

  std::chrono::steady_clock::time_point last_retention = std::chrono::steady_clock::now();

  TopicState* Find(std::string_view name) const {
    for (const auto& t : topics) {
      if (t->name == name) return t.get();
    }
    return nullptr;
  }

  // Records written but not yet below the retention floor (consumed).
  static int64_t Unconsumed(const TopicState& topic) {
    int64_t n = 0;
    for (int32_t p = 0; p < topic.partitions; ++p) {
      n += topic.end[p].load(std::memory_order_relaxed) -
           topic.floor[p].load(std::memory_order_relaxed);
    }
    return n;
  }

  Status Enqueue(TopicState* topic, std::vector<LogRecord> records, LogAppender::Callback done) {
    size_t bytes = 0;
    for (const auto& r : records) bytes += r.key.size() + r.value.size() + 8;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (closing) return Status::Unavailable("the local log is shutting down");
      if (!write_error.ok()) {
        return Status::Unavailable(
            fmt::format("the local log cannot write: {}", write_error.message()));
      }
      if (pending_bytes + bytes > options.max_pending_bytes && !queue.empty()) {
        if (probe) probe->OnRejected();
        return Status::Unavailable("the local log's write queue is full; retry shortly");
      }
      if (options.max_unconsumed_records > 0 &&
          Unconsumed(*topic) > options.max_unconsumed_records) {
        if (probe) probe->OnRejected();
        return Status::Unavailable(
            fmt::format("aggregation is more than {} events behind; retry shortly",
                        options.max_unconsumed_records));
      }
      pending_bytes += bytes;
      queue.push_back(PendingAppend{topic, std::move(records), std::move(done), bytes});
    }
    writer_cv.notify_one();
    return Status::Ok();
  }

  void WriterLoop() {
    std::vector<PendingAppend> work;
    KvWriteBatch batch;
    while (true) {
      size_t bytes = 0;
      {
        std::unique_lock<std::mutex> lock(mu);
        writer_cv.wait_for(lock, std::chrono::seconds(1),
                           [&] { return closing || !queue.empty(); });
        if (queue.empty()) {
          if (closing) break;
          lock.unlock();
          MaybeEnforceRetention();
          continue;
        }
        work.swap(queue);
        bytes = pending_bytes;
        pending_bytes = 0;
        writing = true;
      }
      WriteGroup(&work, &batch, bytes);
      work.clear();
      {
        std::lock_guard<std::mutex> lock(mu);
        writing = false;
      }
      drained_cv.notify_all();
      MaybeEnforceRetention();
    }
  }

  // Writes every pending append of `work` in one store write.
  void WriteGroup(std::vector<PendingAppend>* work, KvWriteBatch* batch, size_t bytes) {
    auto started = std::chrono::steady_clock::now();
    int64_t now_ms = NowMs();
    size_t records = 0;
    batch->Clear();
    for (auto& t : topics) {
      bool touched = false;
      for (const PendingAppend& p : *work) touched |= (p.topic == t.get());
      if (!touched) continue;
      for (PendingAppend& p : *work) {
        if (p.topic != t.get()) continue;
        for (const LogRecord& r : p.records) {
          int32_t part = PartitionForKey(r.key, t->partitions);
          std::string& buf = t->buffers[part];
          if (t->counts[part] == 0) StartLogBatch(now_ms, &buf);
          AppendLogBatchRecord(r.key, r.value, &buf);
          ++t->counts[part];
          ++records;
        }
      }
      for (int32_t part = 0; part < t->partitions; ++part) {
        if (t->counts[part] == 0) continue;
        std::string& buf = t->buffers[part];
        SetLogBatchCount(t->counts[part], &buf);
        batch->Put(t->column, BatchKey(part, t->next[part]), buf);
      }
    }
    Status s = store->Write(batch);
    for (auto& t : topics) {
      for (int32_t part = 0; part < t->partitions; ++part) {
        if (t->counts[part] == 0) continue;
        if (s.ok()) {
          t->next[part] += t->counts[part];
          t->end[part].store(t->next[part], std::memory_order_release);
        }
        t->counts[part] = 0;
      }
    }
    if (!s.ok()) {
      spdlog::error("local log write failed; refusing appends from now on: {}", s.ToString());
      std::lock_guard<std::mutex> lock(mu);
      write_error = s;
    } else {
      {
        std::lock_guard<std::mutex> lock(seq_mu);
        seq.fetch_add(1, std::memory_order_release);
      }
      seq_cv.notify_all();
    }
    if (probe) {
      probe->OnWrite(records, bytes,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - started),
                     s.ok());
    }
    for (PendingAppend& p : *work) p.done(s);
  }

  void MaybeEnforceRetention() {
    auto now = std::chrono::steady_clock::now();
    if (now - last_retention < std::chrono::seconds(30)) return;
    last_retention = now;
    Status s = EnforceRetention(std::chrono::system_clock::now());
    if (!s.ok()) spdlog::warn("local log retention failed: {}", s.ToString());
  }

  Status EnforceRetention(std::chrono::system_clock::time_point now) {
    int64_t cutoff = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch() -
                                                                           options.retention)
                         .count();
    for (auto& t : topics) {
      for (int32_t part = 0; part < t->partitions; ++part) {
        int64_t floor = t->floor[part].load(std::memory_order_acquire);
        auto it = store->NewIterator(t->column, BatchKey(part, 0), BatchKey(part + 1, 0));
        it->SeekToFirst();
        std::string keep_key;
        int64_t new_start = -1;
        std::string last_key;
        int64_t last_base = -1;
        for (; it->Valid(); it->Next()) {
          LogBatchHeader header;
          CATCHALL_RETURN_IF_ERROR(DecodeLogBatchHeader(it->value(), &header));
          auto base = static_cast<int64_t>(DecodeBigEndian64(it->key().data() + 4));
          if (header.timestamp_ms >= cutoff || base + header.count > floor) {
            keep_key.assign(it->key());
            new_start = base;
            break;
          }
          last_key.assign(it->key());
          last_base = base;
        }
        CATCHALL_RETURN_IF_ERROR(it->status());
        if (new_start < 0) {
          // Everything is expired and consumed. The newest batch stays: Open
          // recovers the end offset from it, so offsets never restart at 0.
          if (last_base < 0) continue;
          keep_key = std::move(last_key);
          new_start = last_base;
        }
        if (new_start <= t->start[part].load()) continue;
        KvWriteBatch del;
        del.DeleteRange(t->column, BatchKey(part, 0), keep_key);
        CATCHALL_RETURN_IF_ERROR(store->Write(&del));
        t->start[part].store(new_start);
      }
    }
    return Status::Ok();
  }
};

class LocalLogAppender : public LogAppender {
 public:
  LocalLogAppender(LocalLogImpl* log, TopicState* topic) : log_(log), topic_(topic) {}
  Status Append(std::vector<LogRecord> records, Callback done) override {
    return log_->Enqueue(topic_, std::move(records), std::move(done));
  }
  int32_t partition_count() const override { return topic_->partitions; }
  Status Health() const override {
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

std::vector<ColumnSpec> LocalLog::Columns(const LocalLogOptions& options) {
  std::vector<ColumnSpec> columns;
  columns.push_back({std::string(kMetaColumn), ColumnKind::kPlain, {}});
  for (const auto& t : options.topics) {
    columns.push_back({ColumnName(t.name), ColumnKind::kLog, {}});
  }
  return columns;
}

Status LocalLog::Open(const LocalLogOptions& options, KvStore* store, LogProbe* probe,
                      std::unique_ptr<LocalLog>* log) {
  auto impl = std::make_unique<LocalLogImpl>();
  impl->options = options;
  impl->store = store;
  impl->probe = probe;
  impl->meta = store->GetColumn(kMetaColumn);
  if (!impl->meta.valid()) return Status::Internal("local log columns missing from the store");
  for (const auto& spec : options.topics) {
    if (spec.partitions <= 0) {
      return Status::InvalidArgument(
          fmt::format("topic {} needs at least one partition", spec.name));
    }
    auto t = std::make_unique<TopicState>();
    t->name = spec.name;
    t->column = store->GetColumn(ColumnName(spec.name));
    t->partitions = spec.partitions;
    std::string meta_key = fmt::format("partitions/{}", spec.name);
    std::string stored;
    Status s = store->Get(impl->meta, meta_key, &stored);
    if (s.ok()) {
      int32_t existing = std::stoi(stored);
      if (existing != spec.partitions) {
        return Status::FailedPrecondition(fmt::format(
            "the local log's topic {} has {} partitions on disk but {} are configured; changing "
            "the count would move domains to other partitions. Use --partitions {} or a new "
            "--data-dir",
            spec.name, existing, spec.partitions, existing));
      }
    } else if (s.code() == Code::kNotFound) {
      KvWriteBatch batch;
      batch.Put(impl->meta, meta_key, std::to_string(spec.partitions));
      CATCHALL_RETURN_IF_ERROR(store->Write(&batch));
    } else {
      return s;
    }
    t->end = std::make_unique<std::atomic<int64_t>[]>(spec.partitions);
    t->start = std::make_unique<std::atomic<int64_t>[]>(spec.partitions);
    t->floor = std::make_unique<std::atomic<int64_t>[]>(spec.partitions);
    t->next.assign(spec.partitions, 0);
    t->buffers.resize(spec.partitions);
    t->counts.assign(spec.partitions, 0);
    for (int32_t part = 0; part < spec.partitions; ++part) {
      auto it = store->NewIterator(t->column, BatchKey(part, 0), BatchKey(part + 1, 0));
      int64_t end = 0;
      int64_t start = 0;
      it->SeekToFirst();
      if (it->Valid()) {
        start = static_cast<int64_t>(DecodeBigEndian64(it->key().data() + 4));
        it->SeekForPrev(BatchKey(part, INT64_MAX));
        LogBatchHeader header;
        CATCHALL_RETURN_IF_ERROR(DecodeLogBatchHeader(it->value(), &header));
        end = static_cast<int64_t>(DecodeBigEndian64(it->key().data() + 4)) + header.count;
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
  LocalLogImpl* raw = impl.get();
  impl->writer = std::thread([raw] { raw->WriterLoop(); });
  log->reset(new LocalLog(std::move(impl)));
  return Status::Ok();
}

LocalLog::LocalLog(std::unique_ptr<LocalLogImpl> impl) : impl_(std::move(impl)) {}

LocalLog::~LocalLog() { Close(); }

void LocalLog::Close() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->closing = true;
  }
  impl_->writer_cv.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
}

LogAppender* LocalLog::Appender(std::string_view topic) {
  TopicState* t = impl_->Find(topic);
  return t ? t->appender.get() : nullptr;
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

Status LocalLog::Read(std::string_view topic, int32_t partition, int64_t from, size_t max_records,
                      LocalReadResult* out) const {
  TopicState* t = impl_->Find(topic);
  if (!t || partition < 0 || partition >= t->partitions) {
    return Status::InvalidArgument(fmt::format("no partition {} of topic {}", partition, topic));
  }
  int64_t end = t->end[partition].load(std::memory_order_acquire);
  if (from >= end) return Status::Ok();
  auto it =
      impl_->store->NewIterator(t->column, BatchKey(partition, 0), BatchKey(partition + 1, 0));
  it->SeekForPrev(BatchKey(partition, from));
  if (!it->Valid()) it->Seek(BatchKey(partition, from));
  size_t added = 0;
  for (; it->Valid() && added < max_records; it->Next()) {
    auto base = static_cast<int64_t>(DecodeBigEndian64(it->key().data() + 4));
    if (base >= end) break;  // written by a group commit that is not yet published
    LogBatchHeader header;
    CATCHALL_RETURN_IF_ERROR(DecodeLogBatchHeader(it->value(), &header));
    if (base + header.count <= from) continue;
    const std::string& blob = out->blobs.emplace_back(it->value());
    LogBatchReader batch(blob);
    std::string_view key;
    std::string_view value;
    for (int64_t offset = base; batch.Next(&key, &value); ++offset) {
      if (offset < from) continue;
      out->records.push_back(ConsumedRecord{partition, offset, header.timestamp_ms, key, value});
      ++added;
    }
    CATCHALL_RETURN_IF_ERROR(batch.status());
  }
  return it->status();
}

uint64_t LocalLog::AppendSequence() const { return impl_->seq.load(std::memory_order_acquire); }

void LocalLog::WaitForAppend(uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->seq_mu);
  impl_->seq_cv.wait_for(lock, timeout,
                         [&] { return impl_->seq.load(std::memory_order_acquire) != seen; });
}

void LocalLog::SetRetentionFloor(std::string_view topic, int32_t partition, int64_t offset) {
  impl_->Find(topic)->floor[partition].store(offset, std::memory_order_release);
}

Status LocalLog::EnforceRetention(std::chrono::system_clock::time_point now) {
  return impl_->EnforceRetention(now);
}

}  // namespace catchall
