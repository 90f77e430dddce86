// `catchall serve` when the aggregation falls behind, through the real
// binary: ingest refuses writes with 503 instead of queueing without bound,
// and /readyz says 503 until the events logged before a restart are counted.
// An aggregation that never commits on its own (a commit interval of 10
// minutes) makes both states last as long as the test needs; such a server
// is stopped with SIGKILL, and the next start counts what it logged.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "support/catchall_client.h"
#include "support/metrics.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace catchall::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::vector<std::string> StalledServe(const std::string& dir) {
  return {"serve",
          "--data-dir",
          dir,
          "--partitions",
          "2",
          "--set",
          "aggregate.commit_interval_ms=600000",
          "--set",
          "aggregate.commit_max_events=1000000",
          "--set",
          "log.max_unconsumed_events=5"};
}

TEST(ServeBackpressureTest, WritesAre503WhileTheAggregationIsTooFarBehind) {
  TempDir data;
  {
    ServerProcess server(StalledServe(data.path()));
    ASSERT_TRUE(server.WaitReady());
    HttpClient client(server.port());
    // Up to 5 unconsumed events the log takes more; with 6 it refuses.
    for (int i = 0; i < 5; ++i) ASSERT_EQ(client.Put("/events/bp.example/delivered").status, 204);
    // The aggregation refreshes its lag gauge at most every 200 ms, when it
    // reads: let the sixth event be read after such a pause.
    std::this_thread::sleep_for(300ms);
    ASSERT_EQ(client.Put("/events/bp.example/bounced").status, 204);

    HttpResult put = client.Put("/events/bp.example/delivered");
    EXPECT_EQ(put.status, 503) << put.body;
    EXPECT_EQ(JsonString(put.body, "code"), "log_unavailable") << put.body;
    EXPECT_THAT(JsonString(put.body, "message").value_or(""), HasSubstr("behind"));
    EXPECT_EQ(put.Header("retry-after"), "1");
    HttpResult batch = client.Post("/events", R"([{"domain":"bp.example","type":"delivered"}])");
    EXPECT_EQ(batch.status, 503) << batch.body;
    EXPECT_EQ(JsonString(batch.body, "code"), "log_unavailable") << batch.body;
    EXPECT_EQ(batch.Header("retry-after"), "1");

    // What operators see: two refused appends, and six events behind.
    ASSERT_TRUE(WaitUntil(
        [&] {
          return Exposition(client.Get("/metrics").body).Sum("catchall_aggregate_lag_records") == 6;
        },
        10s, "catchall_aggregate_lag_records to show the 6 unconsumed events", {&server}));
    Exposition m(client.Get("/metrics").body);
    EXPECT_EQ(m.Sum("catchall_log_rejected_appends_total"), 2);
    EXPECT_EQ(m.Sum("catchall_ingest_log_unavailable_total"), 2);
    EXPECT_EQ(m.Sum("catchall_http_requests_total", {{"route", "/events"}, {"code", "503"}}), 2);
    server.Kill();
  }
  // Restarted normally, it counts the six logged events and nothing refused.
  ServerProcess server({"serve", "--data-dir", data.path(), "--partitions", "2"});
  ASSERT_TRUE(server.WaitReady());
  HttpClient client(server.port());
  DomainView v = WaitForCounts(client, "bp.example", 5, 1);
  EXPECT_EQ(v.delivered, 5);
  EXPECT_EQ(v.bounced, 1);
}

TEST(ServeBackpressureTest, ReadyzIs503WithRetryAfterUntilEventsLoggedBeforeARestartAreCounted) {
  TempDir data;
  {
    // Three events logged, never committed: kill -9.
    ServerProcess server(StalledServe(data.path()));
    ASSERT_TRUE(server.WaitReady());
    HttpClient client(server.port());
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(client.Put("/events/ready.example/delivered").status, 204);
    }
    server.Kill();
  }
  {
    // Restarted with the same stalled aggregation, it cannot count them.
    ServerProcess server(StalledServe(data.path()));
    ASSERT_TRUE(server.started());
    HttpClient client(server.port());
    HttpResult ready = client.Get("/readyz");
    EXPECT_EQ(ready.status, 503) << ready.body;
    EXPECT_EQ(JsonString(ready.body, "code"), "not_ready") << ready.body;
    EXPECT_THAT(JsonString(ready.body, "message").value_or(""), HasSubstr("catching up"));
    EXPECT_EQ(ready.Header("retry-after"), "1");
    EXPECT_EQ(client.Get("/healthz").status, 200) << "alive, only not ready";
    EXPECT_EQ(Exposition(client.Get("/metrics").body).Sum("catchall_aggregate_ready"), 0);
    server.Kill();
  }
  ServerProcess server({"serve", "--data-dir", data.path(), "--partitions", "2"});
  ASSERT_TRUE(server.WaitReady());
  HttpClient client(server.port());
  EXPECT_EQ(Exposition(client.Get("/metrics").body).Sum("catchall_aggregate_ready"), 1);
  DomainView v = WaitForCounts(client, "ready.example", 3, 0);
  EXPECT_EQ(v.delivered, 3);
}

// serve committed its offsets under kafka.group_id's name. A data dir run
// once under another name kept that name's offsets, which held the log's
// retention floor where they were: log.max_unconsumed_events later, every
// write got 503 for good (the log also grew without bound). serve now
// keeps one group whatever kafka.group_id says; a data dir that an older
// version left with other groups' offsets is LocalGroupResetTest's case.
TEST(ServeBackpressureTest, ADataDirRunUnderAnotherGroupIdTakesWritesOnLaterStarts) {
  TempDir data;
  {
    ServerProcess server({"serve", "--data-dir", data.path(), "--set", "kafka.group_id=other"});
    ASSERT_TRUE(server.WaitReady());
    HttpClient client(server.port());
    for (int i = 0; i < 3; ++i) ASSERT_EQ(client.Put("/events/g.example/delivered").status, 204);
    WaitForCounts(client, "g.example", 3, 0);
  }  // SIGTERM: a clean stop
  ServerProcess server(
      {"serve", "--data-dir", data.path(), "--set", "log.max_unconsumed_events=5"});
  ASSERT_TRUE(server.WaitReady());
  HttpClient client(server.port());
  // Twice the limit, each counted before the next: never more than one
  // event is unconsumed.
  for (int i = 1; i <= 10; ++i) {
    HttpResult put = client.Put("/events/g.example/bounced");
    ASSERT_EQ(put.status, 204) << "event " << i << ": " << put.body;
    WaitForCounts(client, "g.example", 3, i);
  }
  DomainView v = WaitForCounts(client, "g.example", 3, 10);
  EXPECT_EQ(v.delivered, 3) << "counting resumed from the state, not from the log's start";
  EXPECT_EQ(v.bounced, 10);
}

}  // namespace
}  // namespace catchall::testing
