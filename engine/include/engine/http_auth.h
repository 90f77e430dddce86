// HttpAuth: the API-key gate in front of a router's handlers (DESIGN.md,
// "Authentication"). It owns the current key set, which SetKeys swaps whole,
// and counts refusals in catchall_http_auth_denied_total. A Node makes one
// and installs it with Install only when keys are configured, so that a
// router without auth pays one branch per request.
//
// Threads: Check runs on the HTTP I/O threads while SetKeys runs on the
// signal thread; a request sees either the old set or the new one, whole.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "engine/api_keys.h"
#include "engine/http.h"

namespace catchall {

class AuthProbe;
class Metrics;

class HttpAuth {
 public:
  // Registers the denial counters, at 0, even if auth stays off: the
  // metric exists on every role. `metrics` must outlive this.
  explicit HttpAuth(Metrics& metrics);
  ~HttpAuth();
  HttpAuth(const HttpAuth&) = delete;
  HttpAuth& operator=(const HttpAuth&) = delete;

  // Replaces the key set; requests already past the gate are not affected.
  void SetKeys(ApiKeys keys);
  // Number of keys in the current set.
  size_t KeyCount() const;

  // Makes `router` ask Check before each handler of a mounted route.
  // REQUIRES: before the server starts; this outlives the router's use.
  void Install(HttpRouter* router) const;

  // nullopt lets the request through; otherwise the refusal to answer: 401
  // with `WWW-Authenticate: Bearer` (missing, malformed or unknown key) or
  // 403 (the key lacks the route's scope), each with a JSON error body.
  std::optional<HttpResponse> Check(const HttpRequest& request, std::string_view route) const;

 private:
  std::shared_ptr<const ApiKeys> Current() const;

  std::unique_ptr<AuthProbe> probe_;
  mutable std::mutex mu_;
  std::shared_ptr<const ApiKeys> keys_;  // GUARDED_BY(mu_); never null
};

}  // namespace catchall
