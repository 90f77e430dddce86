#include "node.h"

#include <spdlog/spdlog.h>

#include "engine/http_server.h"
#include "engine/runtime.h"
#include "node_common.h"

namespace catchall {

Node::Node(Config config, std::string role) : config_(std::move(config)), role_(std::move(role)) {}

Node::~Node() = default;

Status Node::Start(const std::string& port_file) {
  started_ = true;
  CATCHALL_RETURN_IF_ERROR(Open());
  MountRuntimeEndpoints(
      &router_, &metrics_, [this] { return Readiness(); }, role_);
  CATCHALL_RETURN_IF_ERROR(StartHttp(config_, &router_, &metrics_, port_file, &server_));
  spdlog::info("catchall {} listening on {} (port {}{}): {}", role_, config_.listen,
               server_->port(), server_->tls() ? ", TLS" : "", Describe());
  return Status::Ok();
}

void Node::Reload() {
  if (!started_) return;
  ReloadTls();
}

void Node::ReloadTls() {
  if (!server_ || !server_->tls()) return;
  Status s = server_->ReloadTls();
  if (s.ok()) {
    spdlog::info("catchall {}: reloaded the TLS certificate from {}", role_, config_.tls_cert_file);
  } else {
    spdlog::error("catchall {}: kept the previous TLS certificate: {}", role_, s.ToString());
  }
}

void Node::Shutdown() {
  if (!started_) return;
  started_ = false;
  if (server_) {
    server_->Shutdown(std::chrono::milliseconds(config_.shutdown_timeout_ms));
    server_.reset();
  }
  Close();
}

}  // namespace catchall
