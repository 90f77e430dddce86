// NormalizeDomain on the inputs it meets: the ASCII fast path, case folding
// with a trailing dot, a long name, IDNs (libidn2), and a refusal.
#include <benchmark/benchmark.h>

#include <string>

#include "engine/domain.h"

namespace catchall::micro {
namespace {

// 63 + 1 + 63 + 1 + 63 + 1 + 8 = 200 characters.
std::string LongDomain() {
  return std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') +
         ".abcd.com";
}

void BM_NormalizeDomain(benchmark::State& state, const std::string& input, bool valid) {
  if (NormalizeDomain(input).ok() != valid) {
    state.SkipWithError(valid ? "input unexpectedly refused" : "input unexpectedly accepted");
    return;
  }
  for (auto _ : state) {
    Result<std::string> out = NormalizeDomain(input);
    benchmark::DoNotOptimize(out);
  }
  state.SetLabel(std::to_string(input.size()) + " bytes");
}
BENCHMARK_CAPTURE(BM_NormalizeDomain, ascii_lower, std::string("example.com"), true);
BENCHMARK_CAPTURE(BM_NormalizeDomain, mixed_case_dot, std::string("ExAmPlE.CoM."), true);
BENCHMARK_CAPTURE(BM_NormalizeDomain, long_200, LongDomain(), true);
BENCHMARK_CAPTURE(BM_NormalizeDomain, idn_latin, std::string("bücher.de"), true);
BENCHMARK_CAPTURE(BM_NormalizeDomain, idn_cyrillic, std::string("пример.рф"), true);
// What an aggregator sees for an IDN: the A-label form, checked by libidn2.
BENCHMARK_CAPTURE(BM_NormalizeDomain, punycode, std::string("xn--bcher-kva.de"), true);
BENCHMARK_CAPTURE(BM_NormalizeDomain, invalid, std::string("exa_mple.com"), false);

}  // namespace
}  // namespace catchall::micro
