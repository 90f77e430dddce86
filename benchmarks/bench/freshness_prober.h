// Measures freshness: the time from an event's acknowledgement to its effect
// being visible in GET /domains/{domain}.
//
// Every 1/rate seconds a probe takes an idle connection, PUTs one delivered
// event for a domain that exists only for this probe, and once the 204
// arrives polls GET /domains/{probe} every ~1 ms until it reports
// delivered == 1; the delay from the 204 to that GET's answer is recorded
// (an upper bound, by at most one poll round trip). Probes run on their own
// connections and thread so that the main load's queues do not delay them.
//
// The PUTs go to --target and the GETs to --query-target. When those are
// different servers (a cluster's ingest and query nodes), each probe has two
// connections, one to each; otherwise one carries both.
//
// Threads: Run() on the prober's own thread; Begin and Stop from any thread;
// result() after Run() returned.
#pragma once

#include <simdjson.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <vector>

#include "bench/histogram.h"
#include "bench/http_connection.h"
#include "bench/run_context.h"

namespace catchall::bench {

struct FreshnessResult {
  Histogram latency;  // probes acknowledged after the warmup
  uint64_t started = 0;
  uint64_t completed = 0;
  uint64_t timeouts = 0;  // not visible within the probe timeout
  uint64_t failures = 0;  // PUT or GET failed
  uint64_t skipped = 0;   // no idle probe connection when one was due
};

class FreshnessProber final : public ConnectionHandler {
 public:
  static constexpr uint32_t kConnections = 8;
  static constexpr auto kPollInterval = std::chrono::milliseconds(1);
  static constexpr auto kProbeTimeout = std::chrono::seconds(10);

  explicit FreshnessProber(RunContext& ctx);
  ~FreshnessProber() override;

  void Run();
  void Begin();
  void Stop();
  const FreshnessResult& result() const { return result_; }

  void OnReady(HttpConnection& conn) override;
  void OnResponse(HttpConnection& conn, const HttpResponseView& response) override;
  void OnFailure(HttpConnection& conn, TransportError error, bool in_flight) override;

 private:
  enum class Phase { kIdle, kPut, kPoll };
  struct Probe {
    Phase phase = Phase::kIdle;
    bool poll_due = false;  // OnReady sends the next GET
    uint64_t id = 0;
    Clock::time_point acked{};
    Clock::time_point last_poll{};
  };

  // Connection ids: probe i's PUT connection is i, its poll connection
  // kConnections + i when the targets are split (else the same one).
  static uint32_t ProbeOf(const HttpConnection& conn) { return conn.id() % kConnections; }
  HttpConnection& PutConn(uint32_t i) { return *conns_[i]; }
  HttpConnection& PollConn(uint32_t i) { return *conns_[split_ ? kConnections + i : i]; }

  void ArmTick();
  void StartProbe(uint32_t i);
  void SendPoll(uint32_t i);
  void AppendProbeName(uint64_t id, std::string* out) const;
  void ArmSweep();

  RunContext& ctx_;
  boost::asio::io_context ioc_{1};
  boost::asio::steady_timer tick_{ioc_};
  boost::asio::steady_timer sweep_{ioc_};
  const bool split_;
  std::vector<std::unique_ptr<HttpConnection>> conns_;
  std::vector<Probe> probes_;
  Clock::duration period_;
  Clock::time_point next_tick_{};
  bool begun_ = false;
  bool stopped_ = false;
  uint64_t next_id_ = 0;
  simdjson::dom::parser json_;
  FreshnessResult result_;
};

}  // namespace catchall::bench
