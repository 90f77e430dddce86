// StatusMaterializer: a query node's copy of the changelog.
//
// Reads every partition of the compacted status topic through a LogReader
// (read_committed, so only committed aggregator transactions) and applies
// it with the ChangelogApplier the aggregators restore with, together with
// the offsets it has reached, in one atomic write per poll; a restart
// resumes from those offsets instead of re-reading the topic. It is ready
// once it has caught up with the end of every partition. Implements
// StatusReader for the query API. Thread-safe reads; one consuming thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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

class StatusMaterializer : public StatusReader {
 public:
  static std::vector<ColumnSpec> Columns();

  // Reads the changelog with `reader` (no partition assigned yet). `store`
  // must have Columns() and outlive this. `metrics` may be null. Reading
  // pauses while `may_consume` says no (the disk is low); Health() then
  // says why.
  StatusMaterializer(std::unique_ptr<LogReader> reader, std::string topic, KvStore* store,
                     Metrics* metrics, std::function<Status()> may_consume = {});
  ~StatusMaterializer() override;

  Status Start();
  void Stop();
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  Status Health() const;

  Result<DomainCounts> Get(std::string_view domain) const override;
  Status MultiGet(const std::vector<std::string>& domains,
                  std::vector<DomainCounts>* out) const override;

 private:
  void Run();

  std::string topic_;
  KvStore* store_;
  Column counts_;
  Column offsets_;
  CountsTable counts_table_;
  ChangelogApplier applier_;
  std::unique_ptr<MaterializerProbe> probe_;
  SkippedRecords skipped_;  // changelog records that did not decode
  std::unique_ptr<LogReader> reader_;
  std::function<Status()> may_consume_;
  int32_t partitions_ = 0;
  std::vector<bool> caught_up_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  mutable std::mutex mu_;
  Status health_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace catchall
