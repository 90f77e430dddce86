// HttpServer: HTTP/1.1 keep-alive server (Boost.Beast) in front of an
// HttpRouter. It owns the sockets and enforces the limits at the edge:
// header and body size, read and idle timeouts, and a connection cap; every
// refusal is a JSON error. Threads: `threads` I/O threads run all sessions;
// responses may be produced on any thread. With a certificate and key it
// speaks HTTPS instead of HTTP on the same port (no plaintext fallback).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/http.h"
#include "engine/status.h"

namespace catchall {

class Metrics;
struct HttpServerImpl;

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8080;  // 0: pick a free port (see HttpServer::port())
  int threads = 1;
  size_t header_limit = 8 << 10;
  size_t body_limit = 16 << 20;
  // A new request's headers must arrive within this, and a keep-alive
  // connection may stay idle this long.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
  // Time allowed to receive a body and to send a response.
  std::chrono::milliseconds io_timeout{std::chrono::seconds(30)};
  size_t max_connections = 10000;
  // Request body bytes all connections may hold at once, counted as they
  // arrive and until the request is answered; a request whose declared
  // length does not fit beside them (before its body is read), or whose
  // body outgrows the room, is answered 503 server_busy. 0: no limit.
  size_t max_inflight_body_bytes = size_t{1} << 30;
  // PEM files; both set: the listener speaks TLS (1.2 or later) only.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpServer {
 public:
  // `router` must outlive the server. `metrics` may be null.
  HttpServer(HttpServerOptions options, const HttpRouter* router, Metrics* metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads the TLS certificate and key, binds and listens, and serves
  // nothing yet: connections wait in the backlog until Start. IoError with
  // the reason when the address cannot be bound; InvalidArgument (or
  // IoError) naming the file when the TLS certificate or key cannot be
  // loaded. A node binds before it opens its state and joins Kafka, so that
  // a busy port fails the start before anything else happens.
  Status Bind();
  // Binds (unless Bind did) and starts the I/O threads.
  Status Start();
  // The bound port (after Bind).
  uint16_t port() const;
  // True if the listener speaks TLS.
  bool tls() const;
  // Reads the TLS certificate and key files again: connections accepted
  // from now on use them, open ones keep theirs. On error (named file and
  // reason) the previous certificate stays in use. Ok without TLS.
  // Thread-safe.
  Status ReloadTls();
  // Stops accepting, lets requests in flight finish (their connections then
  // close), closes idle connections, and stops after at most `deadline`.
  void Shutdown(std::chrono::milliseconds deadline);

 private:
  std::shared_ptr<HttpServerImpl> impl_;
};

}  // namespace catchall
