#include "bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "bench/json_writer.h"

namespace catchall::bench {
namespace {

double Ms(uint64_t ns) {
  return std::round(static_cast<double>(ns) / 1e3) / 1e3;
}  // 1 us precision
double Rate(uint64_t n, double s) {
  return s > 0 ? std::round(static_cast<double>(n) / s * 10) / 10 : 0;
}

void LatencyObject(JsonWriter& w, const Histogram& h) {
  w.BeginObject();
  w.Field("p50", Ms(h.Percentile(0.50)));
  w.Field("p90", Ms(h.Percentile(0.90)));
  w.Field("p95", Ms(h.Percentile(0.95)));
  w.Field("p99", Ms(h.Percentile(0.99)));
  w.Field("p999", Ms(h.Percentile(0.999)));
  w.Field("max", Ms(h.max()));
  w.Field("min", Ms(h.min()));
  w.Field("mean", Ms(static_cast<uint64_t>(h.mean())));
  w.Field("count", h.count());
  w.EndObject();
}

bool IsOpenLoop(const BenchOptions& o) { return o.rate > 0; }

}  // namespace

std::string Thousands(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string ResultsJson(const BenchReport& r) {
  const BenchOptions& o = r.options;
  const LoadTotals& t = r.totals;
  JsonWriter w;
  w.BeginObject();
  w.Field("tool", "catchall-bench");
  w.Field("schema_version", uint64_t{1});
  w.Field("started_at", r.started_at);
  if (!o.label.empty()) w.Field("label", o.label);

  w.Key("config").BeginObject();
  w.Field("target", o.target);
  w.Field("query_target", o.query_target.empty() ? o.target : o.query_target);
  w.Field("mode", ModeName(o.mode));
  w.Field("workload", r.workload);
  w.Field("domains", o.domains);
  w.Field("seed", o.seed);
  w.Field("rate", o.rate);
  w.Field("open_loop", IsOpenLoop(o));
  w.Field("duration_s", o.duration_s);
  w.Field("warmup_s", o.warmup_s);
  w.Field("connections", uint64_t{o.connections});
  w.Field("threads", uint64_t{o.threads});
  if (o.mode == Mode::kBatch) w.Field("batch_size", uint64_t{o.batch_size});
  if (o.mode == Mode::kMixed) w.Field("read_ratio", o.read_ratio);
  if (r.workload == "uniform") w.Field("bounce_probability", o.bounce_probability);
  w.Field("max_events", o.max_events);
  w.Field("verify", o.verify);
  w.Field("threshold", o.threshold);
  w.Field("freshness", o.freshness);
  w.Field("idempotency_keys", o.idempotency_keys);
  w.Field("timeout_s", o.timeout_s);
  w.EndObject();

  w.Field("stop_reason", r.stop_reason);
  w.Field("drain_aborted", r.drain_aborted);
  w.Field("duration_s", std::round(r.window_s * 1000) / 1000);
  w.Field("wall_s", std::round(r.wall_s * 1000) / 1000);

  const uint64_t ops = t.events_acked_measured + t.lookups_ok_measured;
  w.Field("throughput_per_s", Rate(ops, r.window_s));
  w.Field("events_per_s", Rate(t.events_acked_measured, r.window_s));
  w.Field("lookups_per_s", Rate(t.lookups_ok_measured, r.window_s));
  w.Field("requests_per_s", Rate(t.requests_ok_measured, r.window_s));

  w.Key("latency_ms");
  LatencyObject(w, t.latency);
  w.Key("latency_by_op_ms").BeginObject();
  for (int k = 0; k < kOpKinds; ++k) {
    if (t.latency_by_kind[k].count() == 0) continue;
    w.Key(OpKindName(static_cast<OpKind>(k)));
    LatencyObject(w, t.latency_by_kind[k]);
  }
  w.EndObject();

  w.Field("errors", t.errors());
  w.Key("errors_by_status").BeginObject();
  for (int code = 0; code < LoadTotals::kStatusCodes; ++code) {
    if (t.status_errors[code] > 0) w.Field(std::to_string(code), t.status_errors[code]);
  }
  w.EndObject();
  w.Key("transport_errors").BeginObject();
  for (int k = 0; k < kTransportErrorKinds; ++k) {
    w.Field(TransportErrorName(static_cast<TransportError>(k)), t.transport_errors[k]);
  }
  w.EndObject();

  w.Key("requests").BeginObject();
  w.Field("sent", t.requests_sent);
  w.Field("ok", t.requests_ok);
  w.Field("retries", t.retries);
  w.EndObject();
  w.Key("events").BeginObject();
  w.Field("sent", t.events_sent);
  w.Field("acked", t.events_acked);
  w.Field("rejected", t.events_rejected);
  w.Field("failed", t.events_failed);
  w.Field("uncertain", t.events_uncertain);
  w.EndObject();
  w.Key("lookups").BeginObject();
  w.Field("sent", t.lookups_sent);
  w.Field("ok", t.lookups_ok);
  w.Field("failed", t.lookups_failed);
  w.EndObject();
  if (r.workload == "challenge") w.Field("workload_passes", r.passes);

  w.Key("schedule").BeginObject();
  w.Field("open_loop", IsOpenLoop(o));
  w.Field("target_rate", o.rate);
  w.Field("achieved_rate", Rate(ops, r.window_s));
  w.Field("late_ops_busy", t.late_ops_busy);
  w.Field("late_ops_client", t.late_ops_client);
  w.Field("max_lag_ms", Ms(t.max_lag_ns));
  w.Field("backlog_at_end", t.backlog_at_end);
  w.Field("client_fell_behind", t.late_ops_client > 0 || t.backlog_at_end > 0);
  w.EndObject();

  if (r.freshness) {
    const FreshnessResult& f = *r.freshness;
    w.Key("freshness_ms").BeginObject();
    w.Field("p50", Ms(f.latency.Percentile(0.50)));
    w.Field("p95", Ms(f.latency.Percentile(0.95)));
    w.Field("p99", Ms(f.latency.Percentile(0.99)));
    w.Field("max", Ms(f.latency.max()));
    w.Field("mean", Ms(static_cast<uint64_t>(f.latency.mean())));
    w.Field("count", f.latency.count());
    w.Field("probes_started", f.started);
    w.Field("probes_completed", f.completed);
    w.Field("timeouts", f.timeouts);
    w.Field("failures", f.failures);
    w.Field("skipped", f.skipped);
    w.EndObject();
  }

  if (r.verify) {
    const VerifyResult& v = *r.verify;
    w.Key("verify").BeginObject();
    w.Field("ok", v.ok);
    w.Field("mismatches", v.mismatches);
    w.Field("checked_domains", v.checked);
    w.Field("first_pass_mismatches", v.first_pass_mismatches);
    w.Field("rechecks", v.rechecks);
    w.Field("complete", v.complete);
    w.Field("unanswered", v.unanswered);
    w.Field("settled", v.settled);
    w.Field("settle_s", std::round(v.settle_s * 1000) / 1000);
    w.Field("check_s", std::round(v.check_s * 1000) / 1000);
    w.Field("expected_delivered", v.expected_delivered);
    w.Field("expected_bounced", v.expected_bounced);
    w.Field("uncertain_domains", v.uncertain_domains);
    w.Field("merged_names", v.merged_names);
    w.Field("lookup_requests", v.lookup_requests);
    w.Field("lookup_errors", v.lookup_errors);
    w.Key("examples").BeginArray();
    for (const Mismatch& m : v.examples) {
      w.BeginObject();
      w.Field("domain", m.domain);
      w.Key("expected").BeginObject();
      w.Field("delivered", m.expected.delivered);
      w.Field("bounced", m.expected.bounced);
      w.Field("status", m.expected_status);
      if (m.uncertain.delivered + m.uncertain.bounced > 0) {
        w.Field("uncertain_delivered", m.uncertain.delivered);
        w.Field("uncertain_bounced", m.uncertain.bounced);
      }
      w.EndObject();
      w.Key("actual").BeginObject();
      w.Field("delivered", m.actual.delivered);
      w.Field("bounced", m.actual.bounced);
      w.Field("status", m.actual_status);
      if (!m.error.empty()) w.Field("error", m.error);
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }

  w.Key("timeline").BeginArray();
  for (const TimelinePoint& p : r.timeline) {
    w.BeginObject();
    w.Field("t", std::round(p.t_s * 1000) / 1000);
    w.Field("throughput_per_s", Rate(p.ops, p.length_s));
    w.Field("requests_per_s", Rate(p.requests, p.length_s));
    w.Field("errors", p.errors);
    w.Field("p50_ms", Ms(p.p50_ns));
    w.Field("p99_ms", Ms(p.p99_ns));
    w.Field("max_ms", Ms(p.max_ns));
    w.Field("warmup", p.warmup);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.str();
}

namespace {

// A "nice" tick step (1, 2 or 5 x 10^k) giving about `ticks` ticks over `range`.
double NiceStep(double range, int ticks) {
  if (range <= 0) return 1;
  const double raw = range / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3.5 ? 2 : norm < 7.5 ? 5 : 10) * mag;
}

std::string Num(double v) { return fmt::format("{:.1f}", v); }

std::string TickLabel(double v, double step) {
  if (step >= 1) return fmt::format("{:.0f}", v);
  const int decimals = std::clamp(static_cast<int>(std::ceil(-std::log10(step))), 1, 6);
  return fmt::format("{:.{}f}", v, decimals);
}

}  // namespace

std::string LatencySvg(const BenchReport& r) {
  constexpr double kW = 960, kH = 420, kLeft = 70, kRight = 20, kTop = 50, kBottom = 50;
  const double pw = kW - kLeft - kRight;
  const double ph = kH - kTop - kBottom;
  double t_max = 1;
  double y_max = 0;
  for (const TimelinePoint& p : r.timeline) {
    t_max = std::max(t_max, p.t_s);
    y_max = std::max(y_max, static_cast<double>(p.p99_ns) / 1e6);
  }
  if (y_max <= 0) y_max = 1;
  const double y_step = NiceStep(y_max * 1.05, 5);
  y_max = std::ceil(y_max * 1.05 / y_step) * y_step;
  const double x_step = NiceStep(t_max, 10);
  auto x = [&](double t) { return kLeft + t / t_max * pw; };
  auto y = [&](double ms) { return kTop + ph - std::min(ms, y_max) / y_max * ph; };

  std::string s;
  auto out = std::back_inserter(s);
  fmt::format_to(out,
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
                 "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n",
                 kW, kH);
  fmt::format_to(out, "<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", kW, kH);
  const uint64_t ops = r.totals.events_acked_measured + r.totals.lookups_ok_measured;
  fmt::format_to(out,
                 "<text x=\"{}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">catchall-bench "
                 "{} / {} against {} ({}, {} connections): {}/s, p99 {:.3f} ms</text>\n",
                 kLeft, ModeName(r.options.mode), r.workload, r.options.target,
                 r.options.rate > 0 ? fmt::format("open loop {}/s", r.options.rate) : "closed loop",
                 r.options.connections, Thousands(static_cast<uint64_t>(Rate(ops, r.window_s))),
                 static_cast<double>(r.totals.latency.Percentile(0.99)) / 1e6);
  // Warmup shading.
  double warm_end = 0;
  for (const TimelinePoint& p : r.timeline) {
    if (p.warmup) warm_end = p.t_s;
  }
  if (warm_end > 0) {
    fmt::format_to(out,
                   "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#eeeeee\"/>"
                   "<text x=\"{}\" y=\"{}\" fill=\"#888\">warmup</text>\n",
                   Num(kLeft), Num(kTop), Num(x(warm_end) - kLeft), Num(ph), Num(kLeft + 4),
                   Num(kTop + 14));
  }
  // Grid and axes.
  const int y_ticks = static_cast<int>(std::floor(y_max / y_step + 0.5));
  for (int i = 0; i <= y_ticks; ++i) {
    const double v = i * y_step;
    fmt::format_to(out,
                   "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#dddddd\"/>"
                   "<text x=\"{3}\" y=\"{4}\" text-anchor=\"end\">{5}</text>\n",
                   Num(kLeft), Num(kLeft + pw), Num(y(v)), Num(kLeft - 6), Num(y(v) + 4),
                   TickLabel(v, y_step));
  }
  const int x_ticks = static_cast<int>(std::floor(t_max / x_step + 0.5));
  for (int i = 0; i <= x_ticks; ++i) {
    const double t = i * x_step;
    fmt::format_to(out,
                   "<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#eeeeee\"/>"
                   "<text x=\"{0}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                   Num(x(t)), Num(kTop), Num(kTop + ph), Num(kTop + ph + 18), TickLabel(t, x_step));
  }
  fmt::format_to(
      out, "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n",
      Num(kLeft), Num(kTop), Num(pw), Num(ph));
  fmt::format_to(out, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time (s)</text>\n",
                 Num(kLeft + pw / 2), Num(kH - 10));
  fmt::format_to(out,
                 "<text x=\"16\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0})\">"
                 "latency (ms)</text>\n",
                 Num(kTop + ph / 2));
  // The two series.
  auto polyline = [&](const char* color, auto value) {
    std::string pts;
    for (const TimelinePoint& p : r.timeline) {
      if (p.requests == 0) continue;
      fmt::format_to(std::back_inserter(pts), "{},{} ", Num(x(p.t_s)), Num(y(value(p))));
    }
    fmt::format_to(out,
                   "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
                   color, pts);
  };
  polyline("#1f77b4", [](const TimelinePoint& p) { return static_cast<double>(p.p50_ns) / 1e6; });
  polyline("#d62728", [](const TimelinePoint& p) { return static_cast<double>(p.p99_ns) / 1e6; });
  // Legend.
  const double lx = kLeft + pw - 150;
  fmt::format_to(
      out,
      "<line x1=\"{0}\" x2=\"{1}\" y1=\"38\" y2=\"38\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
      "<text x=\"{2}\" y=\"42\">p50</text>"
      "<line x1=\"{3}\" x2=\"{4}\" y1=\"38\" y2=\"38\" stroke=\"#d62728\" stroke-width=\"2\"/>"
      "<text x=\"{5}\" y=\"42\">p99</text>\n",
      Num(lx), Num(lx + 20), Num(lx + 24), Num(lx + 70), Num(lx + 90), Num(lx + 94));
  s.append("</svg>\n");
  return s;
}

std::string Summary(const BenchReport& r) {
  const BenchOptions& o = r.options;
  const LoadTotals& t = r.totals;
  const uint64_t ops = t.events_acked_measured + t.lookups_ok_measured;
  std::string s;
  auto out = std::back_inserter(s);
  const bool reads_elsewhere = !o.query_target.empty() && o.query_target != o.target;
  fmt::format_to(out, "catchall-bench {} / {} -> {}{} ({} connections, {} thread{}, {})\n",
                 ModeName(o.mode), r.workload, o.target,
                 reads_elsewhere ? fmt::format(", reads -> {}", o.query_target) : std::string(),
                 o.connections, o.threads, o.threads == 1 ? "" : "s",
                 o.rate > 0 ? fmt::format("open loop at {}/s", o.rate) : "closed loop");
  fmt::format_to(out, "  measured    {:.2f} s (warmup {:.2f} s), stopped by {}{}; seed {}\n",
                 r.window_s, o.warmup_s, r.stop_reason, r.drain_aborted ? " (drain timed out)" : "",
                 o.seed);
  fmt::format_to(out, "  throughput  {}/s",
                 Thousands(static_cast<uint64_t>(Rate(ops, r.window_s))));
  if (t.events_acked_measured > 0 && t.lookups_ok_measured > 0) {
    fmt::format_to(out, " ({} events/s + {} lookups/s)",
                   Thousands(static_cast<uint64_t>(Rate(t.events_acked_measured, r.window_s))),
                   Thousands(static_cast<uint64_t>(Rate(t.lookups_ok_measured, r.window_s))));
  }
  fmt::format_to(out, ", {} requests/s\n",
                 Thousands(static_cast<uint64_t>(Rate(t.requests_ok_measured, r.window_s))));
  const Histogram& h = t.latency;
  fmt::format_to(out,
                 "  latency ms  p50 {:.3f}  p95 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  max {:.3f}  "
                 "({} samples)\n",
                 Ms(h.Percentile(0.5)), Ms(h.Percentile(0.95)), Ms(h.Percentile(0.99)),
                 Ms(h.Percentile(0.999)), Ms(h.max()), Thousands(h.count()));
  fmt::format_to(out, "  requests    {} sent, {} ok, {} retries; events {} sent, {} acked",
                 Thousands(t.requests_sent), Thousands(t.requests_ok), Thousands(t.retries),
                 Thousands(t.events_sent), Thousands(t.events_acked));
  if (t.events_rejected + t.events_failed + t.events_uncertain > 0) {
    fmt::format_to(out, ", {} rejected, {} failed, {} uncertain", Thousands(t.events_rejected),
                   Thousands(t.events_failed), Thousands(t.events_uncertain));
  }
  if (t.lookups_sent > 0) {
    fmt::format_to(out, "; lookups {} sent, {} ok", Thousands(t.lookups_sent),
                   Thousands(t.lookups_ok));
  }
  s.push_back('\n');
  fmt::format_to(out, "  errors      {}", Thousands(t.errors()));
  for (int code = 0; code < LoadTotals::kStatusCodes; ++code) {
    if (t.status_errors[code] > 0) {
      fmt::format_to(out, "  HTTP {}: {}", code, Thousands(t.status_errors[code]));
    }
  }
  for (int k = 0; k < kTransportErrorKinds; ++k) {
    if (t.transport_errors[k] > 0) {
      fmt::format_to(out, "  {}: {}", TransportErrorName(static_cast<TransportError>(k)),
                     Thousands(t.transport_errors[k]));
    }
  }
  s.push_back('\n');
  if (o.rate > 0) {
    fmt::format_to(out,
                   "  schedule    target {}/s; late sends: {} (connections busy), {} (client "
                   "behind); max lag {:.3f} ms; never sent {}\n",
                   o.rate, Thousands(t.late_ops_busy), Thousands(t.late_ops_client),
                   Ms(t.max_lag_ns), Thousands(t.backlog_at_end));
  }
  if (r.freshness) {
    const FreshnessResult& f = *r.freshness;
    fmt::format_to(out,
                   "  freshness   p50 {:.3f}  p95 {:.3f}  p99 {:.3f}  max {:.3f} ms  ({} probes, "
                   "{} timeouts, {} failures)\n",
                   Ms(f.latency.Percentile(0.5)), Ms(f.latency.Percentile(0.95)),
                   Ms(f.latency.Percentile(0.99)), Ms(f.latency.max()), f.latency.count(),
                   f.timeouts, f.failures);
  }
  if (r.verify) {
    const VerifyResult& v = *r.verify;
    fmt::format_to(out,
                   "  verify      {}: {} domains checked, {} mismatches ({} before {} "
                   "rechecks), {} unanswered, {} uncertain; settled {} in {:.1f} s, checked in "
                   "{:.1f} s\n",
                   v.ok ? "OK" : "FAILED", Thousands(v.checked), Thousands(v.mismatches),
                   Thousands(v.first_pass_mismatches), v.rechecks, Thousands(v.unanswered),
                   Thousands(v.uncertain_domains), v.settled ? "yes" : "no", v.settle_s, v.check_s);
    for (const Mismatch& m : v.examples) {
      fmt::format_to(out, "    {}: expected {}/{} ({}), got {}/{} ({}){}\n", m.domain,
                     m.expected.delivered, m.expected.bounced, m.expected_status,
                     m.actual.delivered, m.actual.bounced, m.actual_status,
                     m.error.empty() ? "" : " error: " + m.error);
    }
  }
  fmt::format_to(out, "  results     {}/results.json, {}/latency.svg\n", o.out_dir, o.out_dir);
  return s;
}

}  // namespace catchall::bench
