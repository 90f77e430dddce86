// The metrics operators rely on, end to end: every catchall metric that the
// alert rules, the Grafana dashboard or the docs name (parsed from those
// files) is exported by `catchall serve` with a value that this test's own
// traffic explains. Metrics only the cluster roles export are checked the
// same way in tests/kafka.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "support/catchall_client.h"
#include "support/metrics.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace catchall::testing {
namespace {

using namespace std::chrono_literals;

// Sends requests over one keep-alive connection and tallies the answers by
// route, method and status, as catchall_http_requests_total labels them.
class Traffic {
 public:
  explicit Traffic(uint16_t port) : client_(port) {}

  HttpResult Send(const std::string& method, const std::string& target,
                  const std::string& body = {},
                  const std::map<std::string, std::string>& headers = {}) {
    std::map<std::string, std::string> h = headers;
    if (!body.empty()) h.emplace("Content-Type", "application/x-ndjson");
    HttpResult r = client_.Request(method, target, body, h);
    std::string route = target.substr(0, target.find_first_of("/?", 1));
    ++requests_[{route, method, std::to_string(r.status)}];
    if (route == "/domains" && method == "GET" && r.status == 200) {
      ++answers_[JsonString(r.body, "status").value_or("?")];
    }
    return r;
  }

  // GETs /domains/{domain} until it shows the counts; false after `deadline`.
  bool WaitForCounts(const std::string& domain, int64_t delivered, int64_t bounced,
                     ServerProcess* server) {
    return WaitUntil(
        [&] {
          HttpResult r = Send("GET", "/domains/" + domain);
          return JsonInt(r.body, "delivered") == delivered && JsonInt(r.body, "bounced") == bounced;
        },
        30s, domain + " to count " + std::to_string(delivered) + "/" + std::to_string(bounced),
        {server}, 50ms);
  }

  Exposition Scrape() { return Exposition(client_.Get("/metrics").body); }

  // (route, method, code) -> requests answered so.
  const std::map<std::tuple<std::string, std::string, std::string>, int>& requests() const {
    return requests_;
  }
  // status ("catch-all", ...) -> GET /domains answers with it (and the
  // results of batch lookups the test tallied with AddAnswer).
  const std::map<std::string, int>& answers() const { return answers_; }
  void AddAnswer(const std::string& status) { ++answers_[status]; }

