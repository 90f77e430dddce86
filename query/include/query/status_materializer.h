// StatusMaterializer: a query node's copy of the changelog.
//
// Reads every partition of the compacted status topic through a LogReader
// (read_committed, so only committed aggregator transactions), decoding
// each record as the aggregators' restore does (DecodeChangelogRecord).
// What it applies goes to an in-memory table first (RecentCounts); a
// checkpoint, on a thread of its own, writes that table and the offsets it
// reflects to the store in one atomic ingest, once enough domains changed
// or enough time passed. A restart resumes from the checkpoint's offsets
// and re-reads what came after. It is ready once it has caught up with the
// end of every partition. Implements StatusReader for the query API (the
// in-memory table first, then the store). Thread-safe reads; one consuming
// thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "engine/changelog.h"
#include "engine/counts_table.h"
#include "engine/kv_store.h"
#include "engine/log.h"
#include "engine/skipped_records.h"
#include "engine/status_reader.h"

namespace catchall {

class Metrics;
class MaterializerProbe;
class RecentCounts;

struct MaterializerOptions {
  // A checkpoint starts once this many domains changed since the last one
  // (memory: ~200 bytes each at a checkpoint's peak, docs/operations.md)...
  size_t checkpoint_domains = 1'000'000;
  // ...or this long after the last one, if anything changed: what a
  // restart re-reads from the changelog.
  std::chrono::milliseconds checkpoint_interval{60'000};
  // Run the checkpoint thread at the lowest CPU priority (nice 19): lookups
  // waiting for a core behind a checkpoint's sort raised GET P99 while
  // applying 100,000 records/s from 2.55-2.94 to 3.33-3.45 ms
  // (docs/benchmarks.md).
  bool checkpoint_low_priority = false;
};

// The name of the thread that writes checkpoints (as `top -H` shows it).
inline constexpr const char* kCheckpointThreadName = "query-ckpt";

class StatusMaterializer : public StatusReader {
 public:
  // The column of the partitions' checkpoints (and the topics the store
  // is bound to, app/node_common.h).
  static constexpr std::string_view kOffsetsColumn = "query.offsets";
  static std::vector<ColumnSpec> Columns();

  // Reads the changelog with `reader` (no partition assigned yet). `store`
  // must have Columns() and outlive this. `metrics` may be null. Reading
  // pauses while `may_consume` says no (the disk is low); Health() then
  // says why.
  StatusMaterializer(std::unique_ptr<LogReader> reader, std::string topic, KvStore* store,
                     Metrics* metrics, std::function<Status()> may_consume = {},
                     MaterializerOptions options = {});
  ~StatusMaterializer() override;

  Status Start();
  // Stops reading and checkpoints what is still only in memory.
  void Stop();
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  Status Health() const;

  Result<DomainCounts> Get(std::string_view domain) const override;
  Status MultiGet(const std::vector<std::string>& domains,
                  std::vector<DomainCounts>* out) const override;

 private:
  // One checkpoint: the offsets the frozen table reflects.
  struct Checkpoint {
    std::map<int32_t, int64_t> offsets;
  };

  void Run();
  void RunCheckpoints();
  // Freezes the in-memory table and hands it to the checkpoint thread.
  void StartCheckpoint();
  Status WriteCheckpoint(const Checkpoint& checkpoint);
  // Not OK while a checkpoint cannot be written: reading then pauses.
  Status CheckpointFailure() const;

  std::string topic_;
  KvStore* store_;
  Column counts_;
  Column offsets_;
  CountsTable counts_table_;
  MaterializerOptions options_;
  std::unique_ptr<MaterializerProbe> probe_;
  SkippedRecords skipped_;  // changelog records that did not decode
  std::unique_ptr<LogReader> reader_;
  std::function<Status()> may_consume_;
  int32_t partitions_ = 0;
  std::vector<bool> caught_up_;
  std::unique_ptr<RecentCounts> recent_;
  std::map<int32_t, int64_t> applied_;  // the consuming thread's: next offset per partition
  std::chrono::steady_clock::time_point last_checkpoint_;  // the consuming thread's
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  mutable std::mutex mu_;
  Status health_;  // GUARDED_BY(mu_)
  std::thread thread_;

  mutable std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  std::optional<Checkpoint> pending_;  // GUARDED_BY(checkpoint_mu_)
  bool stop_checkpoints_ = false;      // GUARDED_BY(checkpoint_mu_)
  Status checkpoint_failure_;          // GUARDED_BY(checkpoint_mu_): the last try's, while failing
  std::thread checkpoint_thread_;
};

}  // namespace catchall
