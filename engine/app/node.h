// Node: one catchall process of some role. main() starts it, waits for
// SIGTERM/SIGINT, then shuts it down.
#pragma once

#include <string>

#include "engine/status.h"

namespace catchall {

class Node {
 public:
  virtual ~Node() = default;
  // Starts serving; writes the bound port to `port_file` if not empty.
  virtual Status Start(const std::string& port_file) = 0;
  // Drains work in flight and releases everything; idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace catchall
