#include "log_tail_cache.h"

#include <algorithm>

namespace catchall {

LogTailCache::LogTailCache(int32_t partitions, size_t max_bytes)
    : max_bytes_(max_bytes), partitions_(static_cast<size_t>(std::max(partitions, 0))) {}

void LogTailCache::Add(int32_t partition, int64_t base, uint32_t count, std::string blob) {
  if (partition < 0 || static_cast<size_t>(partition) >= partitions_.size() || count == 0) return;
  auto shared = std::make_shared<const std::string>(std::move(blob));
  std::lock_guard<std::mutex> lock(mu_);
  Partition& p = partitions_[static_cast<size_t>(partition)];
  if (!p.batches.empty()) {
    const Entry& last = p.batches.back();
    if (last.base + last.count != base) {
      p.batches.clear();
      p.bytes = 0;
    }
  }
  p.bytes += shared->size();
  p.batches.push_back(Entry{base, count, std::move(shared)});
  while (p.batches.size() > 1 && p.bytes > max_bytes_) {
    p.bytes -= p.batches.front().blob->size();
    p.batches.pop_front();
  }
}

bool LogTailCache::Find(int32_t partition, int64_t from, size_t max_records,
                        std::vector<Entry>* out) const {
  if (partition < 0 || static_cast<size_t>(partition) >= partitions_.size()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  const Partition& p = partitions_[static_cast<size_t>(partition)];
  if (p.batches.empty() || from < p.batches.front().base) return false;
  // The first batch that ends after `from`. Readers follow the writer, so
  // it is nearly always one of the newest few: a few steps back from the
  // end beat a binary search over the deque's thousands of small batches
  // (that search was ~2% of `catchall serve` under single PUTs, by perf);
  // a reader further behind gets the binary search.
  auto ends_after_from = [from](const Entry& e) { return from < e.base + e.count; };
  auto it = p.batches.end();
  for (int steps = 0; steps < 8 && it != p.batches.begin() && ends_after_from(*std::prev(it));
       ++steps) {
    --it;
  }
  if (it != p.batches.begin() && ends_after_from(*std::prev(it))) {
    it = std::partition_point(p.batches.begin(), it,
                              [&](const Entry& e) { return !ends_after_from(e); });
  }
  size_t records = 0;
  for (; it != p.batches.end() && records < max_records; ++it) {
    records += static_cast<size_t>(it->base + it->count - std::max(from, it->base));
    out->push_back(*it);
  }
  return true;
}

}  // namespace catchall
