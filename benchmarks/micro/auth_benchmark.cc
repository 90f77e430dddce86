// The API-key gate's cost per request (engine/http_auth.h): HttpRouter::Handle
// of a single PUT's target without a gate (auth off: the one branch the
// hot path pays), and with the gate and a valid key among 1 or 100 keys
// (one SHA-256 of the key plus a constant-time compare per configured key).
#include <benchmark/benchmark.h>

#include <string>

#include "engine/api_keys.h"
#include "engine/http.h"
#include "engine/http_auth.h"
#include "engine/metrics.h"

namespace catchall::micro {
namespace {

// The product's routes, with handlers that answer at once like a log that
// completes the append inside Append.
HttpRouter MakeRouter() {
  HttpRouter router;
  for (const char* route : {"/events", "/domains", "/metrics", "/healthz", "/readyz"}) {
    router.Mount(route, [](const HttpRequest&, const Responder& respond) {
      respond(HttpResponse::NoContent());
    });
  }
  return router;
}

void Run(benchmark::State& state, const HttpRouter& router, const HttpRequest& request) {
  int status = 0;
  for (auto _ : state) {
    router.Handle(request, [&](HttpResponse&& r) { status = r.status; });
    benchmark::DoNotOptimize(status);
  }
  if (status != 204) state.SkipWithError("the request was not let through");
}

HttpRequest PutRequest(const std::string* authorization) {
  HttpRequest request;
  request.method = HttpMethod::kPut;
  request.target = "/events/abcdefghijklmn.com/delivered";
  if (authorization != nullptr) request.headers.push_back({"Authorization", *authorization});
  return request;
}

void BM_RouterHandlePut_NoAuth(benchmark::State& state) {
  HttpRouter router = MakeRouter();
  Run(state, router, PutRequest(nullptr));
}
BENCHMARK(BM_RouterHandlePut_NoAuth);

void BM_RouterHandlePut_Auth(benchmark::State& state) {
  const auto keys_count = static_cast<int>(state.range(0));
  std::string text;
  for (int i = 0; i < keys_count; ++i) {
    text += Sha256Hex("key-" + std::to_string(i)) + " ingest\n";
  }
  ApiKeys keys;
  if (!keys.Add(text, "bench").ok()) state.SkipWithError("keys do not parse");
  Metrics metrics;
  HttpAuth auth(metrics);
  auth.SetKeys(std::move(keys));
  HttpRouter router = MakeRouter();
  auth.Install(&router);
  // The last key listed (the compare walks all of them anyway).
  const std::string header = "Bearer key-" + std::to_string(keys_count - 1);
  Run(state, router, PutRequest(&header));
}
BENCHMARK(BM_RouterHandlePut_Auth)->Arg(1)->Arg(100);

}  // namespace
}  // namespace catchall::micro
