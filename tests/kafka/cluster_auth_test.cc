// API keys on the cluster roles: ingest, aggregate and query each check
// keys like `catchall serve` (they share Node and its router), and SIGHUP
// reloads them on each. tests/e2e/serve_auth_test.cc covers the cases in
// depth on the embedded role.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "support/api_keys.h"
#include "support/catchall_client.h"
#include "support/kafka_cluster.h"
#include "support/metrics.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace catchall::testing {
namespace {

using namespace std::chrono_literals;

TEST(ClusterAuthTest, EveryRoleChecksKeysAndReloadsThemOnSighup) {
  const std::string brokers = TestBrokers();
  const ClusterNames names = CreateClusterTopics(brokers, "auth", 2);
  TempDir dir;
  const std::string keys = dir.path() + "/keys.txt";
  std::ofstream(keys) << KeyFileLine("ingest-key", "ingest") << KeyFileLine("query-key", "query")
                      << KeyFileLine("prometheus-key", "metrics");

  auto start = [&](const std::string& role, const std::string& data_dir) {
    return std::make_unique<ServerProcess>(names.RoleArgs(role, brokers, data_dir,
                                                          role == "aggregate" ? "auth-a" : "",
                                                          {"--set", "auth.keys_file=" + keys}));
  };
  TempDir agg_dir;
  TempDir query_dir;
  auto ingest = start("ingest", "");
  auto aggregate = start("aggregate", agg_dir.path());
  auto query = start("query", query_dir.path());
  const std::vector<ServerProcess*> roles = {ingest.get(), aggregate.get(), query.get()};
  for (ServerProcess* p : roles) ASSERT_TRUE(p->WaitReady(90s)) << p->command();  // /readyz is open

  HttpClient in(ingest->port(), 30s, /*retry_closed=*/false);
  HttpClient agg(aggregate->port());
  HttpClient q(query->port());

  // Ingest: /events needs the ingest scope.
  HttpResult missing = in.Put("/events/a.example/delivered");
  EXPECT_EQ(missing.status, 401) << missing.body;
  EXPECT_EQ(missing.Header("www-authenticate"), "Bearer");
  EXPECT_EQ(JsonString(missing.body, "code"), "missing_api_key");
  EXPECT_EQ(in.Put("/events/a.example/delivered", Bearer("query-key")).status, 403);
  ASSERT_EQ(in.Put("/events/a.example/delivered", Bearer("ingest-key")).status, 204);

  // Query: /domains needs the query scope; the event arrives through Kafka.
  EXPECT_EQ(q.Get("/domains/a.example").status, 401);
  EXPECT_TRUE(WaitUntil(
      [&] {
        HttpResult r = q.Request("GET", "/domains/a.example", {}, Bearer("query-key"));
        return r.status == 200 && JsonInt(r.body, "delivered") == 1;
      },
      120s, "the query node to count a.example's event", roles, 100ms));

  // Aggregate: only /metrics and the probes, /metrics with the metrics scope.
  EXPECT_EQ(agg.Get("/metrics").status, 401);
  EXPECT_EQ(agg.Request("GET", "/metrics", {}, Bearer("ingest-key")).status, 403);
  EXPECT_EQ(agg.Get("/healthz").status, 200);
  HttpResult agg_metrics = agg.Request("GET", "/metrics", {}, Bearer("prometheus-key"));
  ASSERT_EQ(agg_metrics.status, 200);
  Exposition agg_e(agg_metrics.body);
  EXPECT_EQ(
      agg_e.Sum("catchall_http_auth_denied_total", {{"scope", "metrics"}, {"reason", "missing"}}),
      1);
  EXPECT_EQ(
      agg_e.Sum("catchall_http_auth_denied_total", {{"scope", "metrics"}, {"reason", "scope"}}), 1);
  Exposition in_e(in.Request("GET", "/metrics", {}, Bearer("prometheus-key")).body);
  EXPECT_EQ(
      in_e.Sum("catchall_http_auth_denied_total", {{"scope", "ingest"}, {"reason", "missing"}}), 1);
  EXPECT_EQ(in_e.Sum("catchall_http_auth_denied_total", {{"scope", "ingest"}, {"reason", "scope"}}),
            1);

  // SIGHUP on every role: the ingest key is rotated, the others kept.
  {
    std::string tmp = keys + ".tmp";
    std::ofstream(tmp) << KeyFileLine("ingest-key-2", "ingest") << KeyFileLine("query-key", "query")
                       << KeyFileLine("prometheus-key", "metrics");
    ASSERT_EQ(std::rename(tmp.c_str(), keys.c_str()), 0);
  }
  for (ServerProcess* p : roles) ASSERT_EQ(kill(p->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (ServerProcess* p : roles) {
          if (p->Output().find("reloaded 3 API key(s)") == std::string::npos) return false;
        }
        return true;
      },
      10s, "every role to log its reload", roles));
  // On the connection opened before the reload.
  EXPECT_EQ(in.Put("/events/a.example/delivered", Bearer("ingest-key-2")).status, 204);
  EXPECT_EQ(in.Put("/events/a.example/delivered", Bearer("ingest-key")).status, 401);
  EXPECT_EQ(q.Request("GET", "/domains/a.example", {}, Bearer("query-key")).status, 200);

  for (ServerProcess* p : {query.get(), aggregate.get(), ingest.get()}) {
    EXPECT_EQ(p->Terminate(), 0) << p->command() << "\n" << p->Output();
  }
}

}  // namespace
}  // namespace catchall::testing
