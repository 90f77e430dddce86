// Checks, after a --verify run, that the server holds exactly the
// acknowledged events.
//
// The domains to check are those with acknowledged or uncertain events (or
// every workload domain with --verify-all); indices whose names are equal
// once lower-cased are merged into one expected count. The verifier first
// waits for the server's counts to settle (it polls a sample, mostly the
// domains written last, until they match or stop changing, up to
// --settle-timeout), then looks every domain up through POST /domains/lookup
// (1000 per request, over --verify-connections connections) and compares
// delivered, bounced and status; the domains that differ are looked up again
// until they match, stop changing for 5 s, or --settle-timeout passes. Events whose fate is unknown
// (the client gave up retrying) widen the accepted range instead of failing the check.
//
// Threads: Run() uses the calling thread only; the load must have stopped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/ledger.h"
#include "bench/options.h"
#include "bench/target.h"
#include "bench/workload.h"

namespace catchall::bench {

// The distinct lower-cased names among `indices`: `heads` holds the smallest
// index of each name (ascending), `merged` the other indices of the same name
// as (head, other) pairs sorted by head. Generated names can collide once
// lower-cased (the challenge mixes case), and the server counts them as one.
struct DomainGroups {
  std::vector<uint32_t> heads;
  std::vector<std::pair<uint32_t, uint32_t>> merged;
};
DomainGroups GroupByLowerName(const Workload& workload, const std::vector<uint32_t>& indices);

struct Mismatch {
  std::string domain;
  DomainCounts expected;
  DomainCounts uncertain;  // events that may or may not have been counted
  std::string expected_status;
  DomainCounts actual;
  std::string actual_status;
  std::string error;  // the server's per-item error, if any
};

struct VerifyResult {
  bool ok = false;
  bool complete = false;               // every domain got an answer
  bool settled = false;                // the sample matched or stopped changing in time
  uint64_t checked = 0;                // distinct (lower-cased) domains checked
  uint64_t mismatches = 0;             // after rechecking
  uint64_t first_pass_mismatches = 0;  // before rechecking (server still catching up)
  uint64_t rechecks = 0;               // passes over the failing domains
  uint64_t unanswered = 0;             // domains whose lookup failed
  uint64_t merged_names = 0;           // workload indices merged into another's name
  uint64_t uncertain_domains = 0;
  uint64_t expected_delivered = 0;
  uint64_t expected_bounced = 0;
  uint64_t lookup_requests = 0;
  uint64_t lookup_errors = 0;  // failed lookup attempts (retried)
  double settle_s = 0;
  double check_s = 0;
  std::vector<Mismatch> examples;  // the first few mismatches
};

class Verifier {
 public:
  static constexpr size_t kMaxExamples = 10;
  static constexpr size_t kLookupBatch = 1000;

  Verifier(const BenchOptions& options, const Target& target, const Workload& workload,
           const Ledger& ledger);

  // `recent`: domains written last (the settle sample starts with them).
  VerifyResult Run(const std::vector<uint32_t>& recent);

 private:
  struct Expectation {
    DomainCounts acked;
    DomainCounts uncertain;
  };
  void CollectDomains(VerifyResult* result);
  Expectation Expect(uint32_t head) const;
  // Whether `actual` answers `head`; fills `mismatch` when not.
  bool Check(uint32_t head, const DomainCounts& actual, std::string_view status,
             std::string_view error, Mismatch* mismatch) const;
  void Settle(const std::vector<uint32_t>& recent, VerifyResult* result);

  const BenchOptions& options_;
  const Target& target_;
  const Workload& workload_;
  const Ledger& ledger_;
  std::vector<uint32_t> heads_;  // one index per distinct lower-cased name
  // Rare: indices whose lower-cased name equals an earlier index's.
  std::vector<std::pair<uint32_t, uint32_t>> merged_;   // (head, other), sorted by head
  std::vector<std::pair<uint32_t, uint32_t>> head_of_;  // (other, head), sorted by other
};

}  // namespace catchall::bench
