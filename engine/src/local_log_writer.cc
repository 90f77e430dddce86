// The local log's writes: group-committed appends and transactions, one
// store write each, in the order they were queued, by whoever holds the
// writer's token: the writer thread, or an HTTP thread at the end of its
// round (appends only, so that a large transaction never stalls a round).
// Transactions that write only offsets and state are written by their
// committer instead (WriteStateTransaction), beside the group commits.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "engine/partitioner.h"
#include "local_log_impl.h"
#include "log_batch.h"
#include "log_probe.h"

namespace catchall {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// More than this waiting (batches of thousands of events) is written by the
// writer thread, not at the end of an HTTP thread's round.
constexpr size_t kMaxBytesWrittenInRound = 1 << 20;

}  // namespace

void LocalLogImpl::WriterLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu);
      // Appends queued on an HTTP thread wake no one: that thread writes
      // them at the end of its round, or whoever holds the token looks at
      // the queue when done. The timeout is the backstop.
      writer_cv.wait_for(lock, std::chrono::seconds(1),
                         [&] { return !writing && (closing || !queue.empty()); });
      if (writing) continue;
      if (queue.empty()) {
        if (closing) break;
        writing = true;  // retention deletes beside no group commit
        lock.unlock();
        MaybeEnforceRetention();
        FinishWriting(/*hand_on=*/false);
        continue;
      }
      TakeQueue(/*appends_only=*/false);
    }
    WriteTaken();
    // Also here, not only when idle: a writer thread kept busy (synced
    // writes, large batches) may never find the queue empty.
    MaybeEnforceRetention();
    FinishWriting(/*hand_on=*/false);
  }
}

void LocalLogImpl::TakeQueue(bool appends_only) {
  size_t n = queue.size();
  if (appends_only) {
    n = 0;
    while (n < queue.size() && !queue[n].txn) ++n;
  }
  size_t bytes = 0;
  if (n == queue.size()) {
    taken.swap(queue);
    bytes = pending_bytes;
  } else {
    for (size_t i = 0; i < n; ++i) {
      bytes += queue[i].bytes;
      taken.push_back(std::move(queue[i]));
    }
    queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(n));
  }
  pending_bytes -= bytes;
  writing = true;
}

void LocalLogImpl::WriteTaken() {
  // Appends are group-committed; a transaction is written alone, in its
  // place in the order.
  for (PendingWrite& w : taken) {
    if (!w.txn) {
      appends.push_back(std::move(w));
      continue;
    }
    if (!appends.empty()) WriteAppends(&appends, &batch);
    appends.clear();
    WriteTransaction(&w, &batch);
  }
  if (!appends.empty()) WriteAppends(&appends, &batch);
  appends.clear();
  taken.clear();
}

void LocalLogImpl::FinishWriting(bool hand_on) {
  // Notified under the lock: once a waiter sees the token free, Close() may
  // return and the log be destroyed, condition variables and all, before a
  // notify made after unlocking ran (a review).
  std::lock_guard<std::mutex> lock(mu);
  writing = false;
  // The writer thread waits for the token too; an HTTP thread hands on what
  // was queued while it wrote.
  if (hand_on && (closing || !queue.empty())) writer_cv.notify_one();
  drained_cv.notify_all();
}

void LocalLogImpl::WriteQueuedHere() {
  {
    std::unique_lock<std::mutex> lock(mu);
    // The token's holder looks at the queue again when it is done; a
    // transaction first in line is the writer thread's (it was woken).
    if (writing || queue.empty() || queue.front().txn) return;
    // A write that may block (synced, stalled, or many megabytes of batches)
    // would hold up every connection of this thread: the writer thread
    // takes it.
    if (pending_bytes > kMaxBytesWrittenInRound || store->WritesMayWait()) {
      lock.unlock();
      writer_cv.notify_one();
      return;
    }
    TakeQueue(/*appends_only=*/true);
  }
  WriteTaken();
  FinishWriting(/*hand_on=*/true);
}

void LocalLogFlusher::RunAtEndOfRound() { log_->WriteQueuedHere(); }

void LocalLogImpl::Published(const Status& s) {
  if (!s.ok()) return;
  {
    std::lock_guard<std::mutex> lock(seq_mu);
    seq.fetch_add(1, std::memory_order_release);
  }
  seq_cv.notify_all();
}

