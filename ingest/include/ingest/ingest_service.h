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
}  // namespace catchall

namespace boost::asio {
class thread_pool;  // NOLINT(readability-identifier-naming): Boost's name
}  // namespace boost::asio

namespace catchall {

struct IngestOptions {
  size_t max_batch_items = 100000;
  // Rejected items described one by one in a batch answer; the rest are
  // only counted.
  size_t max_reported_errors = 1000;
  // A batch whose body has at least this many bytes is parsed and
  // validated on the service's own thread rather than on the caller's (an
  // HTTP I/O thread, which serves every other connection of its share
  // meanwhile): one 16 MB batch took ~0.5 s there, and held up every
  // request behind it. 0: every batch on the caller's thread.
  size_t offload_batch_bytes = size_t{64} * 1024;
};

class IngestService {
 public:
  // `log` must outlive the service. `metrics` may be null.
  IngestService(IngestOptions options, LogAppender* log, Metrics* metrics);
  ~IngestService();

  // The handler to mount at "/events". `request`'s views must stay valid
  // until `respond` is called (a large batch is answered from another
  // thread after Handle returns).
  void Handle(const HttpRequest& request, const Responder& respond);
  // The paths Handle serves ("/events", "/events/{domain}/{type}"); it
  // answers any other path under "/events" with a 404. For
  // HttpRouter::Mount, so that such a path is a 404 with or without a key.
  static bool ServesPath(std::string_view path);
  // The methods it serves on some path (HttpRouter::Mount).
  static constexpr std::string_view kMethods = "POST, PUT";

  // Finishes the batches handed to the service's thread (each appended and
  // answered) and takes no more. Call before the log closes; the
  // destructor does it too.
  void Stop();

 private:
  void HandleSingle(const HttpRequest& request, std::string_view domain, std::string_view type,
                    const Responder& respond);
  void HandleBatch(const HttpRequest& request, const Responder& respond);

  IngestOptions options_;
  LogAppender* log_;
  std::unique_ptr<IngestProbe> probe_;
  std::unique_ptr<boost::asio::thread_pool> batch_thread_;  // null if nothing is offloaded
};

}  // namespace catchall
