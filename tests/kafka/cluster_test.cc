// Cluster mode against a real Apache Kafka broker: separate ingest,
// aggregate and query processes, crashes, rebalances, a broker outage and a
// kcat replay. Every test checks exact final counts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "engine/partitioner.h"
#include "support/catchall_client.h"
#include "support/event_load.h"
#include "support/kafka_cluster.h"
#include "support/server_process.h"

namespace catchall::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr int kPartitions = 4;

// Sum of a metric's samples (any labels) in a Prometheus text exposition.
double MetricValue(const std::string& exposition, const std::string& name) {
  double sum = 0;
  size_t pos = 0;
  while ((pos = exposition.find("\n" + name, pos)) != std::string::npos) {
    size_t start = pos + 1 + name.size();
    size_t end = exposition.find('\n', start);
    std::string line = exposition.substr(start, end - start);
    if (!line.empty() && (line[0] == ' ' || line[0] == '{')) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
    pos = start;
  }
  return sum;
}

// Polls a node's /metrics until `name` sums to at least `min` (gauges refresh
// on a clock) or `timeout` passes; returns the last value seen.
double WaitForMetricAtLeast(HttpClient& node, const std::string& name, double min,
                            std::chrono::seconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  double value = MetricValue(node.Get("/metrics").body, name);
  while (value < min && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    value = MetricValue(node.Get("/metrics").body, name);
  }
  return value;
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    brokers_ = TestBrokers();
    names_ = CreateClusterTopics(
        brokers_, ::testing::UnitTest::GetInstance()->current_test_info()->name(), kPartitions);
  }

  // Starts `role` with this test's topics; aggregators get a stable
  // instance id so that a restart fences its previous incarnation.
  std::unique_ptr<ServerProcess> StartRole(const std::string& role,
                                           const std::string& data_dir = "",
                                           const std::string& instance = "",
                                           std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {role, "--brokers", brokers_};
    for (const auto& f : names_.Flags()) args.push_back(f);
    if (!data_dir.empty()) args.insert(args.end(), {"--data-dir", data_dir});
    if (!instance.empty()) args.insert(args.end(), {"--set", "kafka.instance_id=" + instance});
    args.insert(args.end(), extra.begin(), extra.end());
    auto p = std::make_unique<ServerProcess>(args);
    EXPECT_TRUE(p->started()) << p->Output();
    return p;
  }

  static void ExpectReady(const ServerProcess& p) { ASSERT_TRUE(p.WaitReady(90s)) << p.Output(); }

  // Waits for the query node to show exactly `expected`.
  static void ExpectCounts(HttpClient& query, const Counts& expected,
                           std::chrono::milliseconds timeout = 120s) {
    std::string diff;
    EXPECT_TRUE(WaitForAllCounts(query, expected, timeout, &diff)) << diff;
  }

  std::string brokers_;
  ClusterNames names_;
};

TEST_F(ClusterTest, EventsFlowThroughThreeSeparateProcesses) {
  TempDir agg_dir;
  TempDir query_dir;
  auto ingest = StartRole("ingest");
  auto aggregate = StartRole("aggregate", agg_dir.path(), "flow-a");
  auto query = StartRole("query", query_dir.path());
  ExpectReady(*ingest);
  ExpectReady(*aggregate);
  ExpectReady(*query);

  HttpClient in(ingest->port());
  std::string batch;
  for (int i = 0; i < 1001; ++i) batch += "{\"domain\":\"Catch.example\",\"type\":\"delivered\"}\n";
  HttpResult r = in.Post("/events", batch, "application/x-ndjson");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(in.Put("/events/bounce.example/delivered").status, 204);
  ASSERT_EQ(in.Put("/events/bounce.example/bounced").status, 204);
  ASSERT_EQ(in.Put("/events/few.example/delivered").status, 204);

  HttpClient q(query->port());
  ExpectCounts(q,
               {{"catch.example", {1001, 0}}, {"bounce.example", {1, 1}}, {"few.example", {1, 0}}});
  EXPECT_EQ(GetDomain(q, "catch.example").state, "catch-all");
  EXPECT_EQ(GetDomain(q, "bounce.example").state, "not catch-all");
  EXPECT_EQ(GetDomain(q, "few.example").state, "unknown");
  EXPECT_EQ(GetDomain(q, "never.example").state, "unknown");

  // Operators size the roles by these gauges: both count the three domains.
  // (RocksDB's estimates: each commit's write of a domain counts until compaction.)
  HttpClient agg_admin(aggregate->port());
  EXPECT_GE(WaitForMetricAtLeast(agg_admin, "catchall_state_domains", 3), 3);
  EXPECT_GE(WaitForMetricAtLeast(q, "catchall_query_domains", 3), 3);
}

