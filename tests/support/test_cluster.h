// TestCluster: a three-node Kafka cluster of a test's own, with the
// metadata a failover test needs (partition leaders, replication, the
// transaction coordinator of an aggregator).
#pragma once

#include <cstdint>
#include <string>

namespace catchall::testing {

// A three-node KRaft cluster of a test's own (`scripts/kafka-dev start
// --nodes 3`: brokers on port(), +1, +2, controllers on +3..+5, internal
// topics with replication factor 3 and min.insync.replicas 2), for tests
// that kill and restart brokers. Its state is a `cluster-<port>-3` directory
// under $CATCHALL_TEST_BROKERS_DIR, which tests/stop-test-brokers cleans up
// should the test be killed.
class TestCluster {
 public:
  static constexpr int kNodes = 3;
  TestCluster();
  ~TestCluster();  // stops every node and deletes the state
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  // Starts the nodes that are not running (all, the first time) and waits
  // until each answers; the exit code, with the script's output in output().
  int Start();
  // kill -9 of node `id` (1..kNodes). False if it was not running.
  bool Kill(int id);
  // SIGTERM of node `id` (a controlled shutdown, as in a rolling restart).
  int Stop(int id);

  std::string brokers() const;  // "127.0.0.1:p,127.0.0.1:p+1,127.0.0.1:p+2"
  const std::string& output() const { return output_; }

  // From the cluster's metadata (kcat -L): the leader's node id of
  // `partition` of `topic`, or -1 if it has none or cannot be read.
  int Leader(const std::string& topic, int partition);
  // True when every partition of `topic` has all kNodes replicas in sync.
  bool FullyReplicated(const std::string& topic);
  // The node that coordinates the transactions of `transactional_id`: the
  // leader of its __transaction_state partition (Kafka's rule:
  // abs(Java hashCode) % transaction.state.log.num.partitions, 10 here).
  int TransactionCoordinator(const std::string& transactional_id);

 private:
  std::string Metadata(const std::string& topic);

  uint16_t port_ = 0;
  std::string state_dir_;
  std::string output_;
};

// `n` consecutive TCP ports on 127.0.0.1 that were free a moment ago (0 if
// none were found).
uint16_t FreeConsecutiveTcpPorts(int n);

}  // namespace catchall::testing
