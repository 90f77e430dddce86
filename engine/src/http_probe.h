// Metrics of the HTTP server: requests by route, method and status, their
// latency, and connections.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "engine/http.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace catchall {

class Metrics;

class HttpProbe {
 public:
  HttpProbe(Metrics& metrics, const HttpRouter* router);
  // Thread-safe.
  void OnRequest(size_t route, HttpMethod method, int status,
                 std::chrono::steady_clock::duration took);
  void OnConnectionOpened();
  void OnConnectionClosed();
  void OnConnectionRejected();
  // An accept that failed (out of file descriptors, most likely).
  void OnAcceptFailed();
  // A request refused because the bodies in flight were at their limit.
  void OnBodyBudgetRefused();
  // Request body bytes the connections hold now. Moved by each request's
  // bytes: set to a total from several I/O threads, it could keep a stale
  // one (a review).
  void AddBodyBytes(size_t bytes);
  void SubtractBodyBytes(size_t bytes);
  void OnTlsHandshakeFailed();
  // A connection closed because the client did not take what was written
  // to it within the io timeout.
  void OnWriteTimedOut();

 private:
  static constexpr size_t kMethods = 8;
  static constexpr size_t kStatuses = 20;  // the codes we answer, plus "other"
  static size_t StatusIndex(int status);

  prometheus::Family<prometheus::Counter>* requests_family_;
  std::vector<std::string> route_labels_;
  // Counters resolved once per (route, method, status) so that the hot path
  // does not look up labels.
  std::vector<std::array<std::array<std::atomic<prometheus::Counter*>, kStatuses>, kMethods>>
      requests_;
  std::mutex resolve_mu_;
  std::vector<prometheus::Histogram*> latency_;  // per route
  prometheus::Gauge* connections_;
  prometheus::Counter* connections_total_;
  prometheus::Counter* rejected_;
  prometheus::Counter* accept_failures_;
  prometheus::Counter* body_budget_refusals_;
  prometheus::Gauge* body_bytes_;
  prometheus::Counter* tls_handshake_failures_;
  prometheus::Counter* write_timeouts_;
};

}  // namespace catchall
