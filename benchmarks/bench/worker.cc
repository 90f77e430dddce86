#include "bench/worker.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cmath>

namespace catchall::bench {

namespace net = boost::asio;

namespace {

constexpr Clock::duration kSweepInterval = std::chrono::milliseconds(100);
constexpr Clock::duration kLateThreshold = std::chrono::milliseconds(1);
constexpr Clock::duration kMaxRetryDelay = std::chrono::seconds(1);

uint64_t Ns(Clock::duration d) {
  return static_cast<uint64_t>(
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
}

// Exponential backoff with jitter: 10 ms, 20 ms, ... capped at 1 s.
Clock::duration Backoff(uint32_t attempts, SplitMix64& rng) {
  const auto base = std::chrono::milliseconds(10) * (1u << std::min<uint32_t>(attempts, 7));
  const auto capped = std::min<Clock::duration>(base, kMaxRetryDelay);
  return std::chrono::duration_cast<Clock::duration>(capped * (0.5 + rng.Unit()));
}

}  // namespace

Worker::Worker(RunContext& ctx, uint32_t index, uint32_t count, uint32_t connections)
    : ctx_(ctx),
      opt_(ctx.options),
      index_(index),
      slot_count_(connections),
      stream_(ctx.workload.NewStream(index, count)),
      rng_(StreamSeed(ctx.workload.seed(), 0xfeed0000ull + index)),
      next_seq_(static_cast<uint64_t>(index) << 40) {
  const auto timeout =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.timeout_s));
  // get mode only reads; mixed mode with a separate query target gets a
  // second connection per slot for its reads.
  const Target& first = opt_.mode == Mode::kGet ? ctx.query_target : ctx.target;
  read_conns_ = opt_.mode == Mode::kMixed && ctx.split_targets;
  conns_.reserve(read_conns_ ? 2 * connections : connections);
  for (uint32_t i = 0; i < connections; ++i) {
    conns_.push_back(std::make_unique<HttpConnection>(ioc_, first, this, i, timeout));
  }
  if (read_conns_) {
    for (uint32_t i = 0; i < connections; ++i) {
      conns_.push_back(
          std::make_unique<HttpConnection>(ioc_, ctx.query_target, this, connections + i, timeout));
    }
  }
  slots_.resize(connections);
  if (opt_.mode == Mode::kBatch) {
    for (Slot& s : slots_) s.batch.reserve(opt_.batch_size);
  }
  idle_.reserve(connections);
  open_loop_ = opt_.rate > 0;
  if (open_loop_) {
    const double thread_rate = opt_.rate / count;
    const double per_request = opt_.mode == Mode::kBatch ? opt_.batch_size : 1;
    interval_ns_ = per_request / thread_rate * 1e9;
    phase_ = static_cast<double>(index) / count;
  }
}

Worker::~Worker() = default;

void Worker::Run() {
  for (auto& c : conns_) c->Start();
  ArmSweep();
  ioc_.run();
}

void Worker::Begin() {
  net::post(ioc_, [this] { DoBegin(); });
}

void Worker::RequestStop() {
  net::post(ioc_, [this] {
    MarkStopping();
    MaybeFinish();
  });
}

void Worker::Abort() {
  net::post(ioc_, [this] { DoAbort(); });
}

void Worker::Snapshot(LoadTotals* totals, IntervalTotals* interval) {
  std::lock_guard lock(mu_);
  totals->Add(totals_);
  totals->requests_sent += requests_sent_.load(std::memory_order_relaxed);
  totals->events_sent += events_sent_.load(std::memory_order_relaxed);
  totals->lookups_sent += lookups_sent_.load(std::memory_order_relaxed);
  interval->Add(interval_);
  interval_.Reset();
}

std::vector<uint32_t> Worker::RecentDomains() const {
  const size_t n = std::min(recent_count_, recent_.size());
  return {recent_.begin(), recent_.begin() + static_cast<ptrdiff_t>(n)};
}

void Worker::DoBegin() {
  begun_ = true;
  if (stopping_) return MaybeFinish();
  if (open_loop_) return ArmPacer();
  std::vector<uint32_t> ready;
  ready.swap(idle_);
  for (uint32_t i : ready) {
    if (stopping_) break;
    if (slots_[i].idle) Dispatch(i, Clock::now());
  }
  MaybeFinish();
}

