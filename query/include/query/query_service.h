// QueryService: the read side of the HTTP API, mounted at /domains.
//
//   GET  /domains/{domain}   -> {"domain","status","delivered","bounced"}
//   POST /domains/lookup     -> {"results":[...]} for up to N domains
//
// Reads counters from a StatusReader and applies the status rules
// (domain_status.h) with the configured threshold. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/http.h"
#include "engine/status_reader.h"

namespace catchall {

class Metrics;
class QueryProbe;

struct QueryOptions {
  uint64_t catchall_threshold = 1000;
  size_t max_lookup_domains = 1000;
};

class QueryService {
 public:
  // `reader` must outlive the service. `metrics` may be null.
  QueryService(QueryOptions options, const StatusReader* reader, Metrics* metrics);
  ~QueryService();

  // The handler to mount at "/domains".
  void Handle(const HttpRequest& request, const Responder& respond);
  // The paths Handle serves ("/domains/{domain}", "/domains/lookup"); it
  // answers any other path under "/domains" with a 404. For
  // HttpRouter::Mount, so that such a path is a 404 with or without a key.
  static bool ServesPath(std::string_view path);
  // The methods it serves on some path (HttpRouter::Mount).
  static constexpr std::string_view kMethods = "GET, POST";

 private:
  HttpResponse GetOne(std::string_view segment) const;
  HttpResponse Lookup(const HttpRequest& request) const;

  QueryOptions options_;
  const StatusReader* reader_;
  std::unique_ptr<QueryProbe> probe_;
};

}  // namespace catchall