TEST_F(ClusterTest, AggregatorKilledMidLoadRestartsWithExactCounts) {
  TempDir agg_dir;
  TempDir query_dir;
  auto ingest = StartRole("ingest");
  auto aggregate = StartRole("aggregate", agg_dir.path(), "kill-a");
  auto query = StartRole("query", query_dir.path());
  ExpectReady(*ingest);
  ExpectReady(*aggregate);
  ExpectReady(*query);

  EventLoad load(ingest->port(), {4, 30, "k9-", "kill-", true});
  while (load.acked() < 2000) std::this_thread::sleep_for(5ms);
  aggregate->Kill();  // mid-transaction, mid-batch: no shutdown code runs
  size_t at_kill = load.acked();
  aggregate = StartRole("aggregate", agg_dir.path(), "kill-a");
  while (load.acked() < at_kill + 3000) std::this_thread::sleep_for(5ms);
  load.Stop();

  HttpClient in(ingest->port());
  std::vector<SentEvent> all = load.acked_events();
  for (const SentEvent& e : load.unanswered_events()) {
    ASSERT_TRUE(Resend(in, e));
    all.push_back(e);
  }
  HttpClient q(query->port());
  ExpectCounts(q, Tally(all));
}

TEST_F(ClusterTest, SecondAggregatorJoinsThenLeavesMidLoadWithExactCounts) {
  TempDir dir_a;
  TempDir dir_b;
  TempDir query_dir;
  auto ingest = StartRole("ingest");
  auto agg_a = StartRole("aggregate", dir_a.path(), "join-a");
  auto query = StartRole("query", query_dir.path());
  ExpectReady(*ingest);
  ExpectReady(*agg_a);
  ExpectReady(*query);

  EventLoad load(ingest->port(), {4, 30, "join-", "join-", true});
  while (load.acked() < 1500) std::this_thread::sleep_for(5ms);
  auto agg_b = StartRole("aggregate", dir_b.path(), "join-b");
  ExpectReady(*agg_b);
  // The newcomer takes partitions over (restoring them from the changelog).
  HttpClient b_admin(agg_b->port());
  EXPECT_GE(WaitForMetricAtLeast(b_admin, "catchall_aggregate_owned_partitions", 1, 30s), 1)
      << agg_b->Output();
  size_t mark = load.acked();
  while (load.acked() < mark + 2000) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(agg_b->Terminate(), 0) << agg_b->Output();  // leaves: partitions go back
  EXPECT_THAT(agg_b->Output(), HasSubstr("restored"));
  mark = load.acked();
  while (load.acked() < mark + 1500) std::this_thread::sleep_for(5ms);
  load.Stop();

  HttpClient in(ingest->port());
  std::vector<SentEvent> all = load.acked_events();
  for (const SentEvent& e : load.unanswered_events()) {
    ASSERT_TRUE(Resend(in, e));
    all.push_back(e);
  }
  HttpClient q(query->port());
  ExpectCounts(q, Tally(all));
  if (HasFailure()) {
    std::cerr << "aggregator a:\n" << agg_a->Output() << "\naggregator b:\n" << agg_b->Output();
  }
}

TEST_F(ClusterTest, KcatReplayProducesStatusesAndDeadLettersMisroutedRecords) {
  TempDir agg_dir;
  TempDir query_dir;
  auto aggregate = StartRole("aggregate", agg_dir.path(), "kcat-a");
  auto query = StartRole("query", query_dir.path());
  ExpectReady(*aggregate);
  ExpectReady(*query);

  // The documented replay: "<domain>\t<event json>" lines, keyed by the
  // normalized domain, with the partitioner that matches Kafka's Java
  // default (and catchall's).
  std::string lines;
  for (int i = 0; i < 1200; ++i) {
    lines += "replayed.example\t{\"domain\":\"replayed.example\",\"type\":\"delivered\"}\n";
  }
  lines += "other.example\t{\"domain\":\"other.example\",\"type\":\"bounced\",\"ts\":1}\n";
  std::string out;
  ASSERT_EQ(RunProgram({"kcat", "-P", "-b", brokers_, "-t", names_.events, "-K", "\t", "-X",
                        "partitioner=murmur2_random"},
                       lines, &out),
            0)
      << out;
  // A record in the wrong partition must not be counted but dead-lettered.
  std::string misrouted = "misrouted.example";
  int32_t right = PartitionForKey(misrouted, kPartitions);
  int32_t wrong = (right + 1) % kPartitions;
  ASSERT_EQ(
      RunProgram({"kcat", "-P", "-b", brokers_, "-t", names_.events, "-p", std::to_string(wrong),
                  "-K", "\t"},
                 misrouted + "\t{\"domain\":\"misrouted.example\",\"type\":\"delivered\"}\n", &out),
      0)
      << out;

  HttpClient q(query->port());
  ExpectCounts(
      q,
      {{"replayed.example", {1200, 0}}, {"other.example", {0, 1}}, {"misrouted.example", {0, 0}}});
  EXPECT_EQ(GetDomain(q, "replayed.example").state, "catch-all");

  // The dead letter says why.
  std::string dlq;
  for (int i = 0; i < 50 && dlq.find("misrouted.example") == std::string::npos; ++i) {
    RunProgram({"kcat", "-C", "-b", brokers_, "-t", names_.dead_letter, "-e", "-q", "-X",
                "isolation.level=read_committed", "-f", "%s\n"},
               "", &dlq);
    if (dlq.find("misrouted.example") == std::string::npos) std::this_thread::sleep_for(200ms);
  }
  EXPECT_THAT(dlq, HasSubstr("misrouted.example"));
  EXPECT_THAT(dlq, HasSubstr("but its key belongs to partition " + std::to_string(right)));

  // Statuses can be read out of the changelog with kcat too.
  std::string statuses;
  RunProgram({"kcat", "-C", "-b", brokers_, "-t", names_.status, "-e", "-q", "-X",
              "isolation.level=read_committed", "-f", "%k %s\n"},
             "", &statuses);
  EXPECT_THAT(
      statuses,
      HasSubstr(
          R"(replayed.example {"domain":"replayed.example","status":"catch-all","delivered":1200,"bounced":0})"));
}

