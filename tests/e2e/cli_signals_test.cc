// Signals and the command line: Ctrl-C ends a command that waits, and a
// second SIGTERM ends a shutdown that waits.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/server_process.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace catchall::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Waits up to `timeout` for `pid`; its wait status, or -1 if it still runs.
int WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(10ms);
  }
  return -1;
}

// Termination signals were blocked for every command, so Ctrl-C did
// nothing to `keys hash` reading a key from a terminal (found by a review,
// thirteenth session).
TEST(CliSignalsTest, CtrlCEndsACommandThatWaitsForItsInput) {
  int input[2];
  ASSERT_EQ(pipe(input), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(input[0], STDIN_FILENO);
    close(input[1]);
    // As a terminal's shell would start it, whatever this runner inherited.
    signal(SIGINT, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::string binary = ServerProcess::BinaryPath();
    execl(binary.c_str(), binary.c_str(), "keys", "hash", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(input[0]);  // the write end stays open: the command waits for its key
  // Signalled once it waits in read(2) (system call 0 on x86-64), past
  // main's start: a signal sent sooner would end the old code too.
  auto in_read = [pid] {
    std::ifstream syscall("/proc/" + std::to_string(pid) + "/syscall");
    std::string number;
    return syscall >> number && number == "0";
  };
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!in_read() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(in_read()) << "keys hash never waited for its input";
  ASSERT_EQ(kill(pid, SIGINT), 0);
  int status = WaitFor(pid, 5s);
  const bool ended = status != -1;
  if (!ended) kill(pid, SIGKILL), waitpid(pid, &status, 0);
  close(input[1]);
  ASSERT_TRUE(ended) << "keys hash did not end on SIGINT";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << status;
}

// A shutdown waits up to server.shutdown_timeout_ms for requests in
// flight; only SIGKILL ended one that waited too long, a second SIGTERM
// was dropped (found by a review, thirteenth session).
TEST(CliSignalsTest, ASecondSigtermEndsAShutdownThatWaits) {
  TempDir data;
  ServerProcess server(
      {"serve", "--data-dir", data.path(), "--set", "server.shutdown_timeout_ms=600000"});
  ASSERT_TRUE(server.WaitReady());
  // A request whose body never comes: the shutdown waits for it.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string partial =
      "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
      "Content-Length: 1000\r\n\r\n{\"domain\":";
  ASSERT_EQ(send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  ASSERT_TRUE(WaitUntil(
      [&] { return server.Output().find("finishing work in flight") != std::string::npos; }, 10s,
      "the first SIGTERM", {}, 20ms));
  std::this_thread::sleep_for(1s);
  ASSERT_TRUE(server.Running()) << "the shutdown did not wait: the test shows nothing\n"
                                << server.Output();
  const auto again = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  EXPECT_TRUE(WaitUntil([&] { return !server.Running(); }, 10s, "the second SIGTERM", {}, 20ms));
  EXPECT_LT(std::chrono::steady_clock::now() - again, 5s);
  EXPECT_EQ(server.ExitDescription(), "exit code 143");
  EXPECT_THAT(server.Output(), HasSubstr("SIGTERM received again: exiting now"));
  close(fd);
}

}  // namespace
}  // namespace catchall::testing
