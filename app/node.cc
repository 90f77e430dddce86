#include "node.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "engine/api_keys.h"
#include "engine/http_auth.h"
#include "engine/http_server.h"
#include "engine/runtime.h"
#include "node_common.h"

namespace catchall {

Node::Node(Config config, std::string role) : config_(std::move(config)), role_(std::move(role)) {}

Node::~Node() = default;

Status Node::Start(const std::string& port_file) {
  started_ = true;
  // Keys first: a bad key file fails the start before anything is opened.
  CATCHALL_RETURN_IF_ERROR(StartAuth());
  // The port before anything else: a second process started by mistake on
  // a busy port opened a data dir, and an aggregator joined the group and
  // fenced the running one's transactional id, before it failed with
  // "cannot listen" (a review, thirteenth session). Connections wait in
  // the backlog until the node serves.
  CATCHALL_RETURN_IF_ERROR(BindHttp(config_, &router_, &metrics_, &server_));
  CATCHALL_RETURN_IF_ERROR(Open());
  MountRuntimeEndpoints(
      &router_, &metrics_, [this] { return Readiness(); }, role_);
  CATCHALL_RETURN_IF_ERROR(ServeHttp(server_.get(), port_file));
  spdlog::info("catchall {} listening on {} (port {}{}): {}", role_, config_.listen,
               server_->port(), server_->tls() ? ", TLS" : "", Describe());
  return Status::Ok();
}

Status Node::StartAuth() {
  auth_ = std::make_unique<HttpAuth>(metrics_);
  auth_on_ = !config_.auth_keys_file.empty() || !config_.auth_keys.empty();
  if (!auth_on_) {
    spdlog::info("catchall {}: auth is off (no auth.keys_file or auth.keys): every path is open",
                 role_);
    return Status::Ok();
  }
  Result<ApiKeys> keys = LoadApiKeys(config_.auth_keys_file, config_.auth_keys);
  if (!keys.ok()) {
    return Status::InvalidArgument(
        fmt::format("cannot load the API keys: {}", keys.status().message()));
  }
  auth_->SetKeys(std::move(*keys));
  auth_->Install(&router_);
  spdlog::info("catchall {}: auth is on, {} API key(s) loaded", role_, auth_->KeyCount());
  return Status::Ok();
}

void Node::Reload() {
  if (!started_) return;
  ReloadKeys();
  ReloadTls();
}

void Node::ReloadKeys() {
  // Turning auth on or off changes the router, which serves requests on
  // other threads: that takes a restart. The key set itself is swapped whole.
  if (!auth_on_) {
    spdlog::info(
        "catchall {}: auth is off (set auth.keys_file and restart to turn it on): "
        "no API keys to reload",
        role_);
    return;
  }
  Result<ApiKeys> keys = LoadApiKeys(config_.auth_keys_file, config_.auth_keys);
  if (!keys.ok()) {
    spdlog::error("catchall {}: API keys not reloaded, the {} loaded before stay in use: {}", role_,
                  auth_->KeyCount(), keys.status().message());
    return;
  }
  auth_->SetKeys(std::move(*keys));
  spdlog::info("catchall {}: reloaded {} API key(s)", role_, auth_->KeyCount());
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