void Worker::PushIdle(uint32_t i) {
  if (slots_[i].idle) return;
  slots_[i].idle = true;
  idle_.push_back(i);
}

void Worker::OnReady(HttpConnection& conn) {
  const uint32_t i = SlotOf(conn);
  Slot& s = slots_[i];
  if (s.has_op) {
    // A send is due on this connection (a retry after an error answer or a
    // reconnect, or an operation that waited for it to connect).
    if (s.retry && &conn == &ConnFor(i, s.kind)) {
      s.retry = false;
      SendOp(i, s);
    }
    return;
  }
  if (!begun_) {
    if (conn.id() < slot_count_) {  // a slot counts once, by its first connection
      connected_.fetch_add(1, std::memory_order_relaxed);
      PushIdle(i);
    }
    return;
  }
  if (stopping_ || finished_) return MaybeFinish();
  const Clock::time_point now = Clock::now();
  if (!open_loop_) return Dispatch(i, now);
  if (s.idle) return;  // already waiting for the pacer
  const Clock::time_point due = DueTime(next_k_);
  if (due > now) {
    PushIdle(i);
    return ArmPacer();
  }
  ++next_k_;
  NoteLag(due, now, /*from_timer=*/false);
  Dispatch(i, due);
}

void Worker::Dispatch(uint32_t i, Clock::time_point intended) {
  Slot& s = slots_[i];
  s.idle = false;
  if (!StartOp(i, s, intended)) {
    StopIssuing();
    return MaybeFinish();
  }
  SendOp(i, s);
}