 private:
  HttpClient client_;
  std::map<std::tuple<std::string, std::string, std::string>, int> requests_;
  std::map<std::string, int> answers_;
};

int FailureCount() {
  const ::testing::TestResult* r =
      ::testing::UnitTest::GetInstance()->current_test_info()->result();
  int n = 0;
  for (int i = 0; i < r->total_part_count(); ++i) n += r->GetTestPartResult(i).failed() ? 1 : 0;
  return n;
}

uint64_t ResidentBytesOf(pid_t pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  uint64_t size = 0;
  uint64_t resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

TEST(ServeMetricsTest, EveryDocumentedMetricIsExportedWithAValueTheTrafficExplains) {
  auto test_started = std::chrono::steady_clock::now();
  TempDir data;
  // A threshold of 5 makes all three statuses quick to reach; 4 connections
  // and 50 unconsumed events make a refused connection and a refused write
  // cheap to provoke; a 1 s commit interval leaves time to provoke the
  // latter before the aggregation catches up.
  ServerProcess server({"serve", "--data-dir", data.path(), "--partitions", "2", "--threshold", "5",
                        "--set", "server.max_connections=4", "--set",
                        "log.max_unconsumed_events=50", "--set",
                        "aggregate.commit_interval_ms=1000"});
  ASSERT_TRUE(server.WaitReady());
  Traffic t(server.port());
  // WaitReady's connection may not be closed yet on the server's side.
  ASSERT_TRUE(WaitUntil([&] { return t.Scrape().Sum("catchall_http_connections") == 1; }, 10s,
                        "the test's connection to be the only one", {&server}));
  const Exposition before = t.Scrape();

  // What the traffic below must add up to.
  int64_t delivered = 0;  // events acknowledged, by type
  int64_t bounced = 0;
  int64_t duplicates = 0;  // acknowledged again under an Idempotency-Key already counted
  int appends = 0;         // requests that appended to the log
  int batches = 0;         // POST /events read as a batch (answered 200, or 503 when refused)
  int batch_items = 0;     // the items of those, valid or not

  // 1. Events: single PUTs (one of them a retry under the same key), a
  //    batch with two bad items, and bad requests.
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(t.Send("PUT", "/events/a.example/delivered", {},
                     {{"Idempotency-Key", "a-" + std::to_string(i)}})
                  .status,
              204);
    ++delivered;
    ++appends;
  }
  ASSERT_EQ(t.Send("PUT", "/events/a.example/delivered", {}, {{"Idempotency-Key", "a-0"}}).status,
            204);
  ++delivered;
  ++duplicates;
  ++appends;
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(t.Send("PUT", "/events/b.example/bounced").status, 204);
    ++bounced;
    ++appends;
  }
  HttpResult batch = t.Send("POST", "/events",
                            "{\"domain\":\"c.example\",\"type\":\"delivered\"}\n"
                            "{\"domain\":\"c.example\",\"type\":\"delivered\"}\n"
                            "{\"domain\":\"c.example\",\"type\":\"bounced\"}\n"
                            "{\"domain\":\"bad_domain\",\"type\":\"delivered\"}\n"
                            "{\"domain\":\"c.example\",\"type\":\"opened\"}\n");
  ASSERT_EQ(batch.status, 200) << batch.body;
  delivered += 2;
  bounced += 1;
  ++appends;
  ++batches;
  batch_items += 5;
  ASSERT_EQ(t.Send("PUT", "/events/bad_domain/delivered").status, 400);
  ASSERT_EQ(t.Send("PUT", "/events/a.example/opened").status, 400);
  const int invalid_domains = 2;  // one PUT, one batch item
  const int invalid_types = 2;

  // 2. Queries: every status once the counts are visible, and a bad domain.
  ASSERT_TRUE(t.WaitForCounts("a.example", 10, 0, &server));
  ASSERT_TRUE(t.WaitForCounts("b.example", 0, 2, &server));
  ASSERT_TRUE(t.WaitForCounts("c.example", 2, 1, &server));
  ASSERT_EQ(t.Send("GET", "/domains/never.example").status, 200);
  ASSERT_EQ(t.Send("GET", "/domains/bad_domain").status, 400);
  HttpResult lookup =
      t.Send("POST", "/domains/lookup", R"({"domains":["a.example","never.example"]})");
  ASSERT_EQ(lookup.status, 200) << lookup.body;
  ASSERT_THAT(lookup.body, ::testing::HasSubstr(R"("status":"catch-all")"));
  ASSERT_THAT(lookup.body, ::testing::HasSubstr(R"("status":"unknown")"));
  t.AddAnswer("catch-all");
  t.AddAnswer("unknown");
  ASSERT_TRUE(WaitUntil([&] { return t.Scrape().Sum("catchall_aggregate_lag_records") == 0; }, 10s,
                        "the aggregation lag to return to 0", {&server}));

  // 3. One connection over the limit (4: this test's own and three more).
  {
    std::vector<std::unique_ptr<HttpClient>> held;
    for (int i = 0; i < 3; ++i) {
      held.push_back(std::make_unique<HttpClient>(server.port()));
      ASSERT_EQ(held.back()->Get("/healthz").status, 200);
    }
    HttpClient extra(server.port());
    ASSERT_EQ(extra.Get("/healthz").status, 503);
  }

