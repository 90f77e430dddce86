// EmbeddedNode: `catchall serve`. Ingest, aggregation and query in one
// process over a local log and state in one KvStore under the data dir.
#pragma once

#include <memory>
#include <string>

#include "engine/config.h"
#include "engine/http.h"
#include "engine/metrics.h"
#include "engine/status.h"
#include "node.h"

namespace catchall {

class KvStore;
class LocalLog;
class LogProbe;
class CounterStore;
class EmbeddedAggregation;
class IngestService;
class QueryService;
class HttpServer;

class EmbeddedNode final : public Node {
 public:
  explicit EmbeddedNode(Config config);
  ~EmbeddedNode() override;

  // Opens the data dir, resumes aggregation and starts serving. Writes the
  // bound port to `port_file` if not empty.
  Status Start(const std::string& port_file) override;
  // Drains requests in flight, commits state and closes the store.
  void Shutdown() override;

 private:
  Config config_;
  Metrics metrics_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<LogProbe> log_probe_;
  std::unique_ptr<LocalLog> log_;
  std::unique_ptr<CounterStore> counters_;
  std::unique_ptr<EmbeddedAggregation> aggregation_;
  std::unique_ptr<IngestService> ingest_;
  std::unique_ptr<QueryService> query_;
  HttpRouter router_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace catchall
