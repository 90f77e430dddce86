// Idempotency across failover, on a real broker: an Idempotency-Key makes a
// retry safe wherever its partition is counted, because the seen ids travel
// with the counts (the ids log) and are restored with the partition, or
// kept warm by a standby (aggregate.standby_replicas).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "support/catchall_client.h"
#include "support/event_load.h"
#include "support/kafka_cluster.h"
#include "support/server_process.h"

namespace catchall::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kPartitions = 4;
constexpr int kDomains = 48;
constexpr int kEventsPerDomain = 5;

// Sum of a metric's samples whose labels contain `labels` (any, if empty).
double Metric(HttpClient& node, const std::string& name, const std::string& labels = "") {
  std::string text = "\n" + node.Get("/metrics").body;
  double sum = 0;
  size_t pos = 0;
  while ((pos = text.find("\n" + name, pos)) != std::string::npos) {
    size_t start = pos + 1 + name.size();
    size_t end = text.find('\n', start);
    std::string line = text.substr(start, end - start);
    // An unlabelled sample is "name value": no labels to look for.
    bool labelled = labels.empty() || line.find(labels) < line.rfind(' ');
    if (!line.empty() && (line[0] == ' ' || line[0] == '{') && labelled) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
    pos = start;
  }
  return sum;
}

// Records an aggregator found to repeat an id already counted.
double Duplicates(HttpClient& aggregator) {
  return Metric(aggregator, "catchall_aggregate_records_total", "outcome=\"duplicate\"");
}

class IdempotencyFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    brokers_ = TestBrokers();
    names_ = CreateClusterTopics(brokers_, "idfail", kPartitions);
  }

  std::unique_ptr<ServerProcess> StartRole(const std::string& role, const std::string& data_dir,
                                           const std::string& instance,
                                           const std::vector<std::string>& extra = {}) {
    auto p =
        std::make_unique<ServerProcess>(names_.RoleArgs(role, brokers_, data_dir, instance, extra));
    EXPECT_TRUE(p->started()) << p->Output();
    EXPECT_TRUE(p->WaitReady(90s)) << p->Output();
    return p;
  }

  // PUTs every keyed event (5 per domain, each with its own key).
  void PutAllKeyed(HttpClient& ingest) {
    for (int d = 0; d < kDomains; ++d) {
      for (int i = 0; i < kEventsPerDomain; ++i) {
        std::string domain = "keyed" + std::to_string(d) + ".example";
        std::string key = "key-" + std::to_string(d) + "-" + std::to_string(i);
        HttpResult r;
        for (int attempt = 0; attempt < 50; ++attempt) {
          r = ingest.Put("/events/" + domain + "/delivered", {{"Idempotency-Key", key}});
          if (r.status == 204) break;
          std::this_thread::sleep_for(100ms);
        }
        ASSERT_EQ(r.status, 204) << r.body;
      }
    }
  }

  Counts Expected() const {
    Counts c;
    for (int d = 0; d < kDomains; ++d) {
      c["keyed" + std::to_string(d) + ".example"] = {kEventsPerDomain, 0};
    }
    return c;
  }

  // Waits until `done()` or fails the test with what the nodes printed.
  void WaitFor(const std::function<bool()>& done, const std::string& what,
               const std::vector<const ServerProcess*>& nodes, std::chrono::seconds deadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) {
        std::string output;
        for (const auto* n : nodes) output += n->Output().substr(0, 20000) + "\n----\n";
        FAIL() << "timed out waiting for " << what << "\n" << output;
      }
      std::this_thread::sleep_for(200ms);
    }
  }

  std::string brokers_;
  ClusterNames names_;
};