  // 4. A write refused because the aggregation is more than 50 events
  //    behind: a batch of 51, then one more event. Should the aggregation
  //    commit in between (it commits every second), the event is stored and
  //    the round repeats.
  std::string fifty_one;
  for (int i = 0; i < 51; ++i) fifty_one += "{\"domain\":\"d.example\",\"type\":\"delivered\"}\n";
  int64_t d_delivered = 0;
  HttpResult refused;
  ASSERT_TRUE(WaitUntil(
      [&] {
        HttpResult r = t.Send("POST", "/events", fifty_one);
        // Read as a batch either way (a refused append is counted too).
        if (r.status == 200 || r.status == 503) {
          ++batches;
          batch_items += 51;
        }
        if (r.status != 200) return false;
        delivered += 51;
        d_delivered += 51;
        ++appends;
        refused = t.Send("PUT", "/events/d.example/delivered");
        if (refused.status == 204) {
          ++delivered;
          ++d_delivered;
          ++appends;
        }
        return refused.status == 503;
      },
      30s, "a write refused with 503 for being too far ahead of the aggregation", {&server}));
  EXPECT_EQ(JsonString(refused.body, "code"), "log_unavailable") << refused.body;
  EXPECT_EQ(refused.Header("retry-after"), "1");
  ASSERT_TRUE(t.WaitForCounts("d.example", d_delivered, 0, &server));

