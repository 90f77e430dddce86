// HttpClient: a small synchronous HTTP/1.1 keep-alive client (Boost.Beast)
// for tests. It reconnects when the server closed the connection. A
// transport failure is reported as status 0 with the error in `body`.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace catchall::testing {

struct HttpResult {
  int status = 0;  // 0: no response (connection failed or closed)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class HttpClient {
 public:
  explicit HttpClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(30));
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
// server closes it or `wait` passes.
std::string RawExchange(uint16_t port, std::string_view bytes, std::chrono::milliseconds wait);

}  // namespace catchall::testing
