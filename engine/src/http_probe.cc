#include "http_probe.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

#include "engine/metrics.h"

namespace catchall {
namespace {
constexpr int kStatusCodes[] = {200, 204, 400, 401, 403, 404, 405, 408, 413, 414,
                                415, 417, 422, 431, 500, 501, 503, 505, 507};
}

size_t HttpProbe::StatusIndex(int status) {
  static_assert(std::size(kStatusCodes) + 1 == kStatuses, "one slot per code, plus \"other\"");
  for (size_t i = 0; i < std::size(kStatusCodes); ++i) {
    if (kStatusCodes[i] == status) return i;
  }
  return kStatuses - 1;
}

HttpProbe::HttpProbe(Metrics& metrics, const HttpRouter* router) {
  auto& r = metrics.registry();
  requests_family_ = &prometheus::BuildCounter()
                          .Name("catchall_http_requests_total")
                          .Help("HTTP requests answered, by route, method and status code")
                          .Register(r);
  auto& latency = prometheus::BuildHistogram()
                      .Name("catchall_http_request_seconds")
                      .Help("Time from a request's arrival to its response, by route")
                      .Register(r);
  size_t routes = router ? router->RouteCount() + 1 : 1;
  for (size_t i = 0; i < routes; ++i) {
    route_labels_.push_back(router && i < router->RouteCount() ? router->PrefixAt(i) : "other");
  }
  requests_ = decltype(requests_)(routes);
  for (auto& per_method : requests_) {
    for (auto& per_status : per_method) {
      for (auto& c : per_status) c.store(nullptr);
    }
  }
  for (size_t i = 0; i < routes; ++i) {
    latency_.push_back(&latency.Add({{"route", route_labels_[i]}}, LatencyBuckets()));
  }
  connections_ = &prometheus::BuildGauge()
                      .Name("catchall_http_connections")
                      .Help("Open HTTP connections")
                      .Register(r)
                      .Add({});
  connections_total_ = &prometheus::BuildCounter()
                            .Name("catchall_http_connections_total")
                            .Help("HTTP connections accepted")
                            .Register(r)
                            .Add({});
  rejected_ = &prometheus::BuildCounter()
                   .Name("catchall_http_connections_rejected_total")
                   .Help("Connections refused with 503 because the connection limit was reached")
                   .Register(r)
                   .Add({});
  accept_failures_ =
      &prometheus::BuildCounter()
           .Name("catchall_http_accept_failures_total")
           .Help(
               "Failed accepts of new connections (out of file descriptors, most likely: "
               "raise the open file limit); accepting pauses 100 ms after each")
           .Register(r)
           .Add({});
  body_budget_refusals_ =
      &prometheus::BuildCounter()
           .Name("catchall_http_body_budget_refusals_total")
           .Help(
               "Requests answered 503 server_busy before their body was read: the request "
               "bodies held across connections were at server.max_inflight_body_bytes")
           .Register(r)
           .Add({});
  body_bytes_ = &prometheus::BuildGauge()
                     .Name("catchall_http_request_body_bytes")
                     .Help(
                         "Request body bytes held in memory now, across connections (counted "
                         "against server.max_inflight_body_bytes)")
                     .Register(r)
                     .Add({});
  tls_handshake_failures_ =
      &prometheus::BuildCounter()
           .Name("catchall_http_tls_handshake_failures_total")
           .Help(
               "TLS connections closed because the handshake failed (plain HTTP to a TLS "
               "port, a protocol older than TLS 1.2, a client that rejects the certificate)")
           .Register(r)
           .Add({});
  write_timeouts_ =
      &prometheus::BuildCounter()
           .Name("catchall_http_write_timeouts_total")
           .Help(
               "Connections closed because the client did not take a response (or a 100 "
               "Continue) within server.io_timeout_ms: it stopped reading")
           .Register(r)
           .Add({});
}

void HttpProbe::OnRequest(size_t route, HttpMethod method, int status,
                          std::chrono::steady_clock::duration took) {
  if (route >= requests_.size()) route = requests_.size() - 1;
  size_t m = static_cast<size_t>(method);
  size_t s = StatusIndex(status);
  auto& slot = requests_[route][m][s];
  prometheus::Counter* counter = slot.load(std::memory_order_acquire);
  if (!counter) {
    std::lock_guard<std::mutex> lock(resolve_mu_);
    counter = slot.load(std::memory_order_relaxed);
    if (!counter) {
      std::string code = s == kStatuses - 1 ? "other" : std::to_string(kStatusCodes[s]);
      counter = &requests_family_->Add({{"route", route_labels_[route]},
                                        {"method", std::string(HttpMethodName(method))},
                                        {"code", code}});
      slot.store(counter, std::memory_order_release);
    }
  }
  counter->Increment();
  latency_[route]->Observe(std::chrono::duration<double>(took).count());
}

void HttpProbe::OnConnectionOpened() {
  connections_->Increment();
  connections_total_->Increment();
}
void HttpProbe::OnConnectionClosed() { connections_->Decrement(); }
void HttpProbe::OnConnectionRejected() { rejected_->Increment(); }
void HttpProbe::OnAcceptFailed() { accept_failures_->Increment(); }
void HttpProbe::OnBodyBudgetRefused() { body_budget_refusals_->Increment(); }
void HttpProbe::AddBodyBytes(size_t bytes) { body_bytes_->Increment(static_cast<double>(bytes)); }

void HttpProbe::SubtractBodyBytes(size_t bytes) {
  body_bytes_->Decrement(static_cast<double>(bytes));
}

void HttpProbe::OnTlsHandshakeFailed() { tls_handshake_failures_->Increment(); }
void HttpProbe::OnWriteTimedOut() { write_timeouts_->Increment(); }

}  // namespace catchall
