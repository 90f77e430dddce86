#include "support/test_cluster.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "support/kafka_cluster.h"

namespace catchall::testing {
namespace {

bool PortFree(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Java's String.hashCode of an ASCII string, which Kafka uses to place a
// transactional id on a __transaction_state partition.
int32_t JavaHashCode(const std::string& s) {
  uint32_t h = 0;
  for (unsigned char c : s) h = 31 * h + c;
  return static_cast<int32_t>(h);
}

constexpr int kTransactionStatePartitions = 10;  // scripts/kafka-dev's setting

}  // namespace

uint16_t FreeConsecutiveTcpPorts(int n) {
  // Below the kernel's ephemeral range (32768+), where clients' ports come
  // from, so that a port found free stays free while the brokers start.
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto base = static_cast<uint16_t>(20000 + rng() % 12000);
    bool all = true;
    for (int i = 0; i < n && all; ++i) all = PortFree(static_cast<uint16_t>(base + i));
    if (all) return base;
  }
  return 0;
}

TestCluster::TestCluster() {
  port_ = FreeConsecutiveTcpPorts(2 * kNodes);
  if (port_ == 0) ADD_FAILURE() << "no " << 2 * kNodes << " consecutive free ports";
  const char* dir = std::getenv("CATCHALL_TEST_BROKERS_DIR");
  std::string base = dir && *dir ? dir : ::testing::TempDir() + "catchall-test-brokers";
  state_dir_ = base + "/cluster-" + std::to_string(port_) + "-" + std::to_string(kNodes);
  std::filesystem::create_directories(base);
}

TestCluster::~TestCluster() {
  RunProgram({"env", "KAFKA_PORT=" + std::to_string(port_), "KAFKA_DEV_DIR=" + state_dir_,
              KafkaDevScript(), "stop", "--nodes", std::to_string(kNodes)},
             "", &output_);
  std::error_code ec;
  std::filesystem::remove_all(state_dir_, ec);
}

int TestCluster::Start() {
  return RunProgram({"env", "KAFKA_PORT=" + std::to_string(port_), "KAFKA_DEV_DIR=" + state_dir_,
                     KafkaDevScript(), "start", "--nodes", std::to_string(kNodes)},
                    "", &output_);
}

bool TestCluster::Kill(int id) {
  std::ifstream in(state_dir_ + "/node-" + std::to_string(id) + "/kafka.pid");
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) return false;
  return kill(pid, SIGKILL) == 0;
}

int TestCluster::Stop(int id) {
  return RunProgram(
      {"env", "KAFKA_PORT=" + std::to_string(port_ + id - 1),
       "KAFKA_CONTROLLER_PORT=" + std::to_string(port_ + kNodes + id - 1),
       "KAFKA_DEV_DIR=" + state_dir_ + "/node-" + std::to_string(id), KafkaDevScript(), "stop"},
      "", &output_);
}

std::string TestCluster::brokers() const {
  std::string out;
  for (int i = 0; i < kNodes; ++i) {
    out += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(port_ + i);
  }
  return out;
}

std::string TestCluster::Metadata(const std::string& topic) {
  std::string out;
  if (RunProgram({"kcat", "-b", brokers(), "-L", "-t", topic, "-m", "5"}, "", &out) != 0) return "";
  return out;
}

int TestCluster::Leader(const std::string& topic, int partition) {
  // kcat -L: "    partition 0, leader 2, replicas: 2,3,1, isrs: 2,3,1"
  std::regex line("partition " + std::to_string(partition) + ", leader (-?[0-9]+),");
  std::smatch m;
  std::string md = Metadata(topic);
  if (!std::regex_search(md, m, line)) return -1;
  return std::stoi(m[1]);
}

bool TestCluster::FullyReplicated(const std::string& topic) {
  std::string md = Metadata(topic);
  std::regex isrs("isrs: ([0-9,]*)");
  int partitions = 0;
  for (auto it = std::sregex_iterator(md.begin(), md.end(), isrs); it != std::sregex_iterator();
       ++it) {
    std::string list = (*it)[1];
    if (std::count(list.begin(), list.end(), ',') + 1 != kNodes) return false;
    ++partitions;
  }
  return partitions > 0;
}

int TestCluster::TransactionCoordinator(const std::string& transactional_id) {
  int partition = (JavaHashCode(transactional_id) & 0x7fffffff) % kTransactionStatePartitions;
  return Leader("__transaction_state", partition);
}

}  // namespace catchall::testing
