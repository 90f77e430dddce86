#include "engine/store_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>

#include "engine/kv_store.h"
#include "engine/metrics.h"

namespace catchall {

void ExportStoreMetrics(const KvStore* store, Metrics* metrics) {
  auto& r = metrics->registry();
  auto& pending = prometheus::BuildGauge()
                      .Name("catchall_store_pending_compaction_bytes")
                      .Help("Bytes RocksDB estimates its compactions still have to rewrite")
                      .Register(r)
                      .Add({});
  auto& compactions = prometheus::BuildGauge()
                          .Name("catchall_store_running_compactions")
                          .Help("Compactions running now")
                          .Register(r)
                          .Add({});
  auto& flushes = prometheus::BuildGauge()
                      .Name("catchall_store_running_flushes")
                      .Help("Memtable flushes running now")
                      .Register(r)
                      .Add({});
  auto& stalls = prometheus::BuildCounter()
                     .Name("catchall_store_write_stalls_total")
                     .Help(
                         "Times RocksDB slowed or stopped writes because flushes or "
                         "compactions fell behind")
                     .Register(r)
                     .Add({});
  auto& stalled = prometheus::BuildCounter()
                      .Name("catchall_store_write_stall_seconds_total")
                      .Help("Time writes were slowed or stopped by RocksDB")
                      .Register(r)
                      .Add({});
  auto& tables = prometheus::BuildGauge()
                     .Name("catchall_store_table_bytes")
                     .Help("Bytes of the store's table files on disk, every column")
                     .Register(r)
                     .Add({});
  auto& wal = prometheus::BuildGauge()
                  .Name("catchall_store_wal_bytes")
                  .Help(
                      "Bytes of the store's write-ahead log files on disk (a flush trims them "
                      "once they pass 4 x storage.write_buffer_mb)")
                  .Register(r)
                  .Add({});
  // The store keeps running totals; the counters move by the difference.
  auto last = std::make_shared<KvBackgroundStats>();
  metrics->AddScrapeHook([=, &pending, &compactions, &flushes, &stalls, &stalled, &tables, &wal] {
    KvBackgroundStats now = store->BackgroundStats();
    tables.Set(static_cast<double>(now.table_bytes));
    wal.Set(static_cast<double>(now.wal_bytes));
    pending.Set(static_cast<double>(now.pending_compaction_bytes));
    compactions.Set(static_cast<double>(now.running_compactions));
    flushes.Set(static_cast<double>(now.running_flushes));
    if (now.write_stalls > last->write_stalls) {
      stalls.Increment(static_cast<double>(now.write_stalls - last->write_stalls));
    }
    if (now.write_stall_seconds > last->write_stall_seconds) {
      stalled.Increment(now.write_stall_seconds - last->write_stall_seconds);
    }
    *last = now;
  });
}

}  // namespace catchall