// A broker of its own, so that stopping it does not disturb other tests.
class BrokerOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = "19392";
    env_ = "KAFKA_PORT=" + port_ + " KAFKA_DEV_DIR=" + state_.path() + "/kafka ";
    ASSERT_EQ(Kafka("start"), 0) << output_;
    brokers_ = "127.0.0.1:" + port_;
    names_ = CreateClusterTopics(brokers_, "outage", kPartitions);
  }
  void TearDown() override { Kafka("stop"); }

  int Kafka(const std::string& command) {
    return RunProgram({"sh", "-c", env_ + KafkaDevScript() + " " + command}, "", &output_);
  }

  std::unique_ptr<ServerProcess> StartRole(const std::string& role, const std::string& data_dir,
                                           const std::string& instance = "") {
    std::vector<std::string> args = {role, "--brokers", brokers_, "--set", "kafka.timeout_ms=3000"};
    for (const auto& f : names_.Flags()) args.push_back(f);
    if (!data_dir.empty()) args.insert(args.end(), {"--data-dir", data_dir});
    if (!instance.empty()) args.insert(args.end(), {"--set", "kafka.instance_id=" + instance});
    return std::make_unique<ServerProcess>(args);
  }

  TempDir state_;
  std::string port_;
  std::string env_;
  std::string output_;
  std::string brokers_;
  ClusterNames names_;
};

TEST_F(BrokerOutageTest, IngestAnswers503QuicklyAndLosesNothingAcknowledged) {
  TempDir agg_dir;
  TempDir query_dir;
  auto ingest = StartRole("ingest", "");
  auto aggregate = StartRole("aggregate", agg_dir.path(), "outage-a");
  auto query = StartRole("query", query_dir.path());
  ASSERT_TRUE(ingest->WaitReady(90s)) << ingest->Output();
  ASSERT_TRUE(aggregate->WaitReady(90s)) << aggregate->Output();
  ASSERT_TRUE(query->WaitReady(90s)) << query->Output();

  EventLoad load(ingest->port(), {4, 30, "outage-", "outage-", false});
  while (load.acked() < 1500) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(Kafka("stop"), 0) << output_;

  // With the broker gone, a request is refused with 503 within the
  // delivery timeout (3 s here), never left hanging.
  HttpClient probe(ingest->port(), 30s);
  int refused = 0;
  for (int i = 0; i < 20 && refused < 3; ++i) {
    auto started = std::chrono::steady_clock::now();
    HttpResult r = probe.Put("/events/probe.example/delivered",
                             {{"Idempotency-Key", "probe-" + std::to_string(i)}});
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_LT(took, 6s) << "status " << r.status;
    if (r.status == 503) {
      ++refused;
      EXPECT_EQ(r.Header("retry-after"), "1");
      EXPECT_THAT(r.body, HasSubstr("log_unavailable"));
    }
  }
  EXPECT_GE(refused, 3);
  EXPECT_EQ(probe.Get("/readyz").status, 503);

  ASSERT_EQ(Kafka("start"), 0) << output_;
  size_t mark = load.acked();
  // Ingest recovers by itself once the broker answers.
  for (int i = 0; i < 1200 && load.acked() < mark + 1500; ++i) std::this_thread::sleep_for(100ms);
  EXPECT_GE(load.acked(), mark + 1500) << ingest->Output();
  load.Stop();
  EXPECT_GT(load.refused(), 0U);

  // Everything acknowledged is there; what was refused is retried with the
  // same keys and then counted exactly once.
  HttpClient in(ingest->port());
  std::vector<SentEvent> all = load.acked_events();
  for (const SentEvent& e : load.unanswered_events()) {
    ASSERT_TRUE(Resend(in, e));
    all.push_back(e);
  }
  HttpClient q(query->port());
  std::string diff;
  EXPECT_TRUE(WaitForAllCounts(q, Tally(all), 180s, &diff)) << diff << "\naggregator:\n"
                                                            << aggregate->Output().substr(0, 20000);
}

}  // namespace
}  // namespace catchall::testing
