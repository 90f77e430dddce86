#include "bench/freshness_prober.h"

#include <fmt/format.h>

#include <boost/asio/post.hpp>

namespace catchall::bench {

namespace net = boost::asio;

FreshnessProber::FreshnessProber(RunContext& ctx)
    : ctx_(ctx),
      split_(ctx.split_targets),
      period_(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(1.0 / ctx.options.freshness_rate))) {
  const auto timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(ctx.options.timeout_s));
  for (uint32_t i = 0; i < kConnections; ++i) {
    conns_.push_back(std::make_unique<HttpConnection>(ioc_, ctx.target, this, i, timeout));
  }
  if (split_) {
    for (uint32_t i = 0; i < kConnections; ++i) {
      conns_.push_back(std::make_unique<HttpConnection>(ioc_, ctx.query_target, this,
                                                        kConnections + i, timeout));
    }
  }
  probes_.resize(kConnections);
}

FreshnessProber::~FreshnessProber() = default;

void FreshnessProber::Run() {
  for (auto& c : conns_) c->Start();
  ArmSweep();
  ioc_.run();
}

void FreshnessProber::Begin() {
  net::post(ioc_, [this] {
    begun_ = true;
    next_tick_ = Clock::now();
    ArmTick();
  });
}

void FreshnessProber::Stop() {
  net::post(ioc_, [this] {
    stopped_ = true;
    tick_.cancel();
    sweep_.cancel();
    for (auto& c : conns_) c->Shutdown();
  });
}

void FreshnessProber::ArmTick() {
  if (stopped_) return;
  tick_.expires_at(next_tick_);
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    next_tick_ += period_;
    if (next_tick_ < Clock::now()) next_tick_ = Clock::now() + period_;
    uint32_t idle = kConnections;
    for (uint32_t i = 0; i < kConnections && idle == kConnections; ++i) {
      if (PutConn(i).ready() && probes_[i].phase == Phase::kIdle) idle = i;
    }
    if (idle < kConnections) {
      StartProbe(idle);
    } else {
      ++result_.skipped;
    }
    ArmTick();
  });
}

void FreshnessProber::AppendProbeName(uint64_t id, std::string* out) const {
  fmt::format_to(std::back_inserter(*out), "fresh-{:016x}-{}.bench-probe.com", ctx_.run_id, id);
}

void FreshnessProber::StartProbe(uint32_t i) {
  HttpConnection& conn = PutConn(i);
  Probe& p = probes_[i];
  p.phase = Phase::kPut;
  p.poll_due = false;
  p.id = next_id_++;
  ++result_.started;
  std::string& h = conn.head();
  h.clear();
  h.append("PUT ").append(ctx_.target.base_path).append("/events/");
  AppendProbeName(p.id, &h);
  h.append("/delivered HTTP/1.1\r\nHost: ").append(ctx_.target.host_header);
  h.append("\r\nContent-Length: 0\r\n\r\n");
  conn.body().clear();
  conn.Send();
}

void FreshnessProber::OnReady(HttpConnection& conn) {
  const uint32_t i = ProbeOf(conn);
  if (&conn == &PollConn(i)) SendPoll(i);
}

// Sends the probe's next GET if one is due and its connection is idle;
// otherwise the connection's next OnReady does.
void FreshnessProber::SendPoll(uint32_t i) {
  Probe& p = probes_[i];
  HttpConnection& conn = PollConn(i);
  if (stopped_ || p.phase != Phase::kPoll || !p.poll_due || !conn.ready()) return;
  p.poll_due = false;
  const Clock::time_point now = Clock::now();
  const Clock::time_point at = std::max(now, p.last_poll + kPollInterval);
  p.last_poll = at;
  std::string& h = conn.head();
  h.clear();
  h.append("GET ").append(ctx_.query_target.base_path).append("/domains/");
  AppendProbeName(p.id, &h);
  h.append(" HTTP/1.1\r\nHost: ").append(ctx_.query_target.host_header).append("\r\n\r\n");
  conn.SendAfter(at - now);
}

void FreshnessProber::OnResponse(HttpConnection& conn, const HttpResponseView& r) {
  const uint32_t i = ProbeOf(conn);
  Probe& p = probes_[i];
  const Clock::time_point now = Clock::now();
  if (p.phase == Phase::kPut) {
    if (&conn != &PutConn(i)) return;
    if (r.status < 200 || r.status >= 300) {
      ++result_.failures;
      p.phase = Phase::kIdle;
      return;
    }
    p.phase = Phase::kPoll;
    p.acked = now;
    p.last_poll = now - kPollInterval;
    p.poll_due = true;
    // On a shared connection OnReady follows this answer and sends the
    // first poll; a separate poll connection is idle already.
    if (split_) SendPoll(i);
    return;
  }
  if (p.phase != Phase::kPoll || &conn != &PollConn(i)) return;
  uint64_t delivered = 0;
  simdjson::dom::element doc;
  if (r.status != 200 || json_.parse(r.body.data(), r.body.size()).get(doc) ||
      doc["delivered"].get_uint64().get(delivered)) {
    ++result_.failures;
    p.phase = Phase::kIdle;
    return;
  }
  if (delivered >= 1) {
    ++result_.completed;
    if (p.acked >= ctx_.warmup_end) {
      result_.latency.Record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - p.acked).count()));
    }
    p.phase = Phase::kIdle;
    return;
  }
  if (now - p.acked > kProbeTimeout) {
    ++result_.timeouts;
    p.phase = Phase::kIdle;
    return;
  }
  p.poll_due = true;
}

void FreshnessProber::OnFailure(HttpConnection& conn, TransportError, bool in_flight) {
  const uint32_t i = ProbeOf(conn);
  Probe& p = probes_[i];
  const bool current = (p.phase == Phase::kPut && &conn == &PutConn(i)) ||
                       (p.phase == Phase::kPoll && &conn == &PollConn(i));
  if (in_flight && current) {
    ++result_.failures;
    p.phase = Phase::kIdle;
  }
}

void FreshnessProber::ArmSweep() {
  sweep_.expires_after(std::chrono::milliseconds(100));
  sweep_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    const Clock::time_point now = Clock::now();
    for (auto& c : conns_) c->CheckDeadline(now);
    ArmSweep();
  });
}

}  // namespace catchall::bench
