// State shared by every part of one benchmark run.
#pragma once

#include <atomic>
#include <cstdint>

#include "bench/http_connection.h"
#include "bench/ledger.h"
#include "bench/options.h"
#include "bench/target.h"
#include "bench/workload.h"

namespace catchall::bench {

// Created by the runner before any thread starts; the const members are
// read-only afterwards, the atomics are the cross-thread signals.
struct RunContext {
  const BenchOptions& options;
  const Target& target;        // writes (--target)
  const Target& query_target;  // reads (--query-target; equal to target by default)
  const bool split_targets;    // target and query_target are different servers
  const Workload& workload;
  Ledger* ledger = nullptr;  // only with --verify
  uint64_t run_id = 0;       // prefix of idempotency keys and probe names

  // Set by the runner before it posts Begin to the workers.
  Clock::time_point start{};
  Clock::time_point warmup_end{};

  std::atomic<bool> stop_issuing{false};   // no new operations from now on
  std::atomic<bool> measuring{true};       // completions still count for throughput
  std::atomic<int64_t> budget{INT64_MAX};  // operations left to issue (--max-events)
  std::atomic<uint32_t> workers_done{0};

  RunContext(const BenchOptions& o, const Targets& t, const Workload& w)
      : options(o), target(t.write), query_target(t.read), split_targets(t.split), workload(w) {}
};

}  // namespace catchall::bench
