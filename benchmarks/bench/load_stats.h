// What the load generator counts, per worker and merged.
#pragma once

#include <array>
#include <cstdint>

#include "bench/histogram.h"
#include "bench/http_connection.h"

namespace catchall::bench {

enum class OpKind : uint8_t { kPut = 0, kBatch = 1, kGet = 2 };
constexpr int kOpKinds = 3;
constexpr std::string_view OpKindName(OpKind k) {
  return k == OpKind::kPut ? "put" : k == OpKind::kBatch ? "batch" : "get";
}

// Cumulative counters and latency histograms. A plain value: workers keep
// one under their lock, the reporter merges copies.
struct LoadTotals {
  static constexpr int kStatusCodes = 600;

  uint64_t requests_sent = 0;     // attempts, retries included
  uint64_t requests_ok = 0;       // 2xx answers
  uint64_t events_sent = 0;       // events in first attempts
  uint64_t events_acked = 0;      // acknowledged (204, or accepted in a batch)
  uint64_t events_rejected = 0;   // batch items the server refused
  uint64_t events_failed = 0;     // in requests that definitively failed
  uint64_t events_uncertain = 0;  // sent, fate unknown (gave up retrying)
  uint64_t lookups_sent = 0;
  uint64_t lookups_ok = 0;
  uint64_t lookups_failed = 0;
  uint64_t retries = 0;
  // Completions inside the measured window [warmup end, load end].
  uint64_t events_acked_measured = 0;
  uint64_t lookups_ok_measured = 0;
  uint64_t requests_ok_measured = 0;
  // Open loop: operations sent more than 1 ms after their intended time.
  uint64_t late_ops_busy = 0;    // because every connection was busy
  uint64_t late_ops_client = 0;  // although a connection was idle (client too slow)
  uint64_t max_lag_ns = 0;
  uint64_t backlog_at_end = 0;  // operations due but never sent when the load stopped

  std::array<uint64_t, kStatusCodes> status_errors{};  // non-2xx answers by code
  std::array<uint64_t, kTransportErrorKinds> transport_errors{};

  Histogram latency;  // successes after warmup
  std::array<Histogram, kOpKinds> latency_by_kind;

  void Add(const LoadTotals& other);
  uint64_t status_error_count() const;
  uint64_t transport_error_count() const;
  uint64_t errors() const { return status_error_count() + transport_error_count(); }
  uint64_t ops_acked() const { return events_acked + lookups_ok; }
  uint64_t ops_sent() const { return events_sent + lookups_sent; }
};

// What happened since the previous snapshot (one timeline point).
struct IntervalTotals {
  Histogram latency;
  uint64_t ops = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;

  void Add(const IntervalTotals& other) {
    latency.Add(other.latency);
    ops += other.ops;
    requests += other.requests;
    errors += other.errors;
  }
  void Reset() {
    latency.Reset();
    ops = requests = errors = 0;
  }
};

}  // namespace catchall::bench
