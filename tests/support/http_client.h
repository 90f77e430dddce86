// HttpClient: a small synchronous HTTP/1.1 keep-alive client (Boost.Beast)
// for tests. It reconnects when the server closed the connection. Every
// connect, write and read gives up after `timeout`. A transport failure (or
// the timeout) is reported as status 0 with the error in `body`.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace catchall::testing {

struct HttpResult {
  int status = 0;  // 0: no response (connection failed or closed)
  // When the last byte of the request was written to the socket; unset if
  // it was not completely written. Over loopback the bytes are then in the
  // server's receive buffer.
  std::optional<std::chrono::steady_clock::time_point> sent;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class HttpClient {
 public:
  // With `retry_closed`, a request on a kept-alive connection that the
  // server closed without answering is sent once more on a new connection
  // (what HTTP clients do); without it, it is reported as status 0.
  explicit HttpClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(30),
                      bool retry_closed = true);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResult Request(std::string_view method, std::string_view target, std::string_view body = {},
                     const std::map<std::string, std::string>& headers = {});
  HttpResult Get(std::string_view target) { return Request("GET", target); }
  HttpResult Put(std::string_view target, const std::map<std::string, std::string>& headers = {}) {
    return Request("PUT", target, {}, headers);
  }
  HttpResult Post(std::string_view target, std::string_view body,
                  std::string_view content_type = "application/json") {
    return Request("POST", target, body, {{"Content-Type", std::string(content_type)}});
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sends raw bytes on a new connection and returns everything read until the
// server closes it or `wait` passes. *closed_by_server (if given) tells
// which: true if the server closed the connection (EOF or reset).
std::string RawExchange(uint16_t port, std::string_view bytes, std::chrono::milliseconds wait,
                        bool* closed_by_server = nullptr);

// A plain TCP connection to 127.0.0.1:`port` that has sent nothing yet (a
// file descriptor, for the caller to send on and close); -1 if the connect
// failed.
int ConnectIdle(uint16_t port);

// How many times `what` occurs in `text` (responses in a raw reply, lines
// in a log).
size_t CountOf(std::string_view text, std::string_view what);

}  // namespace catchall::testing
