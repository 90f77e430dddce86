// Reading the local log: LocalLogImpl::Read and LocalLogReader.
#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "local_log_impl.h"
#include "log_batch.h"

namespace catchall {

namespace {

// Adds the records of the log batch `blob` (its first offset `base`, its
// header decoded) from offset `from` on to *out, whose records point into
// `blob`: the caller keeps it alive as long as *out. Returns how many.
Result<size_t> AddBatchRecords(std::string_view blob, const LogBatchHeader& header, int64_t base,
                               int32_t partition, int64_t from, RecordBatch* out) {
  size_t added = 0;
  LogBatchReader batch(blob);
  std::string_view key;
  std::string_view value;
  for (int64_t offset = base; batch.Next(&key, &value); ++offset) {
    if (offset < from) continue;
    out->Add(ConsumedRecord{partition, offset, header.timestamp_ms, key, value});
    ++added;
  }
  CATCHALL_RETURN_IF_ERROR(batch.status());
  return added;
}

void ReleaseSharedBlob(void* blob) {
  delete static_cast<std::shared_ptr<const std::string>*>(blob);
}

}  // namespace

Result<size_t> LocalLogImpl::Read(const TopicState& topic, int32_t partition, int64_t from,
                                  size_t max_records, RecordBatch* out) const {
  int64_t end = topic.end[partition].load(std::memory_order_acquire);
  if (from >= end) return size_t{0};
  std::vector<LogTailCache::Entry> cached;
  size_t added = 0;
  if (topic.tail->Find(partition, from, max_records, &cached)) {
    for (const LogTailCache::Entry& e : cached) {
      if (e.base >= end || added >= max_records) break;  // not yet published
      LogBatchHeader header;
      CATCHALL_RETURN_IF_ERROR(DecodeLogBatchHeader(*e.blob, &header));
      // Shared with the cache, the batch lives as long as *out holds it.
      out->Hold(new std::shared_ptr<const std::string>(e.blob), &ReleaseSharedBlob);
      Result<size_t> got = AddBatchRecords(*e.blob, header, e.base, partition, from, out);
      if (!got.ok()) return got.status();
      added += *got;
    }
    return added;
  }
  auto it = store->NewIterator(topic.column, LocalBatchKey(partition, 0),
                               LocalBatchKey(partition + 1, 0));
  it->SeekForPrev(LocalBatchKey(partition, from));
  if (!it->Valid()) it->Seek(LocalBatchKey(partition, from));
  for (; it->Valid() && added < max_records; it->Next()) {
    const int64_t base = LocalBatchBase(it->key());
    if (base >= end) break;  // written by a group commit that is not yet published
    LogBatchHeader header;
    CATCHALL_RETURN_IF_ERROR(DecodeLogBatchHeader(it->value(), &header));
    if (base + header.count <= from) continue;
    std::string_view blob = out->Keep(std::string(it->value()));
    Result<size_t> got = AddBatchRecords(blob, header, base, partition, from, out);
    if (!got.ok()) return got.status();
    added += *got;
  }
  CATCHALL_RETURN_IF_ERROR(it->status());
  return added;
}

Status LocalLogReader::Seek(int32_t partition, int64_t offset) {
  if (partition < 0 || partition >= topic_->partitions) {
    return Status::InvalidArgument(
        fmt::format("no partition {} of topic {}", partition, topic_->name));
  }
  int64_t start = topic_->start[partition].load(std::memory_order_acquire);
  positions_[partition] = offset == kOffsetBeginning ? start : std::max(offset, start);
  at_end_[partition] = false;
  return Status::Ok();
}

Status LocalLogReader::Unassign(int32_t partition) {
  positions_.erase(partition);
  at_end_.erase(partition);
  return Status::Ok();
}

Result<int64_t> LocalLogReader::EndOffset(int32_t partition) {
  if (partition < 0 || partition >= topic_->partitions) {
    return Status::InvalidArgument(
        fmt::format("no partition {} of topic {}", partition, topic_->name));
  }
  return topic_->end[partition].load(std::memory_order_acquire);
}

Result<size_t> LocalLogReader::ReadSome(size_t max, RecordBatch* out) {
  size_t added = 0;
  size_t n = positions_.size();
  if (n == 0) return added;
  // Start each pass at another partition, so that a busy one cannot starve
  // the others when `max` runs out.
  auto it = positions_.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(next_ % n));
  ++next_;
  for (size_t i = 0; i < n && added < max; ++i, ++it) {
    if (it == positions_.end()) it = positions_.begin();
    auto& [partition, position] = *it;
    Result<size_t> got = log_->Read(*topic_, partition, position, max - added, out);
    if (!got.ok()) return got.status();
    if (*got > 0) {
      position = out->records().back().offset + 1;
      at_end_[partition] = false;
      added += *got;
    } else if (!at_end_[partition] &&
               position >= topic_->end[partition].load(std::memory_order_acquire)) {
      at_end_[partition] = true;
      out->AddEndOfPartition(partition);
    }
  }
  return added;
}

Status LocalLogReader::Poll(std::chrono::milliseconds timeout, size_t max, RecordBatch* out) {
  auto started = std::chrono::steady_clock::now();
  uint64_t seen = log_->seq.load(std::memory_order_acquire);
  size_t ends_before = out->end_of_partition().size();
  Result<size_t> got = ReadSome(max, out);
  if (!got.ok()) return got.status();
  if (timeout.count() <= 0) return Status::Ok();
  if (*got == 0) {
    if (out->end_of_partition().size() > ends_before) return Status::Ok();
    log_->WaitForWrite(seen, timeout);
    got = ReadSome(max, out);
    if (!got.ok()) return got.status();
  }
  // A few records: wait once for more (LocalLogOptions::fetch_min_records).
  const LocalLogOptions& o = log_->options;
  if (*got == 0 || *got >= std::min(o.fetch_min_records, max) || o.fetch_max_wait.count() <= 0) {
    return Status::Ok();
  }
  // Within the poll's timeout, whatever the wait for the first write took.
  auto left = timeout - std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started);
  if (left.count() <= 0) return Status::Ok();
  std::this_thread::sleep_for(std::min(o.fetch_max_wait, left));
  return ReadSome(max - *got, out).status();
}

}  // namespace catchall
