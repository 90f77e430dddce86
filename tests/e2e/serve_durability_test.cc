// Durability and exactly-once of `catchall serve`: restarts, SIGTERM during
// load, and kill -9 at an arbitrary moment of a concurrent load.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/catchall_client.h"
#include "support/event_load.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace catchall::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::vector<std::string> ServeArgs(const std::string& dir) {
  return {"serve", "--data-dir", dir, "--partitions", "4"};
}

// After a kill -9 and a restart, before any retry: each domain of `acked`
// counts every acknowledged event, and at most the unanswered ones on top.
void ExpectAckedAndAtMostTheUnanswered(HttpClient& client, const std::vector<SentEvent>& acked,
                                       const std::vector<SentEvent>& unanswered) {
  Counts maybe = Tally(unanswered);
  for (const auto& [domain, counts] : Tally(acked)) {
    DomainView v = GetDomain(client, domain);
    EXPECT_GE(v.delivered, counts.first) << domain;
    EXPECT_GE(v.bounced, counts.second) << domain;
    EXPECT_LE(v.delivered, counts.first + maybe[domain].first) << domain;
    EXPECT_LE(v.bounced, counts.second + maybe[domain].second) << domain;
  }
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
    EXPECT_THAT(server.Output(), HasSubstr("stopped cleanly"));
  }
  ServerProcess again(ServeArgs(data.path()));
  ASSERT_TRUE(again.WaitReady());
  HttpClient client(again.port());
  DomainView v = GetDomain(client, "persist.com");
  EXPECT_EQ(v.delivered, 20);
  EXPECT_EQ(v.bounced, 1);
  EXPECT_EQ(v.state, "not catch-all");
}

