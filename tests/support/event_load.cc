#include "support/event_load.h"

#include <random>

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

void EventLoad::Run(uint16_t port, int t) {
  HttpClient client(port, std::chrono::seconds(30));
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

}  // namespace catchall::testing
