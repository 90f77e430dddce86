// Helpers for tests against a real Kafka broker (started by scripts/test or
// scripts/kafka-dev; its address comes from CATCHALL_TEST_BROKERS).
#pragma once

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

// Creates the three topics with `partitions` partitions through
// `catchall topics create`.
ClusterNames CreateClusterTopics(const std::string& brokers, const std::string& prefix,
                                 int partitions);

// Runs a program (argv[0] is looked up in PATH) with `input` on stdin;
// returns its exit code and puts stdout+stderr in *output.
int RunProgram(const std::vector<std::string>& argv, const std::string& input, std::string* output);

// Path of scripts/kafka-dev in the source tree.
std::string KafkaDevScript();

}  // namespace catchall::testing