void LocalLogImpl::WriteAppends(std::vector<PendingWrite>* work, KvWriteBatch* batch) {
  auto started = std::chrono::steady_clock::now();
  int64_t now_ms = NowMs();
  size_t records = 0;
  // This group's own bytes: the round's total, passed in, went to the
  // first group before a transaction and none to the ones after it
  // (catchall_log_bytes_total undercounted; a review, thirteenth session).
  size_t bytes = 0;
  for (const PendingWrite& p : *work) bytes += p.bytes;
  batch->Clear();
  staged.clear();
  // Seals a partition's open batch: its records go in at the offset after
  // what this group commit staged before them.
  auto seal = [&](TopicState* t, int32_t part) {
    std::string& buf = t->buffers[part];
    SetLogBatchCount(t->counts[part], &buf);
    int64_t base = t->next[part] + t->sealed[part];
    t->sealed[part] += t->counts[part];
    batch->Put(t->column, LocalBatchKey(part, base), buf);
    staged.push_back(StagedBatch{t, part, base, t->counts[part], std::move(buf)});
    buf.clear();
    t->counts[part] = 0;
  };
  for (auto& t : topics) {
    bool touched = false;
    for (const PendingWrite& p : *work) touched |= (p.topic == t.get());
    if (!touched) continue;
    for (PendingWrite& p : *work) {
      if (p.topic != t.get()) continue;
      for (const LogRecord& r : p.records) {
        int32_t part = PartitionForKey(r.key, t->partitions);
        std::string& buf = t->buffers[part];
        if (t->counts[part] == 0) StartLogBatch(now_ms, &buf);
        AppendLogBatchRecord(r.key, r.value, &buf);
        ++t->counts[part];
        ++records;
        if (buf.size() >= options.max_stored_batch_bytes) seal(t.get(), part);
      }
    }
    for (int32_t part = 0; part < t->partitions; ++part) {
      if (t->counts[part] != 0) seal(t.get(), part);
    }
  }
  Status s = store->Write(batch);
  for (StagedBatch& b : staged) b.topic->sealed[b.partition] = 0;
  if (s.ok()) {
    for (StagedBatch& b : staged) {
      // Before the end moves: a reader that sees the new end finds the
      // batch in the cache or in the store.
      b.topic->tail->Add(b.partition, b.base, b.count, std::move(b.data));
      b.topic->next[b.partition] = b.base + b.count;
      b.topic->end[b.partition].store(b.base + b.count, std::memory_order_release);
    }
  }
  staged.clear();
  if (!s.ok()) {
    spdlog::error("local log write failed; refusing appends from now on: {}", s.ToString());
    std::lock_guard<std::mutex> lock(mu);
    write_error = s;
  }
  Published(s);
  if (probe) {
    probe->OnWrite(records, bytes,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - started),
                   s.ok());
  }
  for (PendingWrite& p : *work) p.done(s);
}

void LocalLogImpl::WriteTransaction(PendingWrite* write, KvWriteBatch* scratch) {
  PendingTransaction* pending = write->txn;
  LogTransaction* txn = pending->txn;
  KvWriteBatch* batch = txn->state ? txn->state : scratch;
  if (!txn->state) scratch->Clear();
  int64_t now_ms = NowMs();
  // One stored batch per (topic, partition) the transaction writes to.
  std::map<std::pair<TopicState*, int32_t>, std::pair<std::string, uint32_t>> blobs;
  Status s;
  for (const OutputRecord& r : txn->records) {
    TopicState* t = Find(r.topic);
    if (!t) {
      s = Status::InvalidArgument(fmt::format("the local log has no topic {}", r.topic));
      break;
    }
    int32_t part = r.partition >= 0 ? r.partition : PartitionForKey(r.key, t->partitions);
    if (part >= t->partitions) {
      s = Status::InvalidArgument(fmt::format("topic {} has no partition {}", r.topic, part));
      break;
    }
    auto& [blob, count] = blobs[{t, part}];
    if (count == 0) StartLogBatch(now_ms, &blob);
    AppendLogBatchRecord(r.key, r.value, &blob);
    ++count;
  }
  if (s.ok()) {
    for (auto& [where, blob] : blobs) {
      SetLogBatchCount(blob.second, &blob.first);
      batch->Put(where.first->column, LocalBatchKey(where.second, where.first->next[where.second]),
                 blob.first);
    }
    s = WriteOffsetsAndState(pending, batch);
  }
  if (s.ok()) {
    for (auto& [where, blob] : blobs) {
      auto [t, part] = where;
      t->tail->Add(part, t->next[part], blob.second, std::move(blob.first));
      t->next[part] += blob.second;
      t->end[part].store(t->next[part], std::memory_order_release);
      pending->ends[{t->name, part}] = t->next[part];
    }
    OnCommitted(pending->group, pending->input, txn->offsets);
  }
  Published(s);
  write->done(s);
}

Status LocalLogImpl::WriteOffsetsAndState(PendingTransaction* pending, KvWriteBatch* batch) {
  for (const auto& [part, offset] : pending->txn->offsets) {
    batch->Put(meta, CommittedOffsetKey(pending->group, pending->input->name, part),
               EncodeOffset(offset));
  }
  Status s = pending->guard([&] { return store->Write(batch); });
  if (s.code() == Code::kIoError || s.code() == Code::kCorruption) {
    spdlog::error("local log transaction failed: {}", s.ToString());
  }
  return s;
}

Status LocalLogImpl::WriteStateTransaction(PendingTransaction* pending) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (closing) return Status::Unavailable("the local log is shutting down");
    ++direct_writes;
  }
  KvWriteBatch scratch;
  Status s = WriteOffsetsAndState(pending, pending->txn->state ? pending->txn->state : &scratch);
  if (s.ok()) OnCommitted(pending->group, pending->input, pending->txn->offsets);
  Published(s);
  {
    // Under the lock, as in FinishWriting: Close() waits for this.
    std::lock_guard<std::mutex> lock(mu);
    --direct_writes;
    drained_cv.notify_all();
  }
  return s;
}

}  // namespace catchall
