// catchall-bench's command line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace catchall::bench {

enum class Mode { kPut, kBatch, kGet, kMixed };
std::string_view ModeName(Mode mode);

struct BenchOptions {
  std::string target;        // writes: PUT / POST /events
  std::string query_target;  // reads: GET /domains, lookups, probe polls; "" = target
  Mode mode = Mode::kPut;
  std::string workload = "challenge";
  uint64_t domains = 10'000'000;
  double rate = 0;         // operations (events or lookups) per second; 0: closed loop
  double duration_s = 10;  // 0: until --max-events
  double warmup_s = 0;
  uint32_t connections = 64;
  uint32_t threads = 1;
  uint32_t batch_size = 1000;
  double read_ratio = 0.5;
  double bounce_probability = 0.002;
  uint64_t seed = 0;
  bool seed_given = false;
  uint64_t max_events = 0;  // 0: unlimited
  bool verify = false;
  bool verify_all = false;
  uint32_t verify_connections = 16;
  uint64_t threshold = 1000;
  double settle_timeout_s = 60;
  double verify_timeout_s = 600;
  bool freshness = false;
  double freshness_rate = 20;
  double timeout_s = 10;
  uint32_t max_retries = 30;
  bool idempotency_keys = false;  // forced on by --verify
  std::string out_dir = "bench-results";
  std::string label;
  bool quiet = false;
  // TLS: --tls turns http:// targets into https:// ones. The server's
  // certificate is verified against --ca (PEM) or, without it, the system's
  // CAs; --insecure skips the verification (a self-signed test certificate).
  bool tls = false;
  bool insecure = false;
  std::string ca_file;
};

// Parses argv. Returns -1 to go on, otherwise the exit code to leave with
// (0 after --help, 1 after a usage error, reported on stderr).
int ParseOptions(int argc, char** argv, BenchOptions* options);

}  // namespace catchall::bench
