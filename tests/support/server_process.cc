#include "support/server_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/http_client.h"
#include "support/wait.h"

extern char** environ;

namespace catchall::testing {
namespace {

pid_t Spawn(const std::vector<std::string>& args, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The child must not inherit a blocked SIGTERM from the test runner.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return rc == 0 ? pid : -1;
}

}  // namespace

std::string ServerProcess::BinaryPath() { return CATCHALL_BINARY; }

ServerProcess::ServerProcess(std::vector<std::string> args, std::chrono::seconds timeout,
                             std::vector<std::string> wrapper) {
  log_path_ = scratch_.path() + "/server.log";
  port_file_ = scratch_.path() + "/port";
  command_ = args.empty() ? std::string() : args.front();
  std::vector<std::string> argv = std::move(wrapper);
  argv.push_back(BinaryPath());
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--listen", "127.0.0.1:0", "--port-file", port_file_});
  pid_ = Spawn(argv, log_path_);
  if (pid_ < 0) {
    ADD_FAILURE() << "cannot start " << BinaryPath();
    return;
  }
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    std::ifstream in(port_file_);
    int port = 0;
    if (in >> port && port > 0) {
      port_ = static_cast<uint16_t>(port);
      return;
    }
    if (Reap(false)) {
      ADD_FAILURE() << "catchall exited during start (" << ExitDescription() << "):\n" << Output();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "catchall did not start within the timeout:\n" << Output();
}

ServerProcess::~ServerProcess() { Kill(); }

bool ServerProcess::WaitReady(std::chrono::seconds timeout) {
  if (!started()) return false;
  HttpClient client(port_, std::chrono::seconds(10));
  return WaitUntil([&] { return client.Get("/readyz").status == 200; }, timeout,
                   "GET /readyz to answer 200", {this}, std::chrono::milliseconds(50));
}

bool ServerProcess::Reap(bool block) {
  if (pid_ <= 0) return true;
  int status = 0;
  if (waitpid(pid_, &status, block ? 0 : WNOHANG) != pid_) return false;
  wait_status_ = status;
  pid_ = -1;
  return true;
}

bool ServerProcess::Running() { return !Reap(false); }

std::string ServerProcess::ExitDescription() const {
  if (pid_ > 0) return "running";
  if (wait_status_ < 0) return "never started";
  if (WIFEXITED(wait_status_)) return "exit code " + std::to_string(WEXITSTATUS(wait_status_));
  if (WIFSIGNALED(wait_status_)) {
    return "killed by signal " + std::to_string(WTERMSIG(wait_status_));
  }
  return "status " + std::to_string(wait_status_);
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  Reap(true);
}

int ServerProcess::Terminate(std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (Reap(false)) return WIFEXITED(wait_status_) ? WEXITSTATUS(wait_status_) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
  return -1;
}

std::string ServerProcess::Output() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int RunBinary(const std::vector<std::string>& args, std::string* output,
              std::chrono::seconds timeout) {
  TempDir dir;
  std::string log = dir.path() + "/out.log";
  std::vector<std::string> argv = {ServerProcess::BinaryPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = Spawn(argv, log);
  if (pid < 0) return -1;
  int status = 0;
  // A command that should fail at once but serves instead must fail the
  // test, not hang it until ctest's timeout.
  auto until = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  *output = ss.str();
  if (timed_out) {
    *output += "\n[still running after " + std::to_string(timeout.count()) + " s: killed]\n";
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace catchall::testing
