// Durability and exactly-once of `catchall serve`: restarts, SIGTERM during
// load, and kill -9 at an arbitrary moment of a concurrent load.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/catchall_client.h"
#include "support/event_load.h"
#include "support/server_process.h"

namespace catchall::testing {
namespace {

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
    EventLoad load(server.port(), {4, 20, "sigterm-", "", true});
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
      EventLoad load(server.port(), {6, 40, "kill-", "round" + std::to_string(round) + "-", true});
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