  // Gauges refresh on the aggregation's clock: wait for their final values.
  ASSERT_TRUE(WaitUntil(
      [&] {
        Exposition e = t.Scrape();
        return e.Sum("catchall_aggregate_lag_records") == 0 &&
               e.Sum("catchall_http_connections") == 1 && e.Sum("catchall_state_domains") >= 4;
      },
      10s, "lag 0, one connection and 4 domains in the gauges", {&server}));
  const Exposition after = t.Scrape();
  const double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - test_started).count();

  auto delta = [&](const std::string& name, const Labels& labels = {}) {
    return after.Sum(name, labels) - before.Sum(name, labels);
  };
  // A metric this traffic leaves at 0, exported all the same.
  auto quiet = [&](const std::string& family) {
    return [&, family] {
      EXPECT_TRUE(after.Has(family)) << family;
      EXPECT_EQ(after.Sum(family), 0) << family;
    };
  };
  auto requests_on = [&](const std::string& route) {
    int n = 0;
    for (const auto& [key, count] : t.requests()) {
      if (std::get<0>(key) == route) n += count;
    }
    return n;
  };
  const double commits = delta("catchall_aggregate_commits_total");

  // One entry per metric family: what this test's traffic says about it.
  std::map<std::string, std::function<void()>> expectations = {
      {"catchall_http_requests_total",
       [&] {
         for (const auto& [key, count] : t.requests()) {
           const auto& [route, method, code] = key;
           EXPECT_EQ(delta("catchall_http_requests_total",
                           {{"route", route}, {"method", method}, {"code", code}}),
                     count)
               << method << " " << route << " " << code;
         }
         // Refused connections are not requests of a route.
         EXPECT_EQ(delta("catchall_http_requests_total", {{"route", "other"}, {"code", "503"}}), 1);
       }},
      {"catchall_http_request_seconds",
       [&] {
         for (const std::string route : {"/events", "/domains"}) {
           SCOPED_TRACE(route);
           double n = delta("catchall_http_request_seconds_count", {{"route", route}});
           EXPECT_EQ(n, requests_on(route));
           EXPECT_EQ(
               delta("catchall_http_request_seconds_bucket", {{"route", route}, {"le", "+Inf"}}),
               n);
           EXPECT_GT(delta("catchall_http_request_seconds_sum", {{"route", route}}), 0);
           EXPECT_LT(delta("catchall_http_request_seconds_sum", {{"route", route}}), n * elapsed_s);
         }
         // The refused connection: answered at once, on no route.
         EXPECT_EQ(delta("catchall_http_request_seconds_count", {{"route", "other"}}), 1);
         EXPECT_LT(delta("catchall_http_request_seconds_sum", {{"route", "other"}}), elapsed_s);
       }},
      {"catchall_http_connections",
       [&] { EXPECT_EQ(after.Sum("catchall_http_connections"), 1) << "the test's own"; }},
      {"catchall_http_connections_total",
       [&] {
         // The three held and the one refused; the test's own connection
         // was open before.
         EXPECT_EQ(delta("catchall_http_connections_total"), 4);
       }},
      {"catchall_http_connections_rejected_total",
       [&] { EXPECT_EQ(delta("catchall_http_connections_rejected_total"), 1); }},
      {"catchall_http_auth_denied_total",
       [&] {
         // Auth is off here: the counters exist for every scope and reason,
         // all 0. tests/e2e/serve_auth_test.cc counts refusals with keys.
         EXPECT_EQ(after.LabelValues("catchall_http_auth_denied_total", "scope"),
                   (std::set<std::string>{"ingest", "metrics", "query"}));
         EXPECT_EQ(after.LabelValues("catchall_http_auth_denied_total", "reason"),
                   (std::set<std::string>{"malformed", "missing", "scope", "unknown"}));
         EXPECT_EQ(after.Sum("catchall_http_auth_denied_total"), 0);
       }},
      // A plain HTTP listener does no handshakes (tests/e2e/serve_tls_test.cc
      // checks the count over TLS).
      {"catchall_http_tls_handshake_failures_total",
       [&] { EXPECT_EQ(after.Sum("catchall_http_tls_handshake_failures_total"), 0); }},
      // No body waited for room, and each was answered before the scrape
      // (tests/e2e/serve_bad_input_test.cc fills the budget).
      {"catchall_http_body_budget_refusals_total",
       quiet("catchall_http_body_budget_refusals_total")},
      {"catchall_http_request_body_bytes", quiet("catchall_http_request_body_bytes")},
      // Every accept succeeded here (serve_bad_input_test.cc counts
      // failures out of file descriptors).
      {"catchall_http_accept_failures_total", quiet("catchall_http_accept_failures_total")},
      // Every client read its answers (engine/tests/http_server_test.cc has
      // one that stops).
      {"catchall_http_write_timeouts_total", quiet("catchall_http_write_timeouts_total")},
      {"catchall_ingest_events_accepted_total",
       [&] {
         EXPECT_EQ(delta("catchall_ingest_events_accepted_total", {{"type", "delivered"}}),
                   delivered);
         EXPECT_EQ(delta("catchall_ingest_events_accepted_total", {{"type", "bounced"}}), bounced);
       }},
      {"catchall_ingest_events_rejected_total",
       [&] {
         EXPECT_EQ(delta("catchall_ingest_events_rejected_total", {{"reason", "invalid_domain"}}),
                   invalid_domains);
         EXPECT_EQ(
             delta("catchall_ingest_events_rejected_total", {{"reason", "invalid_event_type"}}),
             invalid_types);
       }},
      {"catchall_ingest_batch_items",
       [&] {
         EXPECT_EQ(delta("catchall_ingest_batch_items_count"), batches);
         EXPECT_EQ(delta("catchall_ingest_batch_items_sum"), batch_items);
       }},
      {"catchall_ingest_log_unavailable_total",
       [&] { EXPECT_EQ(delta("catchall_ingest_log_unavailable_total"), 1); }},
      {"catchall_log_rejected_appends_total",
       [&] { EXPECT_EQ(delta("catchall_log_rejected_appends_total"), 1); }},
      {"catchall_log_bytes_total",
       [&] {
         // Every stored event's key, value and length fields: at least 30 bytes each.
         EXPECT_GE(delta("catchall_log_bytes_total"),
                   30.0 * static_cast<double>(delivered + bounced));
       }},
      {"catchall_storage_free_bytes",
       [&] {
         EXPECT_GT(after.Sum("catchall_storage_free_bytes"),
                   after.Sum("catchall_storage_min_free_bytes"));
       }},
      {"catchall_storage_min_free_bytes",
       [&] { EXPECT_EQ(after.Sum("catchall_storage_min_free_bytes"), 512.0 * (1 << 20)); }},
      {"catchall_storage_low_space",
       [&] { EXPECT_EQ(after.Sum("catchall_storage_low_space"), 0); }},
      {"catchall_storage_refused_writes_total",
       [&] { EXPECT_EQ(delta("catchall_storage_refused_writes_total"), 0); }},
      // A few dozen events: far below a memtable, so nothing was flushed or
      // compacted and writes never waited for the background work.
      {"catchall_store_pending_compaction_bytes",
       [&] { EXPECT_EQ(after.Sum("catchall_store_pending_compaction_bytes"), 0); }},
      {"catchall_store_running_compactions",
       [&] { EXPECT_EQ(after.Sum("catchall_store_running_compactions"), 0); }},
      {"catchall_store_running_flushes",
       [&] { EXPECT_EQ(after.Sum("catchall_store_running_flushes"), 0); }},
      {"catchall_store_write_failed",
       [&] { EXPECT_EQ(after.Sum("catchall_store_write_failed"), 0); }},
      {"catchall_store_write_stalls_total",
       [&] { EXPECT_EQ(after.Sum("catchall_store_write_stalls_total"), 0); }},
      {"catchall_store_write_stall_seconds_total",
       [&] { EXPECT_EQ(after.Sum("catchall_store_write_stall_seconds_total"), 0); }},
      // Nothing flushed to a table yet; the events are in the write-ahead log.
      {"catchall_store_table_bytes",
       [&] { EXPECT_EQ(after.Sum("catchall_store_table_bytes"), 0); }},
      {"catchall_store_wal_bytes", [&] { EXPECT_GT(after.Sum("catchall_store_wal_bytes"), 0); }},
      {"catchall_log_records_total",
       [&] {
         // One record per acknowledged event, duplicates included: the
         // aggregation tells them apart.
         EXPECT_EQ(delta("catchall_log_records_total"), delivered + bounced);
       }},
      {"catchall_log_writes_total",
       [&] {
         // Group commit: one write carries one append or several.
         EXPECT_GE(delta("catchall_log_writes_total"), 1);
         EXPECT_LE(delta("catchall_log_writes_total"), appends);
         EXPECT_EQ(delta("catchall_log_writes_total"), delta("catchall_log_write_seconds_count"));
       }},
      {"catchall_log_write_errors_total", quiet("catchall_log_write_errors_total")},
      {"catchall_log_group_commit_records",
       [&] {
         EXPECT_EQ(delta("catchall_log_group_commit_records_count"),
                   delta("catchall_log_writes_total"));
         EXPECT_EQ(delta("catchall_log_group_commit_records_sum"), delivered + bounced);
       }},
      {"catchall_log_write_seconds",
       [&] {
         // Group commit: one write carries one append or several.
         double writes = delta("catchall_log_write_seconds_count");
         EXPECT_GE(writes, 1);
         EXPECT_LE(writes, appends);
         EXPECT_GT(delta("catchall_log_write_seconds_sum"), 0);
       }},
      {"catchall_aggregate_records_total",
       [&] {
         EXPECT_EQ(delta("catchall_aggregate_records_total", {{"outcome", "counted"}}),
                   delivered + bounced - duplicates);
         EXPECT_EQ(delta("catchall_aggregate_records_total", {{"outcome", "duplicate"}}),
                   duplicates);
         EXPECT_EQ(delta("catchall_aggregate_records_total", {{"outcome", "dead_lettered"}}), 0);
       }},
      {"catchall_aggregate_commits_total",
       [&] {
         // The test waited for the first events to be visible before it sent
         // the last ones, so at least two commits; never more than one per
         // append.
         EXPECT_GE(commits, 2);
         EXPECT_LE(commits, appends);
       }},
      {"catchall_aggregate_commit_failures_total",
       [&] { EXPECT_EQ(after.Sum("catchall_aggregate_commit_failures_total"), 0); }},
      {"catchall_aggregate_commit_seconds",
       [&] {
         EXPECT_EQ(delta("catchall_aggregate_commit_seconds_count"), commits);
         EXPECT_GT(delta("catchall_aggregate_commit_seconds_sum"), 0);
       }},
      {"catchall_aggregate_commit_records",
       [&] {
         EXPECT_EQ(delta("catchall_aggregate_commit_records_count"), commits);
         EXPECT_EQ(delta("catchall_aggregate_commit_records_sum"), delivered + bounced);
       }},
      {"catchall_aggregate_freshness_seconds",
       [&] {
         // One sample per commit: the age of its oldest event, which is
         // younger than this test.
         EXPECT_EQ(delta("catchall_aggregate_freshness_seconds_count"), commits);
         EXPECT_GT(delta("catchall_aggregate_freshness_seconds_sum"), 0);
         EXPECT_LE(delta("catchall_aggregate_freshness_seconds_sum"), commits * elapsed_s);
       }},
      {"catchall_aggregate_lag_records",
       [&] { EXPECT_EQ(after.Sum("catchall_aggregate_lag_records"), 0) << "all committed"; }},
      {"catchall_aggregate_ready", [&] { EXPECT_EQ(after.Sum("catchall_aggregate_ready"), 1); }},
      {"catchall_state_domains",
       [&] {
         // RocksDB's estimate: at least the 4 domains counted, at most one
         // per domain and commit.
         EXPECT_GE(after.Sum("catchall_state_domains"), 4);
         EXPECT_LE(after.Sum("catchall_state_domains"), 4 * commits);
       }},
      {"catchall_state_bytes", [&] { EXPECT_GT(after.Sum("catchall_state_bytes"), 0); }},
      {"catchall_query_answers_total",
       [&] {
         for (const std::string status : {"catch-all", "not catch-all", "unknown"}) {
           auto it = t.answers().find(status);
           int want = it == t.answers().end() ? 0 : it->second;
           EXPECT_GT(want, 0) << "the traffic should see every status";
           EXPECT_EQ(delta("catchall_query_answers_total", {{"status", status}}), want) << status;
         }
       }},
      {"catchall_query_batch_lookups_total",
       [&] { EXPECT_EQ(delta("catchall_query_batch_lookups_total"), 1); }},
      {"catchall_query_invalid_domains_total",
       [&] { EXPECT_EQ(delta("catchall_query_invalid_domains_total"), 1); }},
      {"catchall_build_info",
       [&] {
         EXPECT_EQ(after.Sum("catchall_build_info", {{"role", "serve"}}), 1);
         std::set<std::string> versions = after.LabelValues("catchall_build_info", "version");
         ASSERT_EQ(versions.size(), 1U);
         EXPECT_FALSE(versions.begin()->empty());
       }},
      {"catchall_process_resident_memory_bytes",
       [&] {
         // What the kernel says now, within a factor of two.
         double reported = after.Sum("catchall_process_resident_memory_bytes");
         auto actual = static_cast<double>(ResidentBytesOf(server.pid()));
         EXPECT_GT(reported, actual / 2);
         EXPECT_LT(reported, actual * 2);
       }},
  };

  const auto documented = DocumentedMetricFamilies();
  ASSERT_GE(documented.size(), 15U) << "the metric names could not be read from the docs";
  for (const auto& [family, files] : documented) {
    if (ClusterOnlyMetricFamilies().count(family)) continue;
    SCOPED_TRACE(family);
    std::string where;
    for (const auto& f : files) where += " " + f;
    if (!after.Has(family)) {
      ADD_FAILURE() << family << " is named in" << where
                    << " but `catchall serve` does not export it";
      continue;
    }
    auto it = expectations.find(family);
    if (it == expectations.end()) {
      ADD_FAILURE() << family << " is named in" << where
                    << " but this test does not check its value: add an expectation";
      continue;
    }
    const int failures_before = FailureCount();
    it->second();
    if (FailureCount() > failures_before) {
      std::cerr << family << " before:\n"
                << before.Describe(family) << "after:\n"
                << after.Describe(family);
    }
  }
  for (const auto& [family, check] : expectations) {
    EXPECT_TRUE(documented.count(family)) << family << " is checked here but no longer documented";
  }
  // And the other way: what an operator finds on /metrics has its row in
  // docs/operations.md's Metrics table, with its type, and the table's
  // rows for serve are what serve exports.
  ExpectMatchesMetricsTable(after, "serve");
}

}  // namespace
}  // namespace catchall::testing
