#include "support/kafka_cluster.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "support/server_process.h"

namespace catchall::testing {

std::string TestBrokers() {
  const char* b = std::getenv("CATCHALL_TEST_BROKERS");
  if (!b || !*b) {
    ADD_FAILURE() << "CATCHALL_TEST_BROKERS is not set: these tests need a real Kafka broker. "
                     "Run scripts/test, or `scripts/kafka-dev start` and "
                     "CATCHALL_TEST_BROKERS=127.0.0.1:9092";
    return "127.0.0.1:1";
  }
  return b;
}

std::vector<std::string> ClusterNames::Flags() const {
  return {
      "--set", "kafka.events_topic=" + events, "--set", "kafka.status_topic=" + status,
      "--set", "kafka.ids_topic=" + ids,       "--set", "kafka.dead_letter_topic=" + dead_letter,
      "--set", "kafka.group_id=" + group,      "--set", "aggregate.commit_interval_ms=50"};
}

ClusterNames CreateClusterTopics(const std::string& brokers, const std::string& prefix,
                                 int partitions) {
  std::random_device rd;
  std::string id = prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(rd() % 100000);
  ClusterNames n{id + ".events", id + ".status", id + ".ids", id + ".dlq", id + ".group"};
  std::vector<std::string> args = {"topics", "create",       "--brokers",
                                   brokers,  "--partitions", std::to_string(partitions)};
  for (const auto& f : n.Flags()) args.push_back(f);
  std::string out;
  int rc = RunBinary(args, &out);
  EXPECT_EQ(rc, 0) << out;
  return n;
}

int RunProgram(const std::vector<std::string>& argv, const std::string& input,
               std::string* output) {
  TempDir dir;
  std::string in = dir.path() + "/in";
  std::string out = dir.path() + "/out";
  std::ofstream(in) << input;
  std::string cmd;
  for (const auto& a : argv) {
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    cmd += q + "' ";
  }
  cmd += "< '" + in + "' > '" + out + "' 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream o(out);
  std::stringstream ss;
  ss << o.rdbuf();
  *output = ss.str();
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string KafkaDevScript() { return std::string(CATCHALL_SOURCE_DIR) + "/scripts/kafka-dev"; }

}  // namespace catchall::testing
