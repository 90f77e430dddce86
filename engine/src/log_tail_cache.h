// LogTailCache: the newest stored batches of each partition of a local-log
// topic, kept in memory.
//
// Why: the aggregation loop reads right behind the writer, and every poll
// through RocksDB made an iterator per partition and a SeekForPrev across the
// memtables and level-0 files (~10% of `catchall serve`'s CPU under single
// PUTs, by perf). Served from here, a poll that is caught up touches no
// store at all. Older offsets still come from the store.
//
// The batches of a partition are contiguous (each starts where the previous
// ended); the writer adds them after the store write and before it
// publishes the new end, so a reader never sees a batch here that the store
// does not have. Thread-safe. Private to the local log.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace catchall {

class LogTailCache {
 public:
  struct Entry {
    int64_t base = 0;  // offset of the batch's first record
    uint32_t count = 0;
    std::shared_ptr<const std::string> blob;  // the stored log batch
  };

  // Keeps up to `max_bytes` of batches per partition (at least the newest).
  LogTailCache(int32_t partitions, size_t max_bytes);

  // A batch of `count` records from `base` was stored. A batch that does not
  // continue the partition's newest replaces what the cache held of it.
  void Add(int32_t partition, int64_t base, uint32_t count, std::string blob);

  // The cached batches holding offset `from` and after, oldest first, until
  // they hold `max_records` from `from` on; false (and nothing added) when
  // `from` is older than what is cached.
  bool Find(int32_t partition, int64_t from, size_t max_records, std::vector<Entry>* out) const;

 private:
  struct Partition {
    std::deque<Entry> batches;
    size_t bytes = 0;
  };
  size_t max_bytes_;
  mutable std::mutex mu_;
  std::vector<Partition> partitions_;  // GUARDED_BY(mu_)
};

}  // namespace catchall
