#include "engine/store_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "engine/kv_store.h"
#include "engine/metrics.h"

namespace catchall {

void ExportStoreMetrics(const KvStore* store, Metrics* metrics) {
  auto& r = metrics->registry();
  auto gauge = [&r](const std::string& name, const std::string& help) -> prometheus::Gauge& {
    return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
  };
  auto counter = [&r](const std::string& name, const std::string& help) -> prometheus::Counter& {
    return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
  };
  auto& pending = gauge("catchall_store_pending_compaction_bytes",
                        "Bytes RocksDB estimates its compactions still have to rewrite");
  auto& compactions = gauge("catchall_store_running_compactions", "Compactions running now");
  auto& flushes = gauge("catchall_store_running_flushes", "Memtable flushes running now");
  auto& stalls = counter("catchall_store_write_stalls_total",
                         "Times RocksDB slowed or stopped writes because flushes or compactions "
                         "fell behind");
  auto& stalled = counter("catchall_store_write_stall_seconds_total",
                          "Time writes were slowed or stopped by RocksDB");
  auto& tables =
      gauge("catchall_store_table_bytes", "Bytes of the store's table files on disk, every column");
  auto& wal = gauge("catchall_store_wal_bytes",
                    "Bytes of the store's write-ahead log files on disk (a flush trims them once "
                    "they pass 4 x storage.write_buffer_mb)");
  // With storage.min_free_mb at 0 a flush that failed on a full disk
  // refused every write (507) while no metric moved (a probe).
  auto& write_failed = gauge("catchall_store_write_failed",
                             "1 while the store refuses every write after a failed write or a "
                             "failed flush or compaction (a full disk, I/O errors, a damaged "
                             "table); /readyz says why");
  // The store keeps running totals; the counters move by the difference.
  auto last = std::make_shared<KvBackgroundStats>();
  metrics->AddScrapeHook(
      [=, &pending, &compactions, &flushes, &stalls, &stalled, &tables, &wal, &write_failed] {
        write_failed.Set(store->WriteHealth().ok() ? 0 : 1);
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
