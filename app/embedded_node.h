// EmbeddedNode: `catchall serve`. Ingest, aggregation and query in one
// process over a local log and state in one KvStore under the data dir. The
// aggregation is the same loop as cluster mode's, a one-member group of the
// local log that commits its state inside the log's own writes.
#pragma once

#include <memory>
#include <string>

#include "engine/config.h"
#include "engine/env.h"
#include "engine/status.h"
#include "node.h"

namespace catchall {

class AggregationLoop;
class CounterStore;
class DiskMonitor;
class GroupLog;
class IngestService;
class KvStore;
class LocalLog;
class QueryService;

class EmbeddedNode final : public Node {
 public:
  explicit EmbeddedNode(Config config, Env* env = Env::Default());
  ~EmbeddedNode() override;

 protected:
  Status Open() override;
  Status Readiness() const override;
  void Close() override;
  std::string Describe() const override;

 private:
  Env* env_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<DiskMonitor> disk_;
  std::unique_ptr<LocalLog> log_;
  std::unique_ptr<CounterStore> counters_;
  std::unique_ptr<GroupLog> group_log_;
  std::unique_ptr<AggregationLoop> aggregation_;
  std::unique_ptr<IngestService> ingest_;
  std::unique_ptr<QueryService> query_;
};

}  // namespace catchall
