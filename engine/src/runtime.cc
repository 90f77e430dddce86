#include "engine/runtime.h"

#include <fmt/format.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <system_error>
#include <thread>

#include "engine/this_thread.h"

namespace catchall {
namespace {

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0;
  uint64_t resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

void MountRuntimeEndpoints(HttpRouter* router, Metrics* metrics, ReadinessCheck ready,
                           std::string role) {
  auto& rss = prometheus::BuildGauge()
                  .Name("catchall_process_resident_memory_bytes")
                  .Help("Resident set size of the process")
                  .Register(metrics->registry())
                  .Add({});
  prometheus::BuildGauge()
      .Name("catchall_build_info")
      .Help("Always 1; labels say what runs")
      .Register(metrics->registry())
      .Add({{"version", CATCHALL_VERSION}, {"role", role}})
      .Set(1);
  metrics->AddScrapeHook([&rss] { rss.Set(static_cast<double>(ResidentBytes())); });

  router->Mount(
      "/metrics",
      [metrics](const HttpRequest& request, const Responder& respond) {
        if (request.path() != "/metrics") {
          return respond(HttpResponse::NoSuchPath(request.path()));
        }
        if (request.method != HttpMethod::kGet) {
          return respond(HttpResponse::MethodNotAllowed("GET"));
        }
        respond(HttpResponse::Text(200, metrics->Serialize(), "text/plain; version=0.0.4"));
      },
      [](std::string_view path) { return path == "/metrics"; });
  router->Mount("/healthz", [](const HttpRequest& request, const Responder& respond) {
    if (request.path() != "/healthz") {
      return respond(HttpResponse::NoSuchPath(request.path()));
    }
    if (request.method != HttpMethod::kGet) return respond(HttpResponse::MethodNotAllowed("GET"));
    respond(HttpResponse::Json(200, R"({"status":"ok"})"));
  });
  router->Mount("/readyz",
                [ready = std::move(ready)](const HttpRequest& request, const Responder& respond) {
                  if (request.path() != "/readyz") {
                    return respond(HttpResponse::NoSuchPath(request.path()));
                  }
                  if (request.method != HttpMethod::kGet) {
                    return respond(HttpResponse::MethodNotAllowed("GET"));
                  }
                  Status s = ready();
                  if (!s.ok()) {
                    HttpResponse r = HttpResponse::Error(503, "not_ready", s.message());
                    r.headers.emplace_back("Retry-After", "1");
                    return respond(std::move(r));
                  }
                  respond(HttpResponse::Json(200, R"({"status":"ready"})"));
                });
}

void SetupLogging(std::string_view level) {
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
}

namespace {

// SIGTERM and SIGINT, and SIGHUP (the reload) if asked.
sigset_t TerminationSignals(bool reload) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (reload) sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals(/*reload=*/true);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void ExitOnASecondTerminationSignal(std::chrono::milliseconds give_up_after) {
  // SIGTERM and SIGINT stay blocked (BlockTerminationSignals): a thread
  // waits for the next one, or for the deadline. What the shutdown leaves
  // undone is what kill -9 leaves, which loses nothing acknowledged. The
  // deadline: librdkafka's consumer close can wait for good (a query node
  // whose changelog was deleted, confluentinc/librdkafka#4362), and a
  // process with no service manager to kill it hung after one SIGTERM (a
  // probe).
  std::thread([give_up_after] {
    NameThisThread("signal-wait");
    sigset_t set = TerminationSignals(/*reload=*/false);
    auto deadline = std::chrono::steady_clock::now() + give_up_after;
    int sig = 0;
    while (sig == 0) {
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      timespec wait{};
      wait.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
      wait.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
      int got = sigtimedwait(&set, nullptr, &wait);
      if (got > 0) sig = got;
    }
    // Not through spdlog: a shutdown stuck writing the log (a full pipe)
    // holds its lock, and after main returns the logger is gone.
    const char* line =
        sig == SIGTERM  ? "SIGTERM received again: exiting now, without finishing the shutdown\n"
        : sig == SIGINT ? "SIGINT received again: exiting now, without finishing the shutdown\n"
                        : "the shutdown did not finish in time: exiting now without it (nothing "
                          "acknowledged is lost, as after kill -9)\n";
    ssize_t written = write(STDERR_FILENO, line, std::strlen(line));
    (void)written;  // nothing to do if stderr is gone
    std::_Exit(sig == 0 ? 1 : 128 + sig);
  }).detach();
}

std::string WaitForTerminationSignal(const std::function<void()>& on_reload) {
  sigset_t set = TerminationSignals(/*reload=*/true);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig != SIGHUP) return sig == SIGTERM ? "SIGTERM" : "SIGINT";
    spdlog::info("SIGHUP received: reloading");
    if (on_reload) on_reload();
  }
}

Status WritePortFile(const std::string& path, uint16_t port) {
  std::string tmp = path + ".tmp";
  // With errno's reason, and no stray file beside what could not be written.
  auto fail = [&tmp](const std::string& what) {
    int error = errno;
    std::remove(tmp.c_str());
    return Status::IoError(fmt::format("cannot write the port file {}: {}", what,
                                       std::system_category().message(error)));
  };
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return fail(tmp);
    out << port << "\n";
    if (!out) return fail(tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(fmt::format("{} (renaming {} to it)", path, tmp));
  }
  return Status::Ok();
}

}  // namespace catchall
