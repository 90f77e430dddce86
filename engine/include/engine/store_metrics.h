// The store's background work as metrics: RocksDB's compaction backlog, its
// running flushes and compactions, and its write stalls. Operators read them
// to tell a slow tail caused by compaction from one caused by load
// (docs/operations.md, "Compaction and the tail").
#pragma once

namespace catchall {

class KvStore;
class Metrics;

// Registers catchall_store_* and refreshes them on every scrape.
// REQUIRES: `store` outlives every scrape of `metrics` (the node stops its
// listener before it closes the store).
void ExportStoreMetrics(const KvStore* store, Metrics* metrics);

}  // namespace catchall
