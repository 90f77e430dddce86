// ServerProcess: runs the real `catchall` binary for end-to-end tests.
// It starts the binary on 127.0.0.1 with a free port (the binary writes the
// port it bound to a file), captures its output to a log file, and can stop
// it politely (SIGTERM) or not (SIGKILL).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace catchall::testing {

class ServerProcess {
 public:
  // Path of the catchall binary under test.
  static std::string BinaryPath();

  // Starts `catchall <args...> --listen 127.0.0.1:0 --port-file <f>` and
  // waits until the port file appears (fails the test after `timeout`).
  // `wrapper`, if given, runs the binary: e.g. {"/usr/bin/prlimit",
  // "--nofile=1536:1536", "--"} (it must exec it, keeping the process).
  explicit ServerProcess(std::vector<std::string> args,
                         std::chrono::seconds timeout = std::chrono::seconds(60),
                         std::vector<std::string> wrapper = {});
  ~ServerProcess();  // SIGKILL if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool started() const { return port_ != 0; }
  // The subcommand it runs ("serve", "ingest", ...), for messages.
  const std::string& command() const { return command_; }
  // False once the process has exited (it is then reaped).
  bool Running();
  // How it ended: "exit code N", "killed by signal N", or "running".
  std::string ExitDescription() const;

  // Polls GET /readyz until 200. After `timeout`, or if the process exits
  // first, adds a test failure with the process's output and returns false.
  bool WaitReady(std::chrono::seconds timeout = std::chrono::seconds(60));
  // SIGKILL and reap.
  void Kill();
  // SIGTERM, then waits for exit; returns the exit code (-1 if killed by a
  // signal or not exited within `timeout`, after which it is SIGKILLed).
  int Terminate(std::chrono::seconds timeout = std::chrono::seconds(60));
  // What the process printed.
  std::string Output() const;

 private:
  // Reaps the process if it has exited (no wait); true if it had.
  bool Reap(bool block);

  pid_t pid_ = -1;
  int wait_status_ = -1;  // waitpid status once reaped
  std::string command_;
  uint16_t port_ = 0;
  std::string log_path_;
  std::string port_file_;
  TempDir scratch_;
};

// Runs the binary with `args` to completion; returns its exit code and
// captures stdout+stderr into *output. After `timeout` it is killed and -1
// returned (the output then says so).
int RunBinary(const std::vector<std::string>& args, std::string* output,
              std::chrono::seconds timeout = std::chrono::seconds(120));

}  // namespace catchall::testing
