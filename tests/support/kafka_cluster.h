// Helpers for tests against a real Kafka broker (started by scripts/test or
// scripts/kafka-dev; its address comes from CATCHALL_TEST_BROKERS).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace catchall::testing {

// The broker address; fails the test (not skips it) when unset, since
// these tests are part of the suite.
std::string TestBrokers();

// Unique topic names and group id for one test, so tests never share state.
struct ClusterNames {
  std::string events;
  std::string status;
  std::string ids;
  std::string dead_letter;
  std::string group;
  // --set flags that point a catchall process at these names.
  std::vector<std::string> Flags() const;
};

// Creates the topics with `partitions` partitions through `catchall topics
// create` (replication factor 3 also sets min.insync.replicas=2).
ClusterNames CreateClusterTopics(const std::string& brokers, const std::string& prefix,
                                 int partitions, int replication_factor = 1);

// Runs a program (argv[0] is looked up in PATH) with `input` on stdin;
// returns its exit code and puts stdout+stderr in *output.
int RunProgram(const std::vector<std::string>& argv, const std::string& input, std::string* output);

// Path of scripts/kafka-dev in the source tree.
std::string KafkaDevScript();

// `n` distinct TCP ports on 127.0.0.1 that were free a moment ago.
std::vector<uint16_t> FreeTcpPorts(int n);

// A single-node Kafka broker of a test's own (scripts/kafka-dev), on free
// ports, for tests that stop and restart it. Its state dir is a
// `broker-<port>-<controller port>` directory under $CATCHALL_TEST_BROKERS_DIR, where the ctest
// fixture `kafka_test_brokers` (tests/stop-test-brokers) stops it should the
// test be killed before its destructor runs.
class TestBroker {
 public:
  TestBroker();
  ~TestBroker();  // stops the broker and deletes its state
  TestBroker(const TestBroker&) = delete;
  TestBroker& operator=(const TestBroker&) = delete;

  // scripts/kafka-dev start|stop; the exit code, with its output in output().
  int Start();
  int Stop();
  std::string brokers() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& output() const { return output_; }

 private:
  int KafkaDev(const std::string& command);

  uint16_t port_ = 0;
  uint16_t controller_port_ = 0;
  std::string state_dir_;
  std::string output_;
};

}  // namespace catchall::testing
