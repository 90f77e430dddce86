// The embedded-mode log: a group-committed Append (through the writer
// thread, until the callback says the records are durable) and Read.
#include <benchmark/benchmark.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/event.h"
#include "engine/local_log.h"
#include "engine/log.h"
#include "micro_util.h"

namespace catchall::micro {
namespace {

// A store and a LocalLog over it with one topic, in a scratch directory.
class ScratchLog {
 public:
  explicit ScratchLog(int32_t partitions) {
    options_.topics = {LocalTopicSpec{std::string(kEventsTopic), partitions}};
    status_ = KvStore::Open(StoreOptions(dir_.path(), LocalLog::Columns(options_)), &kv_);
    if (status_.ok()) status_ = LocalLog::Open(options_, kv_.get(), nullptr, &log_);
  }

  const Status& status() const { return status_; }
  LocalLog& log() { return *log_; }
  KvStore& kv() { return *kv_; }

 private:
  LocalLogOptions options_;
  ScopedTempDir dir_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<LocalLog> log_;  // destroyed first: drains the writer
  Status status_;
};

// `count` records as ingest makes them (key: the domain; value: the event).
std::vector<LogRecord> EventRecords(size_t count, uint64_t first_domain) {
  std::vector<LogRecord> records;
  records.reserve(count);
  Event event;
  for (size_t i = 0; i < count; ++i) {
    event.domain = DomainName(first_domain + i);
    LogRecord& r = records.emplace_back();
    r.key = event.domain;
    AppendEventJson(event, &r.value);
  }
  return records;
}

// Waits for one Append's callback.
class AppendWaiter {
 public:
  LogAppender::Callback Callback() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = false;
    }
    return [this](const Status& s) {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = s;
      done_ = true;
      cv_.notify_one();
    };
  }
  Status Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    return status_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // GUARDED_BY(mu_)
  Status status_;      // GUARDED_BY(mu_)
};

// One Append of state.range(0) records over 8 partitions and the wait for
// its callback: one group commit by the writer thread (one RocksDB write of
// up to 8 batches). Wall time, since the work happens on the writer thread.
// The records are copied for each Append with the timer paused.
void BM_LocalLogAppend(benchmark::State& state) {
  const auto count = static_cast<size_t>(state.range(0));
  ScratchLog scratch(kPartitions);
  if (!scratch.status().ok()) {
    state.SkipWithError(scratch.status().ToString().c_str());
    return;
  }
  LogAppender* appender = scratch.log().Appender(kEventsTopic);
  const std::vector<LogRecord> records = EventRecords(count, 0);
  size_t bytes = 0;
  for (const LogRecord& r : records) bytes += r.key.size() + r.value.size();
  AppendWaiter waiter;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<LogRecord> copy = records;
    LogAppender::Callback done = waiter.Callback();
    state.ResumeTiming();
    Status s = appender->Append(std::move(copy), std::move(done));
    if (s.ok()) s = waiter.Wait();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(count));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}
BENCHMARK(BM_LocalLogAppend)->Arg(1)->Arg(1000)->UseRealTime()->Unit(benchmark::kMicrosecond);

// A LogReader poll of up to 8192 records from one partition holding 256 batches of 1000 records, at
// a different offset each time. `flushed`: the batches are in SST files (read through the block
// cache) rather than in the memtable, as for a reader that lags.
void BM_LocalLogRead(benchmark::State& state, bool flushed) {
  constexpr size_t kChunk = 8192;
  constexpr size_t kBatches = 256;
  constexpr size_t kPerBatch = 1000;
  ScratchLog scratch(1);
  if (!scratch.status().ok()) {
    state.SkipWithError(scratch.status().ToString().c_str());
    return;
  }
  LogAppender* appender = scratch.log().Appender(kEventsTopic);
  AppendWaiter waiter;
  for (size_t b = 0; b < kBatches; ++b) {
    Status s = appender->Append(EventRecords(kPerBatch, b * kPerBatch), waiter.Callback());
    if (s.ok()) s = waiter.Wait();
    if (s.ok() && flushed && b + 1 == kBatches) s = scratch.kv().Flush();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
  }
  const auto end = static_cast<int64_t>(kBatches * kPerBatch);
  std::unique_ptr<LogReader> reader;
  Status opened = scratch.log().NewReader(kEventsTopic, &reader);
  if (!opened.ok()) {
    state.SkipWithError(opened.ToString().c_str());
    return;
  }
  RecordBatch out;
  int64_t from = 0;
  int64_t records = 0;
  for (auto _ : state) {
    out.Clear();
    Status s = reader->Seek(0, from);
    if (s.ok()) s = reader->Poll(std::chrono::milliseconds(0), kChunk, &out);
    if (!s.ok() || out.records().size() < kChunk) {
      state.SkipWithError(s.ok() ? "short read" : s.ToString().c_str());
      break;
    }
    records += static_cast<int64_t>(out.records().size());
    benchmark::DoNotOptimize(out.records().data());
    from = (from + 12345) % (end - static_cast<int64_t>(2 * kChunk));
  }
  state.SetItemsProcessed(records);
  state.counters["records_per_read"] =
      benchmark::Counter(static_cast<double>(records), benchmark::Counter::kAvgIterations);
}
BENCHMARK_CAPTURE(BM_LocalLogRead, memtable, false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_LocalLogRead, flushed, true)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace catchall::micro
