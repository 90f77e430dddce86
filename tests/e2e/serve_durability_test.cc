// Durability and exactly-once of `catchall serve`: restarts, SIGTERM during
// load, and kill -9 at an arbitrary moment of a concurrent load.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/catchall_client.h"
#include "support/server_process.h"

namespace catchall::testing {
namespace {

// One event the load sent: where, what, with which Idempotency-Key.
struct SentEvent {
  std::string domain;
  bool bounce = false;
  std::string id;
};

// Concurrent PUT load from several keep-alive connections. Every event has a
// unique Idempotency-Key, so an event whose answer was lost can be retried
// later without being counted twice.
class Load {
 public:
  // `tag` makes the Idempotency-Keys unique across loads on the same data.
  Load(uint16_t port, int threads, int domains, const std::string& tag = "")
      : domains_(domains), tag_(tag) {
    for (int t = 0; t < threads; ++t) {
      workers_.emplace_back([this, port, t] { Run(port, t); });
    }
  }
  ~Load() { Stop(); }

  void Stop() {
    stop_ = true;
    for (auto& w : workers_) {
      if (w.joinable()) w.join();
    }
  }
  size_t acked() const { return acked_count_.load(); }
  // Acknowledged (204) and unanswered events.
  std::vector<SentEvent> acked_events() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  std::vector<SentEvent> unanswered_events() {
    std::lock_guard<std::mutex> lock(mu_);
    return unanswered_;
  }

 private:
  void Run(uint16_t port, int t) {
    HttpClient client(port, std::chrono::seconds(5));
    std::mt19937 rng(static_cast<unsigned>(t) * 7919U + static_cast<unsigned>(tag_.size()) + 1);
    for (int seq = 0; !stop_; ++seq) {
      SentEvent e;
      e.domain = "kill-" + std::to_string(rng() % static_cast<unsigned>(domains_)) + ".com";
      e.bounce = rng() % 50 == 0;
      e.id = tag_ + "t" + std::to_string(t) + "-" + std::to_string(seq);
      HttpResult r = client.Put("/events/" + e.domain + (e.bounce ? "/bounced" : "/delivered"),
                                {{"Idempotency-Key", e.id}});
      std::lock_guard<std::mutex> lock(mu_);
      if (r.status == 204) {
        acked_.push_back(e);
        ++acked_count_;
      } else {
        // Not acknowledged: it may or may not have reached the log.
        unanswered_.push_back(e);
        if (r.status == 0) return;  // the server is gone
      }
    }
  }