bool Worker::StartOp(uint32_t slot, Slot& s, Clock::time_point intended) {
  if (ctx_.stop_issuing.load(std::memory_order_relaxed)) return false;
  OpKind kind = OpKind::kPut;
  switch (opt_.mode) {
    case Mode::kPut: kind = OpKind::kPut; break;
    case Mode::kBatch: kind = OpKind::kBatch; break;
    case Mode::kGet: kind = OpKind::kGet; break;
    case Mode::kMixed: kind = rng_.Unit() < opt_.read_ratio ? OpKind::kGet : OpKind::kPut; break;
  }
  int64_t want = kind == OpKind::kBatch ? opt_.batch_size : 1;
  if (opt_.max_events > 0) {
    const int64_t left = ctx_.budget.fetch_sub(want, std::memory_order_relaxed);
    if (left <= 0) return false;
    want = std::min(want, left);
  }
  uint32_t events = 0;
  switch (kind) {
    case OpKind::kPut:
      if (!stream_->Next(&s.event)) return false;
      events = 1;
      break;
    case OpKind::kBatch:
      s.batch.clear();
      for (int64_t i = 0; i < want; ++i) {
        GeneratedEvent e;
        if (!stream_->Next(&e)) break;
        s.batch.push_back(e);
      }
      if (s.batch.empty()) return false;
      events = static_cast<uint32_t>(s.batch.size());
      break;
    case OpKind::kGet:
      s.event.domain =
          opt_.mode == Mode::kGet ? ctx_.workload.RandomDomain(rng_) : stream_->WrittenDomain(rng_);
      break;
  }
  s.kind = kind;
  s.has_op = true;
  s.retry = false;
  s.attempts = 0;
  s.intended = intended;
  s.first_seq = next_seq_;
  next_seq_ += std::max<uint32_t>(events, 1);
  ++busy_;
  HttpConnection& conn = ConnFor(slot, kind);
  switch (kind) {
    case OpKind::kPut: BuildPut(conn, s); break;
    case OpKind::kBatch: BuildBatch(conn, s); break;
    case OpKind::kGet: BuildGet(conn, s); break;
  }
  if (kind == OpKind::kGet) {
    lookups_sent_.store(lookups_sent_.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
  } else {
    events_sent_.store(events_sent_.load(std::memory_order_relaxed) + events,
                       std::memory_order_relaxed);
  }
  return true;
}

void Worker::AppendKey(uint64_t seq, std::string* out) const {
  fmt::format_to(std::back_inserter(*out), "{:016x}-{:x}", ctx_.run_id, seq);
}

void Worker::BuildPut(HttpConnection& conn, const Slot& s) {
  std::string& h = conn.head();
  h.clear();
  h.append("PUT ").append(ctx_.target.base_path).append("/events/");
  ctx_.workload.AppendDomainName(s.event.domain, &h);
  h.push_back('/');
  h.append(EventTypeName(s.event.type));
  h.append(" HTTP/1.1\r\nHost: ").append(ctx_.target.host_header).append("\r\n");
  if (opt_.idempotency_keys) {
    h.append("Idempotency-Key: ");
    AppendKey(s.first_seq, &h);
    h.append("\r\n");
  }
  h.append("Content-Length: 0\r\n\r\n");
  conn.body().clear();
}

void Worker::BuildBatch(HttpConnection& conn, const Slot& s) {
  std::string& b = conn.body();
  b.clear();
  for (size_t i = 0; i < s.batch.size(); ++i) {
    const GeneratedEvent& e = s.batch[i];
    b.append(R"({"domain":")");
    ctx_.workload.AppendDomainName(e.domain, &b);
    b.append(R"(","type":")").append(EventTypeName(e.type)).push_back('"');
    if (opt_.idempotency_keys) {
      b.append(R"(,"id":")");
      AppendKey(s.first_seq + i, &b);
      b.push_back('"');
    }
    b.append("}\n");
  }
  std::string& h = conn.head();
  h.clear();
  h.append("POST ").append(ctx_.target.base_path).append("/events HTTP/1.1\r\nHost: ");
  h.append(ctx_.target.host_header);
  h.append("\r\nContent-Type: application/x-ndjson\r\nContent-Length: ");
  fmt::format_to(std::back_inserter(h), "{}\r\n\r\n", b.size());
}

void Worker::BuildGet(HttpConnection& conn, const Slot& s) {
  std::string& h = conn.head();
  h.clear();
  h.append("GET ").append(ctx_.query_target.base_path).append("/domains/");
  ctx_.workload.AppendDomainName(s.event.domain, &h);
  h.append(" HTTP/1.1\r\nHost: ").append(ctx_.query_target.host_header).append("\r\n\r\n");
  conn.body().clear();
}

void Worker::SendOp(uint32_t i, Slot& s) {
  HttpConnection& conn = ConnFor(i, s.kind);
  if (!conn.ready()) {  // (re)connecting: OnReady sends it
    s.retry = true;
    return;
  }
  requests_sent_.store(requests_sent_.load(std::memory_order_relaxed) + 1,
                       std::memory_order_relaxed);
  const bool first = s.attempts++ == 0;
  if (first) return conn.Send();
  conn.SendAfter(s.retry_delay);
}

uint32_t Worker::EventCount(const Slot& s) const {
  switch (s.kind) {
    case OpKind::kPut: return 1;
    case OpKind::kBatch: return static_cast<uint32_t>(s.batch.size());
    case OpKind::kGet: return 0;
  }
  return 0;
}

void Worker::OnResponse(HttpConnection& conn, const HttpResponseView& r) {
  const uint32_t i = SlotOf(conn);
  Slot& s = slots_[i];
  if (!s.has_op || &conn != &ConnFor(i, s.kind)) return;
  const Clock::time_point now = Clock::now();
  if (r.status >= 200 && r.status < 300) {
    OnSuccess(s, r, now);
    return EndOp(s);
  }
  {
    std::lock_guard lock(mu_);
    ++totals_.status_errors[std::clamp(r.status, 0, LoadTotals::kStatusCodes - 1)];
    ++interval_.errors;
  }
  const bool retryable = r.status == 429 || r.status >= 500;
  // 503 and 429 say the events were refused; other 5xx leave it open.
  const bool maybe_stored = r.status >= 500 && r.status != 503;
  const Clock::duration floor =
      std::min<Clock::duration>(std::chrono::seconds(r.retry_after_s), kMaxRetryDelay);
  OnError(s, retryable, maybe_stored, floor);
}

void Worker::OnFailure(HttpConnection& conn, TransportError error, bool in_flight) {
  {
    std::lock_guard lock(mu_);
    ++totals_.transport_errors[static_cast<size_t>(error)];
    ++interval_.errors;
  }
  const uint32_t i = SlotOf(conn);
  Slot& s = slots_[i];
  if (!in_flight || !s.has_op || &conn != &ConnFor(i, s.kind)) return;
  OnError(s, /*retryable=*/true, /*maybe_stored=*/true, Clock::duration::zero());
}

void Worker::OnError(Slot& s, bool retryable, bool maybe_stored, Clock::duration retry_after) {
  const bool events = s.kind != OpKind::kGet;
  // Once the load stops, events the server refused (503, 429) are not worth
  // retrying: they were definitely not stored, so giving up keeps the ledger
  // exact. Events that may have been stored are retried until answered.
  const bool worth_it = !stopping_ || maybe_stored;
  if (events && opt_.verify && retryable && worth_it && s.attempts < opt_.max_retries &&
      !finished_) {
    s.retry = true;  // OnReady resends, after this answer or after reconnecting
    s.retry_delay = retry_after > Clock::duration::zero() ? retry_after : Backoff(s.attempts, rng_);
    std::lock_guard lock(mu_);
    ++totals_.retries;
    return;
  }
  GiveUp(s, maybe_stored);
  EndOp(s);
}

void Worker::GiveUp(Slot& s, bool maybe_stored) {
  const uint32_t n = EventCount(s);
  if (maybe_stored && ctx_.ledger != nullptr) {
    if (s.kind == OpKind::kPut) ctx_.ledger->Uncertain(s.event.domain, s.event.type);
    if (s.kind == OpKind::kBatch) {
      for (const GeneratedEvent& e : s.batch) ctx_.ledger->Uncertain(e.domain, e.type);
    }
  }
  std::lock_guard lock(mu_);
  if (s.kind == OpKind::kGet) {
    ++totals_.lookups_failed;
  } else if (maybe_stored) {
    totals_.events_uncertain += n;
  } else {
    totals_.events_failed += n;
  }
}

void Worker::OnSuccess(Slot& s, const HttpResponseView& r, Clock::time_point now) {
  uint64_t acked = 0;
  uint64_t rejected = 0;
  uint64_t uncertain = 0;
  Ledger* ledger = ctx_.ledger;
  switch (s.kind) {
    case OpKind::kPut:
      acked = 1;
      if (ledger) ledger->Ack(s.event.domain, s.event.type);
      recent_[recent_count_++ % recent_.size()] = s.event.domain;
      break;
    case OpKind::kGet: break;
    case OpKind::kBatch: {
      // {"accepted":N,"rejected":M,"errors":[{"index":i,...},...]}
      const size_t n = s.batch.size();
      simdjson::dom::element doc;
      uint64_t reported_rejected = 0;
      std::vector<bool> refused;  // only allocated when something was rejected
      // An empty 2xx answer (the nginx-204 baseline) accepts the whole batch.
      bool known = r.body.empty() || (!json_.parse(r.body.data(), r.body.size()).get(doc) &&
                                      !doc["rejected"].get_uint64().get(reported_rejected));
      if (known && reported_rejected > 0) {
        refused.assign(n, false);
        uint64_t listed = 0;
        simdjson::dom::array errors;
        if (!doc["errors"].get_array().get(errors)) {
          for (simdjson::dom::element e : errors) {
            uint64_t index = 0;
            if (!e["index"].get_uint64().get(index) && index < n && !refused[index]) {
              refused[index] = true;
              ++listed;
            }
          }
        }
        known = listed == reported_rejected;  // else the list was truncated
      }
      for (size_t i = 0; i < n; ++i) {
        const GeneratedEvent& e = s.batch[i];
        if (!refused.empty() && refused[i]) {
          ++rejected;
        } else if (known) {
          ++acked;
          if (ledger) ledger->Ack(e.domain, e.type);
        } else {
          ++uncertain;
          if (ledger) ledger->Uncertain(e.domain, e.type);
        }
      }
      if (n > 0) recent_[recent_count_++ % recent_.size()] = s.batch[n - 1].domain;
      break;
    }
  }
  const uint64_t lat = Ns(now - s.intended);
  const bool measured = now >= ctx_.warmup_end;
  const bool in_window = measured && ctx_.measuring.load(std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  ++totals_.requests_ok;
  ++interval_.requests;
  interval_.latency.Record(lat);
  if (s.kind == OpKind::kGet) {
    ++totals_.lookups_ok;
    ++interval_.ops;
    if (in_window) ++totals_.lookups_ok_measured;
  } else {
    totals_.events_acked += acked;
    totals_.events_rejected += rejected;
    totals_.events_uncertain += uncertain;
    interval_.ops += acked;
    if (in_window) totals_.events_acked_measured += acked;
  }
  if (in_window) ++totals_.requests_ok_measured;
  if (measured) {
    totals_.latency.Record(lat);
    totals_.latency_by_kind[static_cast<size_t>(s.kind)].Record(lat);
  }
}

void Worker::EndOp(Slot& s) {
  s.has_op = false;
  s.retry = false;
  --busy_;
  if (stopping_) MaybeFinish();
}

void Worker::NoteLag(Clock::time_point intended, Clock::time_point now, bool from_timer) {
  const Clock::duration lag = now - intended;
  if (lag <= kLateThreshold) return;
  std::lock_guard lock(mu_);
  ++(from_timer ? totals_.late_ops_client : totals_.late_ops_busy);
  totals_.max_lag_ns = std::max(totals_.max_lag_ns, Ns(lag));
}

Clock::time_point Worker::DueTime(uint64_t k) const {
  return ctx_.start + std::chrono::nanoseconds(
                          static_cast<int64_t>((static_cast<double>(k) + phase_) * interval_ns_));
}

void Worker::ArmPacer() {
  if (pacer_armed_ || stopping_ || idle_.empty()) return;
  pacer_armed_ = true;
  pacer_.expires_at(DueTime(next_k_));
  pacer_.async_wait([this](const boost::system::error_code& ec) {
    pacer_armed_ = false;
    if (ec || stopping_) return;
    OnPacer();
  });
}

void Worker::OnPacer() {
  const Clock::time_point now = Clock::now();
  while (!idle_.empty() && !stopping_) {
    const Clock::time_point due = DueTime(next_k_);
    if (due > now) break;
    const uint32_t i = idle_.back();
    idle_.pop_back();
    if (!slots_[i].idle) continue;  // stale entry: dispatched since
    ++next_k_;
    NoteLag(due, now, /*from_timer=*/true);
    Dispatch(i, due);
  }
  ArmPacer();
}

void Worker::ArmSweep() {
  sweep_.expires_after(kSweepInterval);
  sweep_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || finished_) return;
    const Clock::time_point now = Clock::now();
    for (auto& c : conns_) c->CheckDeadline(now);
    if (!stopping_ && ctx_.stop_issuing.load(std::memory_order_relaxed)) StopIssuing();
    MaybeFinish();
    if (!finished_) ArmSweep();
  });
}

