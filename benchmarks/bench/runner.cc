#include "bench/runner.h"

#include <fmt/format.h>
#include <unistd.h>

#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "bench/freshness_prober.h"
#include "bench/ledger.h"
#include "bench/report.h"
#include "bench/run_context.h"
#include "bench/target.h"
#include "bench/tls.h"
#include "bench/verifier.h"
#include "bench/worker.h"
#include "bench/workload.h"

namespace catchall::bench {
namespace {

std::atomic<int> g_interrupts{0};

extern "C" void OnSignal(int) { g_interrupts.fetch_add(1); }

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

Clock::duration FromSeconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  return static_cast<bool>(f);
}

// Owns the worker threads of a run and collects their statistics.
class LoadDriver {
 public:
  explicit LoadDriver(RunContext& ctx) : ctx_(ctx) {
    const BenchOptions& o = ctx.options;
    for (uint32_t i = 0; i < o.threads; ++i) {
      const uint32_t share = o.connections / o.threads + (i < o.connections % o.threads ? 1 : 0);
      workers_.push_back(std::make_unique<Worker>(ctx, i, o.threads, share));
    }
  }

  void StartThreads() {
    for (auto& w : workers_) threads_.emplace_back([p = w.get()] { p->Run(); });
  }
  uint32_t connected() const {
    uint32_t n = 0;
    for (const auto& w : workers_) n += w->connected();
    return n;
  }
  void Begin() {
    for (auto& w : workers_) w->Begin();
  }
  void RequestStop() {
    for (auto& w : workers_) w->RequestStop();
  }
  void Abort() {
    for (auto& w : workers_) w->Abort();
  }
  bool AllDone() const { return ctx_.workers_done.load() == workers_.size(); }
  void Join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  void Snapshot(LoadTotals* totals, IntervalTotals* interval) {
    for (auto& w : workers_) w->Snapshot(totals, interval);
  }
  std::vector<uint32_t> RecentDomains() const {
    std::vector<uint32_t> all;
    for (const auto& w : workers_) {
      auto r = w->RecentDomains();
      all.insert(all.end(), r.begin(), r.end());
    }
    return all;
  }
  uint64_t passes() const {
    uint64_t p = 0;
    for (const auto& w : workers_) p = std::max(p, w->passes());
    return p;
  }

 private:
  RunContext& ctx_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
};

void PrintProgress(double elapsed, const LoadTotals& totals, const IntervalTotals& interval,
                   double interval_s, bool warmup) {
  const Histogram& h = totals.latency.count() > 0 ? totals.latency : interval.latency;
  std::cerr << fmt::format(
      "[{:7.1f}s]{} sent {} acked {} rate {}/s p99 {:.3f} ms errors {}\n", elapsed,
      warmup ? " warmup" : "", Thousands(totals.ops_sent()), Thousands(totals.ops_acked()),
      Thousands(static_cast<uint64_t>(
          interval_s > 0 ? static_cast<double>(interval.ops) / interval_s : 0)),
      static_cast<double>(h.Percentile(0.99)) / 1e6, Thousands(totals.errors()));
}

}  // namespace

