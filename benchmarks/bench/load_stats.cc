#include "bench/load_stats.h"

#include <algorithm>

namespace catchall::bench {

void LoadTotals::Add(const LoadTotals& o) {
  requests_sent += o.requests_sent;
  requests_ok += o.requests_ok;
  events_sent += o.events_sent;
  events_acked += o.events_acked;
  events_rejected += o.events_rejected;
  events_failed += o.events_failed;
  events_uncertain += o.events_uncertain;
  lookups_sent += o.lookups_sent;
  lookups_ok += o.lookups_ok;
  lookups_failed += o.lookups_failed;
  retries += o.retries;
  events_acked_measured += o.events_acked_measured;
  lookups_ok_measured += o.lookups_ok_measured;
  requests_ok_measured += o.requests_ok_measured;
  late_ops_busy += o.late_ops_busy;
  late_ops_client += o.late_ops_client;
  max_lag_ns = std::max(max_lag_ns, o.max_lag_ns);
  backlog_at_end += o.backlog_at_end;
  for (size_t i = 0; i < status_errors.size(); ++i) status_errors[i] += o.status_errors[i];
  for (size_t i = 0; i < transport_errors.size(); ++i) transport_errors[i] += o.transport_errors[i];
  latency.Add(o.latency);
  for (size_t i = 0; i < latency_by_kind.size(); ++i) latency_by_kind[i].Add(o.latency_by_kind[i]);
}

uint64_t LoadTotals::status_error_count() const {
  uint64_t n = 0;
  for (uint64_t c : status_errors) n += c;
  return n;
}

uint64_t LoadTotals::transport_error_count() const {
  uint64_t n = 0;
  for (uint64_t c : transport_errors) n += c;
  return n;
}

}  // namespace catchall::bench
