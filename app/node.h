// Node: one catchall process of some role, and the skeleton every role
// shares. main() starts it, waits for SIGTERM/SIGINT (calling Reload on each
// SIGHUP), then shuts it down.
//
// Start:    the API-key gate when keys are configured, the HTTP listener
//           bound (and its TLS files loaded) but not serving, Open() (the
//           role's parts, its routes on router()), the runtime endpoints
//           (/metrics, /healthz, /readyz from Readiness()), then serving.
// Shutdown: the listener drains requests in flight first, then Close()
//           stops the role's parts. Idempotent.
#pragma once

#include <memory>
#include <string>

#include "engine/config.h"
#include "engine/http.h"
#include "engine/metrics.h"
#include "engine/status.h"

namespace catchall {

class HttpAuth;
class HttpServer;

class Node {
 public:
  Node(Config config, std::string role);
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Starts serving; writes the bound port to `port_file` if not empty.
  Status Start(const std::string& port_file);
  // Drains work in flight and releases everything. A role's destructor
  // calls it (the base class cannot: Close is the role's).
  void Shutdown();
  // SIGHUP: re-reads what an operator may rotate without a restart (API
  // keys, TLS certificates). Connections stay open; a reload that fails
  // keeps the previous state and logs why.
  void Reload();

 protected:
  // Builds the role's parts and mounts its routes on router().
  virtual Status Open() = 0;
  // OK when the role can serve; otherwise what it waits for (/readyz).
  virtual Status Readiness() const = 0;
  // Stops the role's parts; runs after the listener has drained.
  virtual void Close() = 0;
  // One line for the log once listening ("ingest producing to ...").
  virtual std::string Describe() const = 0;

  const Config& config() const { return config_; }
  Metrics* metrics() { return &metrics_; }
  HttpRouter* router() { return &router_; }

 private:
  // Loads the API keys and installs the gate when auth.* is set.
  Status StartAuth();
  // SIGHUP's part for the keys: re-reads them; a failure keeps the old ones.
  void ReloadKeys();
  // Rereads the listener's certificate and key (if it speaks TLS).
  void ReloadTls();

  Config config_;
  std::string role_;
  Metrics metrics_;
  HttpRouter router_;
  std::unique_ptr<HttpAuth> auth_;  // always made (its metric); installed when keys are set
  bool auth_on_ = false;
  std::unique_ptr<HttpServer> server_;
  bool started_ = false;
};

}  // namespace catchall