  int domains_;
  std::string tag_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> acked_count_{0};
  std::mutex mu_;
  std::vector<SentEvent> acked_;       // GUARDED_BY(mu_)
  std::vector<SentEvent> unanswered_;  // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;
};

using Counts = std::map<std::string, std::pair<int64_t, int64_t>>;  // delivered, bounced

Counts Tally(const std::vector<SentEvent>& events) {
  Counts c;
  for (const auto& e : events) (e.bounce ? c[e.domain].second : c[e.domain].first) += 1;
  return c;
}

std::vector<std::string> ServeArgs(const std::string& dir) {
  return {"serve", "--data-dir", dir, "--partitions", "4"};
}

TEST(ServeDurabilityTest, CountsSurviveARestart) {
  TempDir data;
  {
    ServerProcess server(ServeArgs(data.path()));
    ASSERT_TRUE(server.WaitReady());
    HttpClient client(server.port());
    for (int i = 0; i < 20; ++i) ASSERT_EQ(client.Put("/events/persist.com/delivered").status, 204);
    ASSERT_EQ(client.Put("/events/persist.com/bounced").status, 204);
    EXPECT_EQ(server.Terminate(), 0) << server.Output();
    EXPECT_THAT(server.Output(), ::testing::HasSubstr("stopped cleanly"));
  }
  ServerProcess again(ServeArgs(data.path()));
  ASSERT_TRUE(again.WaitReady());
  HttpClient client(again.port());
  DomainView v = GetDomain(client, "persist.com");
  EXPECT_EQ(v.delivered, 20);
  EXPECT_EQ(v.bounced, 1);
  EXPECT_EQ(v.state, "not catch-all");
}

TEST(ServeDurabilityTest, SigtermDuringLoadKeepsEveryAcknowledgedEvent) {
  TempDir data;
  std::vector<SentEvent> acked;
  std::vector<SentEvent> unanswered;
  {
    ServerProcess server(ServeArgs(data.path()));
    ASSERT_TRUE(server.WaitReady());
    Load load(server.port(), 4, 20);
    while (load.acked() < 2000) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(server.Terminate(), 0) << server.Output();
    load.Stop();
    acked = load.acked_events();
    unanswered = load.unanswered_events();
  }
  ServerProcess again(ServeArgs(data.path()));
  ASSERT_TRUE(again.WaitReady());
  HttpClient client(again.port());
  Counts expected = Tally(acked);
  Counts maybe = Tally(unanswered);
  for (const auto& [domain, counts] : expected) {
    DomainView v = GetDomain(client, domain);
    EXPECT_GE(v.delivered, counts.first) << domain;
    EXPECT_GE(v.bounced, counts.second) << domain;
    EXPECT_LE(v.delivered, counts.first + maybe[domain].first) << domain;
    EXPECT_LE(v.bounced, counts.second + maybe[domain].second) << domain;
  }
}

// The exactly-once test: kill -9 in the middle of a concurrent load, restart,
// and retry every event whose answer was lost (same Idempotency-Key). Each
// domain must then count every event exactly once: none of the acknowledged
// ones lost, none counted twice.
TEST(ServeDurabilityTest, KillNineMidLoadThenRetryCountsEveryEventExactlyOnce) {
  TempDir data;
  std::vector<SentEvent> acked;
  std::vector<SentEvent> unanswered;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ServerProcess server(ServeArgs(data.path()));
    ASSERT_TRUE(server.WaitReady()) << server.Output();
    {
      Load load(server.port(), 6, 40, "round" + std::to_string(round) + "-");
      std::mt19937 rng(static_cast<unsigned>(round) + 11);
      size_t target = 1500 + rng() % 3000;
      while (load.acked() < target) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      server.Kill();  // SIGKILL: no shutdown code runs
      load.Stop();
      auto a = load.acked_events();
      auto u = load.unanswered_events();
      acked.insert(acked.end(), a.begin(), a.end());
      unanswered.insert(unanswered.end(), u.begin(), u.end());
    }
  }
  ASSERT_GT(acked.size(), 4000U);

  ServerProcess server(ServeArgs(data.path()));
  ASSERT_TRUE(server.WaitReady()) << server.Output();
  HttpClient client(server.port());

  // Before any retry: every acknowledged event is there, and at most the
  // unanswered ones on top.
  Counts expected = Tally(acked);
  Counts maybe = Tally(unanswered);
  for (const auto& [domain, counts] : expected) {
    DomainView v = GetDomain(client, domain);
    EXPECT_GE(v.delivered, counts.first) << domain;
    EXPECT_GE(v.bounced, counts.second) << domain;
    EXPECT_LE(v.delivered, counts.first + maybe[domain].first) << domain;
    EXPECT_LE(v.bounced, counts.second + maybe[domain].second) << domain;
  }

  // Retry what was not answered, with the same keys; then counts are exact.
  for (const SentEvent& e : unanswered) {
    HttpResult r = client.Put("/events/" + e.domain + (e.bounce ? "/bounced" : "/delivered"),
                              {{"Idempotency-Key", e.id}});
    ASSERT_EQ(r.status, 204) << r.body;
    acked.push_back(e);
  }
  Counts exact = Tally(acked);
  for (const auto& [domain, counts] : exact) {
    DomainView v = WaitForCounts(client, domain, counts.first, counts.second);
    EXPECT_EQ(v.delivered, counts.first) << domain;
    EXPECT_EQ(v.bounced, counts.second) << domain;
  }
}

}  // namespace
}  // namespace catchall::testing
