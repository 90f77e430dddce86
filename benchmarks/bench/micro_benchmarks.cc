// Micro-benchmarks of catchall-bench's per-request work, to keep the client
// far cheaper than the servers it measures.
#include <benchmark/benchmark.h>

#include <boost/asio/buffer.hpp>

#include "bench/histogram.h"
#include "bench/response_parser.h"
#include "bench/workload.h"

namespace catchall::bench {
namespace {

void BM_HistogramRecord(benchmark::State& state) {
  Histogram h;
  SplitMix64 rng(1);
  for (auto _ : state) h.Record(rng.Below(100'000'000));
  benchmark::DoNotOptimize(h.count());
}
BENCHMARK(BM_HistogramRecord);

void BM_ChallengeNext(benchmark::State& state) {
  ChallengeWorkload w(1, 10'000'000);
  auto stream = w.NewStream(0, 1);
  GeneratedEvent e;
  for (auto _ : state) benchmark::DoNotOptimize(stream->Next(&e));
}
BENCHMARK(BM_ChallengeNext);

void BM_ChallengeDomainName(benchmark::State& state) {
  ChallengeWorkload w(1, 10'000'000);
  std::string s;
  uint32_t i = 0;
  for (auto _ : state) {
    s.clear();
    w.AppendDomainName(i++ % 10'000'000, &s);
    benchmark::DoNotOptimize(s.data());
  }
}
BENCHMARK(BM_ChallengeDomainName);

void BM_Parse204(benchmark::State& state) {
  const std::string wire =
      "HTTP/1.1 204 No Content\r\nServer: nginx/1.22.1\r\nDate: Sat, 22 Nov 2025 21:00:00 GMT\r\n"
      "Connection: keep-alive\r\n\r\n";
  std::string body;
  for (auto _ : state) {
    ResponseParser p(&body);
    boost::beast::error_code ec;
    p.put(boost::asio::buffer(wire), ec);
    benchmark::DoNotOptimize(p.status());
  }
}
BENCHMARK(BM_Parse204);

}  // namespace
}  // namespace catchall::bench

BENCHMARK_MAIN();
