// What every catchall process has besides its role: the /metrics, /healthz
// and /readyz endpoints, logging setup, and waiting for SIGTERM/SIGINT.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "engine/http.h"
#include "engine/metrics.h"
#include "engine/status.h"

namespace catchall {

// OK when the process can serve; otherwise says what it is waiting for.
using ReadinessCheck = std::function<Status()>;

// Mounts GET /metrics, /healthz and /readyz on `router`. `metrics` and the
// check must outlive the router. Also registers process gauges (resident
// memory, build info) in `metrics`.
void MountRuntimeEndpoints(HttpRouter* router, Metrics* metrics, ReadinessCheck ready,
                           std::string role);

// Sets spdlog's level and pattern ("info", "debug", ...).
void SetupLogging(std::string_view level);

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and the threads it
// starts later, so that only the threads that wait for them
// (WaitForTerminationSignal, then ExitOnASecondTerminationSignal's) see
// them. A node's
// command calls it before it starts any thread; the other commands keep the
// default (Ctrl-C ends them).
void BlockTerminationSignals();
// After the first SIGTERM or SIGINT: a second one ends the process at once
// (exit code 128 + the signal), for a shutdown that waits too long; so does
// the shutdown not being over `give_up_after` later (exit code 1). Either
// leaves undone what kill -9 leaves, which loses nothing acknowledged.
void ExitOnASecondTerminationSignal(std::chrono::milliseconds give_up_after);
// Waits for SIGTERM or SIGINT; returns the signal's name. Each SIGHUP on the
// way calls `on_reload` (if set) on the waiting thread: the operator's way
// to reload keys and certificates without a restart.
std::string WaitForTerminationSignal(const std::function<void()>& on_reload = {});

// Writes `port` to `path` atomically (write + rename), for scripts and tests
// that start a server on port 0.
Status WritePortFile(const std::string& path, uint16_t port);

}  // namespace catchall
