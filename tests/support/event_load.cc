#include "support/event_load.h"

#include <random>

#include "support/json.h"

namespace catchall::testing {

EventLoad::EventLoad(uint16_t port, LoadOptions options) : options_(std::move(options)) {
  for (int t = 0; t < options_.threads; ++t) {
    workers_.emplace_back([this, port, t] { Run(port, t); });
  }
}

EventLoad::~EventLoad() { Stop(); }

void EventLoad::Stop() {
  stop_ = true;
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
}

std::vector<SentEvent> EventLoad::acked_events() {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_;
}

std::vector<SentEvent> EventLoad::unanswered_events() {
  std::lock_guard<std::mutex> lock(mu_);
  return unanswered_;
}

std::vector<Attempt> EventLoad::attempts() {
  std::lock_guard<std::mutex> lock(mu_);
  return attempts_;
}

void EventLoad::Run(uint16_t port, int t) {
  HttpClient client(port, std::chrono::seconds(30), options_.retry_closed_connections);
  std::mt19937 rng(static_cast<unsigned>(t) * 7919U +
                   static_cast<unsigned>(std::hash<std::string>()(options_.tag)));
  for (int seq = 0; !stop_; ++seq) {
    SentEvent e;
    e.domain = options_.domain_prefix +
               std::to_string(rng() % static_cast<unsigned>(options_.domains)) + ".com";
    e.bounce = rng() % 50 == 0;
    e.id = options_.tag + "t" + std::to_string(t) + "-" + std::to_string(seq);
    HttpResult r = client.Put("/events/" + e.domain + (e.bounce ? "/bounced" : "/delivered"),
                              {{"Idempotency-Key", e.id}});
    std::lock_guard<std::mutex> lock(mu_);
    std::string code;
    if (r.status == 0) code = r.body;
    if (r.status >= 400) code = JsonString(r.body, "code").value_or("");
    attempts_.push_back(Attempt{e, r.status, code, r.sent, std::chrono::steady_clock::now()});
    if (r.status == 204) {
      acked_.push_back(e);
      ++acked_count_;
    } else {
      // Not acknowledged: it may or may not have reached the log.
      unanswered_.push_back(e);
      if (r.status != 0) ++refused_count_;
      if (r.status == 0 && options_.stop_when_unreachable) return;
      if (r.status != 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

std::string RequestsCutOffBy(const std::vector<Attempt>& attempts,
                             std::chrono::steady_clock::time_point signalled, size_t* in_flight) {
  std::string cut;
  size_t n = 0;
  *in_flight = 0;
  for (const Attempt& a : attempts) {
    if (!a.sent || *a.sent >= signalled) continue;
    if (a.done > signalled) ++*in_flight;
    if (a.status == 204 || (a.status == 503 && !a.code.empty())) continue;
    if (++n <= 10) {
      auto ms = [](std::chrono::steady_clock::duration d) {
        return std::to_string(std::chrono::duration<double, std::milli>(d).count());
      };
      cut += "  " + a.event.id + " (" + a.event.domain + "): " +
             (a.status == 0 ? "no answer (" + a.code + ")" : "HTTP " + std::to_string(a.status)) +
             ", written " + ms(signalled - *a.sent) + " ms before the signal, failed " +
             ms(a.done - signalled) + " ms after it\n";
    }
  }
  if (n == 0) return {};
  return std::to_string(n) + " requests written before the signal got no proper answer, e.g.\n" +
         cut;
}

Counts Tally(const std::vector<SentEvent>& events) {
  Counts c;
  for (const auto& e : events) (e.bounce ? c[e.domain].second : c[e.domain].first) += 1;
  return c;
}

bool Resend(HttpClient& client, const SentEvent& e, int attempts) {
  for (int i = 0; i < attempts; ++i) {
    HttpResult r = client.Put("/events/" + e.domain + (e.bounce ? "/bounced" : "/delivered"),
                              {{"Idempotency-Key", e.id}});
    if (r.status == 204) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

bool WaitForAcked(EventLoad& load, size_t n, const std::vector<ServerProcess*>& servers) {
  return WaitUntil([&] { return load.acked() >= n; }, std::chrono::seconds(120),
                   [&] {
                     return std::to_string(n) + " acknowledged events (" +
                            std::to_string(load.acked()) + " so far, " +
                            std::to_string(load.refused()) + " refused)";
                   },
                   servers, std::chrono::milliseconds(5));
}

std::vector<SentEvent> AckedAfterResending(EventLoad& load, HttpClient& client,
                                           std::string* failed) {
  std::vector<SentEvent> all = load.acked_events();
  for (const SentEvent& e : load.unanswered_events()) {
    if (!Resend(client, e)) {
      *failed = "event " + e.id + " of " + e.domain + " was never acknowledged";
      return {};
    }
    all.push_back(e);
  }
  return all;
}

}  // namespace catchall::testing
