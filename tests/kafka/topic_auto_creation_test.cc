// A broker that creates topics on request. Kafka's own default is
// auto.create.topics.enable=true: the broker then creates any missing topic
// that a client's metadata request names, if the client allows it, and
// librdkafka's producers allow it unless told not to. Every role looks its
// topics up at start, so on such a broker a role started before
// `catchall topics create` used to make them itself: the events topic with
// the broker's one partition, the changelog and ids topics without
// compaction. Roles must wait for the topics instead.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/catchall_client.h"
#include "support/http_client.h"
#include "support/kafka_cluster.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace catchall::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kPartitions = 4;

TEST(TopicAutoCreationTest, RolesStartedBeforeTheirTopicsWaitForThemInsteadOfCreatingThem) {
  TestBroker broker(/*secured=*/false, "auto.create.topics.enable=true");
  ASSERT_EQ(broker.Start(), 0) << broker.output();
  const std::string brokers = broker.brokers();
  ClusterNames names = UniqueClusterNames("autocreate");
  TempDir agg_dir;
  TempDir query_dir;

  // Each role's start returns once it listens, which is after it found its
  // topics; so all three start at once, and look their topics up before
  // they exist.
  std::unique_ptr<ServerProcess> ingest;
  std::unique_ptr<ServerProcess> aggregate;
  std::unique_ptr<ServerProcess> query;
  std::vector<std::thread> starts;
  starts.emplace_back(
      [&] { ingest = std::make_unique<ServerProcess>(names.RoleArgs("ingest", brokers)); });
  starts.emplace_back([&] {
    aggregate = std::make_unique<ServerProcess>(
        names.RoleArgs("aggregate", brokers, agg_dir.path(), "autocreate-a"));
  });
  starts.emplace_back([&] {
    query = std::make_unique<ServerProcess>(names.RoleArgs("query", brokers, query_dir.path()));
  });
  std::this_thread::sleep_for(4s);

  // Had a role's lookup created the events topic (one partition), this
  // would refuse: an existing events topic with another partition count.
  CreateTopicsOf(names, brokers, kPartitions);
  for (auto& t : starts) t.join();
  ASSERT_TRUE(ingest->started()) << ingest->Output();
  ASSERT_TRUE(aggregate->started()) << aggregate->Output();
  ASSERT_TRUE(query->started()) << query->Output();

  // Every topic as `topics create` made it: partitions and compaction.
  std::vector<std::string> check = {
      ServerProcess::BinaryPath(), "topics", "check", "--brokers", brokers, "--partitions",
      std::to_string(kPartitions)};
  for (const auto& f : names.Flags()) check.push_back(f);
  std::string report;
  EXPECT_EQ(RunProgram(check, "", &report), 0) << report;

  ASSERT_TRUE(ingest->WaitReady(90s)) << ingest->Output();
  ASSERT_TRUE(aggregate->WaitReady(90s)) << aggregate->Output();
  ASSERT_TRUE(query->WaitReady(90s)) << query->Output();
  HttpClient in(ingest->port());
  ASSERT_EQ(in.Put("/events/auto.example/delivered").status, 204);
  ASSERT_EQ(in.Put("/events/auto.example/bounced").status, 204);
  HttpClient q(query->port());
  std::string diff;
  EXPECT_TRUE(WaitForAllCounts(q, {{"auto.example", {1, 1}}}, 120s, &diff))
      << diff << ingest->Output() << aggregate->Output() << query->Output();
}

}  // namespace
}  // namespace catchall::testing
