#include "support/kafka_cluster.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

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

std::vector<std::string> ClusterNames::RoleArgs(const std::string& role, const std::string& brokers,
                                                const std::string& data_dir,
                                                const std::string& instance,
                                                const std::vector<std::string>& extra) const {
  std::vector<std::string> args = {role, "--brokers", brokers};
  for (const auto& f : Flags()) args.push_back(f);
  if (!data_dir.empty()) args.insert(args.end(), {"--data-dir", data_dir});
  if (!instance.empty()) args.insert(args.end(), {"--set", "kafka.instance_id=" + instance});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

ClusterNames UniqueClusterNames(const std::string& prefix) {
  std::random_device rd;
  std::string id = prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(rd() % 100000);
  return ClusterNames{id + ".events", id + ".status", id + ".ids", id + ".dlq", id + ".group"};
}

void CreateTopicsOf(const ClusterNames& names, const std::string& brokers, int partitions,
                    const std::vector<std::string>& flags) {
  std::vector<std::string> args = {"topics", "create",       "--brokers",
                                   brokers,  "--partitions", std::to_string(partitions)};
  for (const auto& f : names.Flags()) args.push_back(f);
  args.insert(args.end(), flags.begin(), flags.end());
  std::string out;
  int rc = RunBinary(args, &out);
  EXPECT_EQ(rc, 0) << out;
}

ClusterNames CreateClusterTopics(const std::string& brokers, const std::string& prefix,
                                 int partitions, const std::vector<std::string>& flags) {
  ClusterNames n = UniqueClusterNames(prefix);
  CreateTopicsOf(n, brokers, partitions, flags);
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

std::vector<uint16_t> FreeTcpPorts(int n) {
  // All bound at once, so that they are distinct; closed before returning.
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  for (int i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot find a free port";
      if (fd >= 0) close(fd);
      break;
    }
    fds.push_back(fd);
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  return ports;
}

TestBroker::TestBroker(bool secured, std::string extra_properties)
    : secured_(secured), extra_properties_(std::move(extra_properties)) {
  std::vector<uint16_t> ports = FreeTcpPorts(4);
  if (ports.size() == 4) {
    port_ = ports[0];
    controller_port_ = ports[1];
    sasl_port_ = ports[2];
    ssl_port_ = ports[3];
  }
  const char* dir = std::getenv("CATCHALL_TEST_BROKERS_DIR");
  std::string base = dir && *dir ? dir : ::testing::TempDir() + "catchall-test-brokers";
  state_dir_ = base + "/broker-" + std::to_string(port_) + "-" + std::to_string(controller_port_);
  std::filesystem::create_directories(base);
}

TestBroker::~TestBroker() {
  KafkaDev("stop");
  std::error_code ec;
  std::filesystem::remove_all(state_dir_, ec);
}

int TestBroker::Start() { return KafkaDev(secured_ ? "start --sasl" : "start"); }
int TestBroker::Stop() { return KafkaDev("stop"); }

int TestBroker::KafkaDev(const std::string& command) {
  std::vector<std::string> argv = {"env",
                                   "KAFKA_PORT=" + std::to_string(port_),
                                   "KAFKA_CONTROLLER_PORT=" + std::to_string(controller_port_),
                                   "KAFKA_SASL_PORT=" + std::to_string(sasl_port_),
                                   "KAFKA_SSL_PORT=" + std::to_string(ssl_port_),
                                   "KAFKA_DEV_DIR=" + state_dir_,
                                   KafkaDevScript()};
  // Only when given: the environment's own value holds otherwise.
  if (!extra_properties_.empty()) {
    argv.insert(argv.end() - 1, "KAFKA_EXTRA_PROPERTIES=" + extra_properties_);
  }
  std::istringstream words(command);
  for (std::string w; words >> w;) argv.push_back(w);
  return RunProgram(argv, "", &output_);
}

}  // namespace catchall::testing
