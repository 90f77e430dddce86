// IngestService: the write side of the HTTP API, mounted at /events.
//
//   PUT  /events/{domain}/delivered|bounced   one event   -> 204
//   POST /events                               a batch     -> 200 with counts
//
// It validates and normalizes events, turns each into a topic record (key:
// the normalized domain; value: the event as JSON) and appends it to the
// log. A success answer is sent only once the log reports the records
// durable. It keeps no state of its own, so any number of ingest nodes can
// run side by side. Thread-safe.
#pragma once

#include <cstddef>
#include <memory>

#include "engine/http.h"
#include "engine/log.h"

namespace catchall {

class Metrics;
class IngestProbe;

struct IngestOptions {
  size_t max_batch_items = 100000;
  // Rejected items described one by one in a batch answer; the rest are
  // only counted.
  size_t max_reported_errors = 1000;
};

class IngestService {
 public:
  // `log` must outlive the service. `metrics` may be null.
  IngestService(IngestOptions options, LogAppender* log, Metrics* metrics);
  ~IngestService();

  // The handler to mount at "/events".
  void Handle(const HttpRequest& request, const Responder& respond);

 private:
  void HandleSingle(const HttpRequest& request, std::string_view domain, std::string_view type,
                    const Responder& respond);
  void HandleBatch(const HttpRequest& request, const Responder& respond);

  IngestOptions options_;
  LogAppender* log_;
  std::unique_ptr<IngestProbe> probe_;
};

}  // namespace catchall