void Worker::StopIssuing() {
  ctx_.stop_issuing.store(true, std::memory_order_relaxed);
  MarkStopping();
}

void Worker::MarkStopping() {
  if (stopping_) return;
  stopping_ = true;
  stop_time_ = Clock::now();
  pacer_.cancel();
}

void Worker::MaybeFinish() {
  if (stopping_ && busy_ == 0 && !finished_) Finish();
}

void Worker::Finish() {
  finished_ = true;
  if (open_loop_ && begun_) {
    // Operations that fell due before the stop but were never sent.
    const double elapsed = static_cast<double>(Ns(stop_time_ - ctx_.start));
    const double due = std::floor(elapsed / interval_ns_ - phase_) + 1;
    if (due > static_cast<double>(next_k_)) {
      std::lock_guard lock(mu_);
      totals_.backlog_at_end += static_cast<uint64_t>(due) - next_k_;
    }
  }
  pacer_.cancel();
  sweep_.cancel();
  for (auto& c : conns_) c->Shutdown();
  ctx_.workers_done.fetch_add(1);
}

void Worker::DoAbort() {
  MarkStopping();
  if (finished_) return;
  for (Slot& s : slots_) {
    if (!s.has_op) continue;
    GiveUp(s, /*maybe_stored=*/true);
    s.has_op = false;
    --busy_;
  }
  Finish();
}

}  // namespace catchall::bench