int RunBench(const BenchOptions& options) {
  Targets targets;
  std::string error;
  if (!ResolveTargets(options.target, options.query_target, &targets, &error)) {
    std::cerr << "catchall-bench: " << error << "\n";
    return 1;
  }
  std::unique_ptr<boost::asio::ssl::context> tls;
  if (targets.write.tls || targets.read.tls) {
    tls = MakeClientTlsContext(options, &error);
    if (!tls) {
      std::cerr << "catchall-bench: " << error << "\n";
      return 1;
    }
    for (Target* t : {&targets.write, &targets.read}) {
      if (t->tls) t->tls_context = tls.get();
    }
  }
  std::error_code fs_error;
  std::filesystem::create_directories(options.out_dir, fs_error);
  if (fs_error) {
    std::cerr << fmt::format("catchall-bench: cannot create --out {}: {}\n", options.out_dir,
                             fs_error.message());
    return 1;
  }

  std::unique_ptr<Workload> workload;
  if (options.workload == "uniform") {
    workload = std::make_unique<UniformWorkload>(options.seed, options.domains,
                                                 options.bounce_probability);
  } else {
    workload = std::make_unique<ChallengeWorkload>(options.seed, options.domains);
  }
  std::unique_ptr<Ledger> ledger;
  if (options.verify) ledger = std::make_unique<Ledger>(options.domains);

  RunContext ctx(options, targets, *workload);
  ctx.ledger = ledger.get();
  ctx.run_id = Mix64(
      options.seed ^
      Mix64(static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
            static_cast<uint64_t>(getpid())));
  if (options.max_events > 0) ctx.budget = static_cast<int64_t>(options.max_events);

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);

  BenchReport report;
  report.options = options;
  report.workload = std::string(workload->name());
  report.run_id = ctx.run_id;
  report.started_at = UtcNow();

  LoadDriver driver(ctx);
  // Start the workers far in the future until Begin sets the real start.
  ctx.start = ctx.warmup_end = Clock::now() + std::chrono::hours(24 * 365);
  driver.StartThreads();
  std::unique_ptr<FreshnessProber> prober;
  std::thread prober_thread;
  if (options.freshness) {
    prober = std::make_unique<FreshnessProber>(ctx);
    prober_thread = std::thread([p = prober.get()] { p->Run(); });
  }

  // Give the connections a moment to establish so the load starts at once.
  const Clock::time_point connect_deadline =
      Clock::now() + std::min(FromSeconds(options.timeout_s), FromSeconds(5));
  while (driver.connected() < options.connections && Clock::now() < connect_deadline &&
         g_interrupts.load() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // connected() counts the connections to the server of the mode's main
  // requests: the query target in get mode, --target otherwise (mixed mode
  // with a separate query target also opens one read connection per
  // connection slot; those are not waited for).
  const bool load_reads = options.mode == Mode::kGet;
  const std::string& load_url = load_reads ? options.query_target : options.target;
  const Target& load_target = load_reads ? targets.read : targets.write;
  if (driver.connected() == 0) {
    std::cerr << fmt::format("catchall-bench: cannot connect to {} ({}:{})\n", load_url,
                             load_target.endpoint.address().to_string(),
                             load_target.endpoint.port());
  } else if (!options.quiet) {
    std::cerr << fmt::format(
        "catchall-bench: {} / {} against {}{}: {} of {} connections up, seed {}\n",
        ModeName(options.mode), workload->name(), load_url,
        targets.split && !load_reads ? fmt::format(" (reads from {})", options.query_target)
                                     : std::string(),
        driver.connected(), options.connections, options.seed);
  }

  const Clock::time_point start = Clock::now();
  ctx.start = start;
  ctx.warmup_end = start + FromSeconds(options.warmup_s);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  driver.Begin();
  if (prober) prober->Begin();

  const Clock::time_point load_deadline =
      options.duration_s > 0 ? start + FromSeconds(options.duration_s) : Clock::time_point::max();
  const bool verify_retries = options.verify;
  const Clock::duration drain_timeout =
      FromSeconds(options.timeout_s) +
      (verify_retries ? std::chrono::seconds(60) : std::chrono::seconds(5));

  Clock::time_point last_tick = start;
  Clock::time_point next_tick = start + std::chrono::seconds(1);
  Clock::time_point load_end{};
  Clock::time_point measure_end{};
  Clock::time_point drain_deadline = Clock::time_point::max();
  bool stopping = false;
  bool aborted = false;
  bool unreachable = driver.connected() == 0;
  LoadTotals totals;

  auto take_point = [&](Clock::time_point now, bool print) {
    LoadTotals snap;
    IntervalTotals interval;
    driver.Snapshot(&snap, &interval);
    const double length = Seconds(now - last_tick);
    // A short last interval (the drain) is noise unless it saw answers.
    if (length >= 0.25 || (print && interval.requests > 0)) {
      TimelinePoint p;
      p.t_s = Seconds(now - start);
      p.length_s = length;
      p.ops = interval.ops;
      p.requests = interval.requests;
      p.errors = interval.errors;
      p.p50_ns = interval.latency.Percentile(0.5);
      p.p99_ns = interval.latency.Percentile(0.99);
      p.max_ns = interval.latency.max();
      p.warmup = last_tick + (now - last_tick) / 2 < ctx.warmup_end;
      report.timeline.push_back(p);
    }
    if (print && !options.quiet) {
      PrintProgress(Seconds(now - start), snap, interval, length, now <= ctx.warmup_end);
    }
    last_tick = now;
    totals = snap;
  };

  while (!driver.AllDone()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const Clock::time_point now = Clock::now();
    if (!stopping) {
      std::string reason;
      if (g_interrupts.load() > 0) {
        reason = "interrupted";
      } else if (now >= load_deadline) {
        reason = "duration";
      } else if (ctx.stop_issuing.load()) {
        reason = options.max_events > 0 ? "max-events" : "workload-exhausted";
      } else if (unreachable && now - start > FromSeconds(options.timeout_s)) {
        reason = "unreachable";
      }
      if (!reason.empty()) {
        stopping = true;
        report.stop_reason = reason;
        load_end = now;
        ctx.stop_issuing = true;
        // A duration ends the measured window now; a count ends it once
        // the last answers are in.
        if (reason != "max-events") {
          ctx.measuring = false;
          measure_end = now;
        }
        driver.RequestStop();
        drain_deadline = now + drain_timeout;
      }
    } else if (!aborted && (now >= drain_deadline || g_interrupts.load() > 1)) {
      aborted = true;
      report.drain_aborted = true;
      driver.Abort();
    }
    if (unreachable && driver.connected() > 0) unreachable = false;
    if (now >= next_tick) {
      take_point(now, true);
      next_tick += std::chrono::seconds(1);
      if (next_tick < now) next_tick = now + std::chrono::seconds(1);
    }
  }
  driver.Join();
  const Clock::time_point drained = Clock::now();
  if (ctx.measuring.load()) {
    ctx.measuring = false;
    measure_end = drained;
  }
  if (!stopping) {  // every worker ended on its own (workload exhausted)
    report.stop_reason = "workload-exhausted";
    load_end = measure_end = drained;
  }
  take_point(drained, false);
  if (prober) {
    prober->Stop();
    prober_thread.join();
    report.freshness = prober->result();
  }
  report.totals = totals;
  report.window_s = std::max(0.0, Seconds(measure_end - ctx.warmup_end));
  report.wall_s = Seconds(drained - start);
  report.passes = driver.passes();

  if (options.verify && g_interrupts.load() < 2 && totals.requests_ok > 0) {
    if (!options.quiet) {
      std::cerr << "catchall-bench: verifying (waiting for the server to settle)...\n";
    }
    Verifier verifier(options, targets.read, *workload, *ledger);
    report.verify = verifier.Run(driver.RecentDomains());
  }

  const std::filesystem::path dir(options.out_dir);
  bool written = WriteFile(dir / "results.json", ResultsJson(report));
  written = WriteFile(dir / "latency.svg", LatencySvg(report)) && written;
  std::cout << Summary(report) << std::flush;
  if (!written) {
    std::cerr << fmt::format("catchall-bench: cannot write results into {}\n", options.out_dir);
    return 1;
  }
  if (report.verify && !report.verify->ok) return 2;
  if (totals.requests_ok == 0) {
    std::cerr << "catchall-bench: no request succeeded\n";
    return 1;
  }
  return 0;
}

}  // namespace catchall::bench
