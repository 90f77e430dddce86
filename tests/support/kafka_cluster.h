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
  // The command line of a cluster role on these topics:
  //   ROLE --brokers BROKERS <Flags()> [--data-dir DIR]
  //   [--set kafka.instance_id=INSTANCE] [extra...]
  // An aggregator's stable instance id lets a restart fence its previous
  // incarnation. `extra` comes last, so its --set flags win.
  std::vector<std::string> RoleArgs(const std::string& role, const std::string& brokers,
                                    const std::string& data_dir = "",
                                    const std::string& instance = "",
                                    const std::vector<std::string>& extra = {}) const;
};

// Creates the three topics with `partitions` partitions through
// `catchall topics create`; `flags` are added to its command line (e.g. the
// --set flags of a secured connection).
ClusterNames CreateClusterTopics(const std::string& brokers, const std::string& prefix,
                                 int partitions, const std::vector<std::string>& flags = {});
// The same in two steps: unique names, then their topics (for a test that
// starts a role before its topics exist).
ClusterNames UniqueClusterNames(const std::string& prefix);
void CreateTopicsOf(const ClusterNames& names, const std::string& brokers, int partitions,
                    const std::vector<std::string>& flags = {});

// Runs a program (argv[0] is looked up in PATH) with `input` on stdin;
// returns its exit code and puts stdout+stderr in *output.
int RunProgram(const std::vector<std::string>& argv, const std::string& input, std::string* output);

// Path of scripts/kafka-dev in the source tree.
std::string KafkaDevScript();

// `n` distinct TCP ports on 127.0.0.1 that were free a moment ago.
std::vector<uint16_t> FreeTcpPorts(int n);

// The SCRAM-SHA-512 and PLAIN user that `scripts/kafka-dev start --sasl`
// creates.
inline constexpr char kSaslUser[] = "catchall";
inline constexpr char kSaslPassword[] = "catchall-secret";

// A single-node Kafka broker of a test's own (scripts/kafka-dev), on free
// ports, for tests that stop and restart it, or that need its secured
// listeners. Its state dir is a
// `broker-<port>-<controller port>` directory under $CATCHALL_TEST_BROKERS_DIR, where the ctest
// fixture `kafka_test_brokers` (tests/stop-test-brokers) stops it should the
// test be killed before its destructor runs.
class TestBroker {
 public:
  // `secured`: started with --sasl, so that it also has a SASL_SSL listener
  // (kSaslUser) and an SSL listener that requires a client certificate.
  // `extra_properties`: broker settings that override kafka-dev's
  // (KAFKA_EXTRA_PROPERTIES, "key=value" lines), e.g. Kafka's own default
  // auto.create.topics.enable=true.
  explicit TestBroker(bool secured = false, std::string extra_properties = "");
  ~TestBroker();  // stops the broker and deletes its state
  TestBroker(const TestBroker&) = delete;
  TestBroker& operator=(const TestBroker&) = delete;

  // scripts/kafka-dev start|stop; the exit code, with its output in output().
  int Start();
  int Stop();
  std::string brokers() const { return "127.0.0.1:" + std::to_string(port_); }
  // REQUIRES: secured.
  std::string sasl_brokers() const { return "127.0.0.1:" + std::to_string(sasl_port_); }
  std::string ssl_brokers() const { return "127.0.0.1:" + std::to_string(ssl_port_); }
  // The CA (ca.pem) and the client's certificate and key (client.pem,
  // client.key) that kafka-dev made.
  std::string tls_dir() const { return state_dir_ + "/tls"; }
  const std::string& output() const { return output_; }

 private:
  int KafkaDev(const std::string& command);

  uint16_t port_ = 0;
  uint16_t controller_port_ = 0;
  bool secured_ = false;
  std::string extra_properties_;
  uint16_t sasl_port_ = 0;
  uint16_t ssl_port_ = 0;
  std::string state_dir_;
  std::string output_;
};

}  // namespace catchall::testing
