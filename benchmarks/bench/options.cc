#include "bench/options.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <map>

#include "bench/rng.h"

namespace catchall::bench {

std::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kPut: return "put";
    case Mode::kBatch: return "batch";
    case Mode::kGet: return "get";
    case Mode::kMixed: return "mixed";
  }
  return "?";
}

int ParseOptions(int argc, char** argv, BenchOptions* o) {
  CLI::App app{
      "catchall-bench: an HTTP/1.1 keep-alive load generator for catchall.\n"
      "Drives PUT /events/{domain}/{type}, POST /events (NDJSON), GET /domains/{domain},\n"
      "measures throughput and latency (HDR histogram, coordinated omission corrected\n"
      "under --rate), optionally verifies every acknowledged event and measures\n"
      "freshness, and writes OUT/results.json and OUT/latency.svg.\n"
      "Exit status: 0 success, 2 --verify found mismatches, 1 usage or other errors.",
      "catchall-bench"};
  app.get_formatter()->column_width(34);

  std::string mode = "put";
  app.add_option("--target", o->target, "Base URL of the server, e.g. http://127.0.0.1:8080")
      ->required();
  app.add_option("--query-target", o->query_target,
                 "Base URL for reads, e.g. a cluster's query node while --target is an ingest "
                 "node: GET /domains (get mode, mixed mode's reads), the --verify lookups and "
                 "the --freshness polls (the probes' PUTs still go to --target). Default: "
                 "--target");
  app.add_option("--mode", mode,
                 "put: one event per PUT; batch: NDJSON POST /events of --batch-size events; "
                 "get: GET /domains/{d} of workload domains; mixed: PUTs and GETs (--read-ratio)")
      ->check(CLI::IsMember({"put", "batch", "get", "mixed"}))
      ->capture_default_str();
  app.add_option("--workload", o->workload,
                 "challenge: the original challenge's generator (bursts of 0..2499 events per "
                 "random mixed-case domain); uniform: events spread uniformly over --domains")
      ->check(CLI::IsMember({"challenge", "uniform"}))
      ->capture_default_str();
  app.add_option("--domains", o->domains, "Number of distinct workload domains")
      ->check(CLI::Range(uint64_t{1}, uint64_t{4'000'000'000}))
      ->capture_default_str();
  app.add_option("--rate", o->rate,
                 "Open loop: operations per second (events for put/batch, lookups for get, both "
                 "for mixed), scheduled at fixed intervals; latency counts from the intended "
                 "send time. 0 or absent: closed loop, one request outstanding per connection")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--duration", o->duration_s,
                 "Seconds of load (warmup included); 0 = until --max-events")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--warmup", o->warmup_s,
                 "Seconds at the start excluded from latency and throughput (still verified)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--connections", o->connections, "Keep-alive connections (spread over --threads)")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  app.add_option("--threads", o->threads, "Client I/O threads, each with its own event loop")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  app.add_option("--batch-size", o->batch_size, "Events per POST /events in batch mode")
      ->check(CLI::Range(1u, 1'000'000u))
      ->capture_default_str();
  app.add_option("--read-ratio", o->read_ratio,
                 "mixed mode: fraction of operations that are GETs (of domains already written)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--bounce-probability", o->bounce_probability,
                 "uniform workload: probability that an event is a bounce")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  auto* seed = app.add_option("--seed", o->seed,
                              "Workload seed (domain names and event order); default: random, "
                              "printed and recorded in results.json");
  app.add_option("--max-events", o->max_events,
                 "Stop after sending this many operations (events, and lookups in get/mixed "
                 "mode); 0 = no limit")
      ->capture_default_str();
  app.add_flag("--verify", o->verify,
               "Keep the expected counts of acknowledged events, retry 503/5xx/transport "
               "failures with the same Idempotency-Key (or batch item ids), wait for the server "
               "to settle and check every written domain through POST /domains/lookup; exit 2 "
               "on mismatch");
  app.add_flag("--verify-all", o->verify_all,
               "With --verify, also check the domains that got no event (expected unknown, 0/0)");
  app.add_option("--verify-connections", o->verify_connections,
                 "Connections used for the verification lookups")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  app.add_option("--threshold", o->threshold,
                 "Catch-all threshold the server uses (for the expected status)")
      ->capture_default_str();
  app.add_option("--settle-timeout", o->settle_timeout_s,
                 "With --verify, seconds to wait for the server's counts to stop changing")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--verify-timeout", o->verify_timeout_s,
                 "With --verify, seconds allowed for checking every domain")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--freshness", o->freshness,
               "Measure acknowledgement-to-visibility: PUT a fresh probe domain, then poll "
               "GET /domains/{probe} every 1 ms until delivered == 1 (freshness_ms)");
  app.add_option("--freshness-rate", o->freshness_rate, "Freshness probes started per second")
      ->check(CLI::Range(0.1, 1000.0))
      ->capture_default_str();
  app.add_option("--timeout", o->timeout_s, "Seconds before a request or connect times out")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-retries", o->max_retries,
                 "With --verify, attempts per event request before its events count as uncertain")
      ->capture_default_str();
  app.add_flag("--idempotency-keys", o->idempotency_keys,
               "Send an Idempotency-Key per PUT and an id per batch item (implied by --verify)");
  app.add_option("--out", o->out_dir, "Directory for results.json and latency.svg")
      ->capture_default_str();
  app.add_option("--label", o->label, "Free text recorded in results.json");
  app.add_flag("--quiet", o->quiet, "No per-second progress lines on stderr");
  app.add_flag("--tls", o->tls,
               "Speak HTTPS (TLS 1.2+) to http:// targets too (an https:// target always does)");
  app.add_flag("--insecure", o->insecure,
               "Do not verify the server's TLS certificate (self-signed test certificates)");
  app.add_option("--ca", o->ca_file,
                 "PEM file of the CA(s) to verify the server's TLS certificate with (default: "
                 "the system's)")
      ->check(CLI::ExistingFile);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  static const std::map<std::string, Mode> kModes = {
      {"put", Mode::kPut}, {"batch", Mode::kBatch}, {"get", Mode::kGet}, {"mixed", Mode::kMixed}};
  o->mode = kModes.at(mode);
  o->seed_given = seed->count() > 0;
  if (!o->seed_given) {
    o->seed =
        Mix64(static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count())) %
        1'000'000'000;
  }
  if (o->query_target.empty()) o->query_target = o->target;
  if (o->tls) {
    // Rewritten here so that results.json and the summary show the scheme
    // actually used.
    for (std::string* url : {&o->target, &o->query_target}) {
      if (url->rfind("http://", 0) == 0) url->insert(4, "s");
    }
  }
  if (o->insecure && !o->ca_file.empty()) {
    std::cerr << "catchall-bench: --insecure and --ca contradict each other\n";
    return 1;
  }
  if (o->verify) o->idempotency_keys = true;
  if (o->duration_s == 0 && o->max_events == 0) {
    std::cerr << "catchall-bench: --duration 0 needs --max-events\n";
    return 1;
  }
  if (o->warmup_s > 0 && o->duration_s > 0 && o->warmup_s >= o->duration_s) {
    std::cerr << "catchall-bench: --warmup must be shorter than --duration\n";
    return 1;
  }
  if (o->threads > o->connections) o->threads = o->connections;
  return -1;
}

}  // namespace catchall::bench