TEST_F(IdempotencyFailoverTest, RetriesCountOnceAfterTheOwnerDiesAndAfterPartitionsMoveBack) {
  TempDir dir_a;
  TempDir dir_b;
  TempDir dir_q;
  auto ingest = StartRole("ingest", "", "");
  auto a = StartRole("aggregate", dir_a.path(), "idfail-a");
  auto b = StartRole("aggregate", dir_b.path(), "idfail-b");
  auto query = StartRole("query", dir_q.path(), "");
  HttpClient in(ingest->port());
  HttpClient q(query->port());
  auto owned = [](const std::unique_ptr<ServerProcess>& p) {
    HttpClient admin(p->port(), 5s);
    return Metric(admin, "catchall_aggregate_owned_partitions");
  };
  WaitFor([&] { return owned(a) == 2 && owned(b) == 2; }, "both aggregators to own 2 partitions",
          {a.get(), b.get()}, 60s);

  // Keyed events, all acknowledged and counted.
  PutAllKeyed(in);
  std::string diff;
  ASSERT_TRUE(WaitForAllCounts(q, Expected(), 120s, &diff)) << diff;

  // The owner of half the partitions dies; the survivor takes them over
  // (restoring their counts and ids), and a client retries every key.
  a->Kill();
  WaitFor([&] { return owned(b) == 4; }, "the survivor to own every partition", {b.get()}, 90s);
  HttpClient b_admin(b->port());
  double duplicates_before = Duplicates(b_admin);
  PutAllKeyed(in);
  WaitFor([&] { return Duplicates(b_admin) >= duplicates_before + kDomains * kEventsPerDomain; },
          "the survivor to see every retry as a duplicate", {b.get()}, 120s);
  ASSERT_TRUE(WaitForAllCounts(q, Expected(), 60s, &diff)) << diff;

  // The first aggregator comes back with its old store: partitions move
  // back to it (restored from where its store stood), and the keys are
  // retried once more.
  a = StartRole("aggregate", dir_a.path(), "idfail-a");
  WaitFor([&] { return owned(a) == 2 && owned(b) == 2; }, "the partitions to move back",
          {a.get(), b.get()}, 90s);
  HttpClient a_admin(a->port());
  double b_before = Duplicates(b_admin);
  PutAllKeyed(in);
  WaitFor(
      [&] {
        double a_dups = Duplicates(a_admin);
        double b_dups = Duplicates(b_admin) - b_before;
        return a_dups + b_dups >= kDomains * kEventsPerDomain;
      },
      "both aggregators to see every retry as a duplicate", {a.get(), b.get()}, 120s);
  EXPECT_TRUE(WaitForAllCounts(q, Expected(), 60s, &diff)) << diff;
  EXPECT_GT(Duplicates(a_admin), 0)
      << "the partitions that moved back were not counted by the first aggregator";
}

TEST_F(IdempotencyFailoverTest, AWarmStandbyTakesOverWithoutARestoreAndRetriesCountOnce) {
  TempDir dir_a;
  TempDir dir_b;
  TempDir dir_q;
  const std::vector<std::string> standby = {"--set", "aggregate.standby_replicas=1"};
  auto ingest = StartRole("ingest", "", "");
  auto a = StartRole("aggregate", dir_a.path(), "idwarm-a", standby);
  auto b = StartRole("aggregate", dir_b.path(), "idwarm-b", standby);
  auto query = StartRole("query", dir_q.path(), "");
  HttpClient in(ingest->port());
  HttpClient q(query->port());
  HttpClient a_admin(a->port());
  HttpClient b_admin(b->port());
  WaitFor(
      [&] {
        return Metric(a_admin, "catchall_aggregate_owned_partitions") == 2 &&
               Metric(b_admin, "catchall_aggregate_owned_partitions") == 2;
      },
      "both aggregators to own 2 partitions", {a.get(), b.get()}, 60s);
  PutAllKeyed(in);
  std::string diff;
  ASSERT_TRUE(WaitForAllCounts(q, Expected(), 120s, &diff)) << diff;

  // Each keeps the other's two partitions warm, read to their end.
  for (HttpClient* node : {&a_admin, &b_admin}) {
    WaitFor(
        [&] {
          return Metric(*node, "catchall_aggregate_standby_partitions") == 2 &&
                 Metric(*node, "catchall_aggregate_standby_behind_partitions") == 0 &&
                 Metric(*node, "catchall_aggregate_standby_records_total") > 0;
        },
        "the standbys to catch up", {a.get(), b.get()}, 60s);
  }
  const double restored_before = Metric(b_admin, "catchall_aggregate_restored_records_total");

  // The owner dies: the survivor takes its partitions over from the warm
  // copy, reading nothing of the changelog or the ids log.
  a->Kill();
  WaitFor(
      [&] {
        return Metric(b_admin, "catchall_aggregate_owned_partitions") == 4 &&
               Metric(b_admin, "catchall_aggregate_restoring_partitions") == 0;
      },
      "the survivor to own every partition", {b.get()}, 90s);
  EXPECT_EQ(Metric(b_admin, "catchall_aggregate_restored_records_total"), restored_before)
      << b->Output();
  EXPECT_EQ(Metric(b_admin, "catchall_aggregate_standby_partitions"), 0) << "b owns everything";

  // The ids came with the warm copy: every retry is a duplicate.
  double duplicates_before = Duplicates(b_admin);
  PutAllKeyed(in);
  WaitFor([&] { return Duplicates(b_admin) >= duplicates_before + kDomains * kEventsPerDomain; },
          "the survivor to see every retry as a duplicate", {b.get()}, 120s);
  EXPECT_TRUE(WaitForAllCounts(q, Expected(), 60s, &diff)) << diff;
}

}  // namespace
}  // namespace catchall::testing
