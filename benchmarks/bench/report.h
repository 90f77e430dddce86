// Turns a finished run into results.json, latency.svg and the stdout summary.
// Pure functions of a BenchReport (testable without a server).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/freshness_prober.h"
#include "bench/load_stats.h"
#include "bench/options.h"
#include "bench/verifier.h"

namespace catchall::bench {

// One second of the run.
struct TimelinePoint {
  double t_s = 0;         // end of the interval, seconds since the load started
  double length_s = 0;    // interval length (the last one may be shorter)
  uint64_t ops = 0;       // events acknowledged + lookups answered
  uint64_t requests = 0;  // successful requests
  uint64_t errors = 0;
  uint64_t p50_ns = 0;
  uint64_t p99_ns = 0;
  uint64_t max_ns = 0;
  bool warmup = false;
};

struct BenchReport {
  BenchOptions options;
  std::string started_at;  // ISO 8601, UTC
  std::string workload;    // "challenge" | "uniform"
  uint64_t run_id = 0;
  std::string stop_reason;  // "duration" | "max-events" | "interrupted" | "workload-exhausted"
  bool drain_aborted = false;
  double window_s = 0;  // measured window: warmup end to load end
  double wall_s = 0;    // load start to drained
  uint64_t passes = 0;  // challenge: times the workload wrapped around
  LoadTotals totals;
  std::vector<TimelinePoint> timeline;
  std::optional<FreshnessResult> freshness;
  std::optional<VerifyResult> verify;
};

std::string ResultsJson(const BenchReport& report);
std::string LatencySvg(const BenchReport& report);
std::string Summary(const BenchReport& report);

// "1234567" -> "1,234,567".
std::string Thousands(uint64_t n);

}  // namespace catchall::bench