// Found by a probe: with the write-ahead log's files deleted after kill -9
// (a backup that left out *.log), serve started ready and served every
// count as 0. It now refuses, naming the loss, and starts as of what is
// left only when told to (storage.recover_damaged_wal).
TEST(ServeDurabilityTest, ADataDirThatLostItsWriteAheadLogIsRefused) {
  TempDir data;
  {
    ServerProcess server(ServeArgs(data.path()));
    ASSERT_TRUE(server.WaitReady());
    HttpClient client(server.port());
    for (int i = 0; i < 20; ++i) ASSERT_EQ(client.Put("/events/wal.example/delivered").status, 204);
    // The ends are recorded every 10 s.
    ASSERT_TRUE(WaitUntil(
        [&] {
          std::ifstream in(data.path() + "/catchall-log-ends");
          std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
          return text.find("catchall.events ") != std::string::npos &&
                 text.find(" 20\n") != std::string::npos;
        },
        30s, "the log's ends to be recorded", {&server}));
    server.Kill();
  }
  size_t deleted = 0;
  for (const auto& entry : std::filesystem::directory_iterator(data.path())) {
    if (entry.path().extension() == ".log") deleted += std::filesystem::remove(entry.path());
  }
  ASSERT_GT(deleted, 0U);
  std::string out;
  EXPECT_EQ(RunBinary({"serve", "--data-dir", data.path(), "--partitions", "4", "--listen",
                       "127.0.0.1:0"},
                      &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr("lost acknowledged writes")) << out;

  std::vector<std::string> recover = ServeArgs(data.path());
  recover.insert(recover.end(), {"--set", "storage.recover_damaged_wal=true"});
  ServerProcess server(recover);
  ASSERT_TRUE(server.WaitReady());
  EXPECT_THAT(server.Output(), HasSubstr("opened anyway (storage.recover_damaged_wal)"));
  EXPECT_EQ(server.Terminate(), 0) << server.Output();
}

// A data dir made when the default was 8 partitions, started without
// --partitions after the default became 1: it keeps its 8 (another count
// would strand the events of partitions 1-7 not yet counted), says so, and
// counts on, an idempotent retry of an event from before included.
TEST(ServeDurabilityTest, ADataDirKeepsItsPartitionCountWhenNoneIsGiven) {
  TempDir data;
  std::vector<std::string> domains;
  for (int i = 0; i < 16; ++i) domains.push_back("kept" + std::to_string(i) + ".com");
  {
    ServerProcess fresh({"serve", "--data-dir", data.path()});
    ASSERT_TRUE(fresh.WaitReady());
    EXPECT_THAT(fresh.Output(), HasSubstr("1 partition,"));
    EXPECT_EQ(fresh.Terminate(), 0) << fresh.Output();
  }
  TempDir old;
  {
    ServerProcess server({"serve", "--data-dir", old.path(), "--partitions", "8"});
    ASSERT_TRUE(server.WaitReady());
    HttpClient client(server.port());
    for (const std::string& d : domains) {
      ASSERT_EQ(client.Put("/events/" + d + "/delivered", {{"Idempotency-Key", d}}).status, 204);
    }
    EXPECT_EQ(server.Terminate(), 0) << server.Output();
  }
  ServerProcess again({"serve", "--data-dir", old.path()});
  ASSERT_TRUE(again.WaitReady());
  EXPECT_THAT(again.Output(), HasSubstr("keeps the 8 partitions this data dir was made with"));
  EXPECT_THAT(again.Output(), HasSubstr("8 partitions,"));
  HttpClient client(again.port());
  for (const std::string& d : domains) {
    ASSERT_EQ(client.Put("/events/" + d + "/delivered", {{"Idempotency-Key", d}}).status, 204);
    ASSERT_EQ(client.Put("/events/" + d + "/bounced").status, 204);
  }
  for (const std::string& d : domains) WaitForCounts(client, d, 1, 1);
}

// SIGTERM in the middle of a concurrent load: every request that was written
// before the signal is answered (the server drains, it does not cut
// connections), the process exits cleanly, and after a restart a retry of
// everything not acknowledged, with the same keys, makes every count exact.
TEST(ServeDurabilityTest, SigtermAnswersRequestsInFlightAndRetriesMakeCountsExact) {
  TempDir data;
  std::vector<Attempt> attempts;
  std::chrono::steady_clock::time_point signalled;
  {
    ServerProcess server(ServeArgs(data.path()));
    ASSERT_TRUE(server.WaitReady());
    LoadOptions options{4, 20, "sigterm-", "", true};
    options.retry_closed_connections = false;  // see every request the server cut off
    EventLoad load(server.port(), options);
    ASSERT_TRUE(WaitUntil([&] { return load.acked() >= 2000; }, 60s, "2000 acknowledged events",
                          {&server}));
    signalled = std::chrono::steady_clock::now();
    EXPECT_EQ(server.Terminate(), 0) << server.Output();
    EXPECT_THAT(server.Output(), HasSubstr("stopped cleanly"));
    load.Stop();
    attempts = load.attempts();
  }
  size_t in_flight = 0;
  std::string cut = RequestsCutOffBy(attempts, signalled, &in_flight);
  EXPECT_TRUE(cut.empty()) << cut;
  EXPECT_GT(in_flight, 0U) << "no request was in flight at the signal: the test shows nothing";

  ServerProcess again(ServeArgs(data.path()));
  ASSERT_TRUE(again.WaitReady());
  HttpClient client(again.port());
  std::vector<SentEvent> all;
  for (const Attempt& a : attempts) {
    if (a.status != 204) {
      ASSERT_TRUE(Resend(client, a.event)) << again.Output();
    }
    all.push_back(a.event);
  }
  std::string diff;
  EXPECT_TRUE(WaitForAllCounts(client, Tally(all), 30s, &diff)) << diff << again.Output();
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
    ASSERT_TRUE(server.WaitReady());
    {
      EventLoad load(server.port(), {6, 40, "kill-", "round" + std::to_string(round) + "-", true});
      std::mt19937 rng(static_cast<unsigned>(round) + 11);
      size_t target = 1500 + rng() % 3000;
      ASSERT_TRUE(WaitUntil([&] { return load.acked() >= target; }, 60s,
                            std::to_string(target) + " acknowledged events", {&server},
                            std::chrono::milliseconds(2)));
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
  ASSERT_TRUE(server.WaitReady());
  HttpClient client(server.port());

  // Before any retry: every acknowledged event is there, and at most the
  // unanswered ones on top.
  ExpectAckedAndAtMostTheUnanswered(client, acked, unanswered);

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

// The same for batches large enough to be parsed off the I/O thread
// (ingest.offload_batch_bytes): a batch answered 200 is durable whatever
// thread appended it, and one left unanswered by the kill is either all
// there or not at all; its retry (same ids) makes every count exact.
TEST(ServeDurabilityTest, KillNineDuringLargeBatchesThenRetryCountsEveryEventExactlyOnce) {
  TempDir data;
  constexpr int kItems = 3000;  // ~200 KB per batch: above the 64 KiB offload size
  struct Batch {
    std::vector<SentEvent> events;
    std::string body;
    int status = 0;
  };
  auto make_batch = [](int thread, int n) {
    Batch b;
    b.body = "[";
    for (int i = 0; i < kItems; ++i) {
      SentEvent e{
          "bigbatch-" + std::to_string((thread * 7 + n + i) % 10) + ".example", (i % 3) == 0,
          "bb-" + std::to_string(thread) + "-" + std::to_string(n) + "-" + std::to_string(i)};
      b.body += (i ? "," : "");
      b.body += R"({"domain":")" + e.domain + R"(","type":")" +
                (e.bounce ? "bounced" : "delivered") + R"(","id":")" + e.id + R"("})";
      b.events.push_back(std::move(e));
    }
    b.body += "]";
    return b;
  };
  std::vector<std::vector<Batch>> sent(2);
  {
    ServerProcess server(ServeArgs(data.path()));
    ASSERT_TRUE(server.WaitReady());
    std::atomic<int> acked{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> posters;
    posters.reserve(2);
    for (int t = 0; t < 2; ++t) {
      posters.emplace_back([&, t] {
        HttpClient client(server.port(), std::chrono::seconds(30), /*retry_closed=*/false);
        for (int n = 0; !stop.load(); ++n) {
          Batch b = make_batch(t, n);
          b.status = client.Post("/events", b.body).status;
          if (b.status == 200) ++acked;
          bool gone = b.status == 0;
          sent[t].push_back(std::move(b));
          if (gone) break;
        }
      });
    }
    bool enough = WaitUntil([&] { return acked.load() >= 6; }, 60s, "6 acknowledged batches",
                            {&server}, std::chrono::milliseconds(1));
    server.Kill();
    stop = true;
    for (auto& p : posters) p.join();
    ASSERT_TRUE(enough);
  }
  std::vector<SentEvent> acked_events;
  std::vector<SentEvent> unanswered_events;
  std::vector<const Batch*> unanswered;
  for (const auto& batches : sent) {
    for (const Batch& b : batches) {
      ASSERT_TRUE(b.status == 200 || b.status == 0) << b.status;
      auto& into = b.status == 200 ? acked_events : unanswered_events;
      into.insert(into.end(), b.events.begin(), b.events.end());
      if (b.status != 200) unanswered.push_back(&b);
    }
  }
  ServerProcess server(ServeArgs(data.path()));
  ASSERT_TRUE(server.WaitReady());
  HttpClient client(server.port());
  ExpectAckedAndAtMostTheUnanswered(client, acked_events, unanswered_events);
  for (const Batch* b : unanswered) {
    HttpResult r = client.Post("/events", b->body);
    ASSERT_EQ(r.status, 200) << r.body;
    acked_events.insert(acked_events.end(), b->events.begin(), b->events.end());
  }
  std::string diff;
  EXPECT_TRUE(WaitForAllCounts(client, Tally(acked_events), 30s, &diff)) << diff << server.Output();
}

}  // namespace
}  // namespace catchall::testing
