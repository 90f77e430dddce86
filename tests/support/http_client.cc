#include "support/http_client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

namespace catchall::testing {
namespace {

// Beast's timeouts only cover asynchronous operations; these synchronous
// tests bound every socket call with kernel timeouts instead.
void SetSocketTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

}  // namespace

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct HttpClient::Impl {
  uint16_t port;
  std::chrono::milliseconds timeout;
  bool retry_closed = true;
  net::io_context ioc;
  std::unique_ptr<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  bool Connect() {
    stream = std::make_unique<beast::tcp_stream>(ioc);
    stream->expires_after(timeout);
    beast::error_code ec;
    stream->connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
    buffer.clear();
    if (ec) {
      stream.reset();
      return false;
    }
    SetSocketTimeouts(stream->socket().native_handle(), timeout);
    return true;
  }

  HttpResult Once(std::string_view method, std::string_view target, std::string_view body,
                  const std::map<std::string, std::string>& headers, bool* retryable) {
    *retryable = false;
    HttpResult result;
    if (!stream && !Connect()) {
      result.body = "connect failed";
      return result;
    }
    http::request<http::string_body> req;
    req.method_string(beast::string_view(method.data(), method.size()));
    req.target(beast::string_view(target.data(), target.size()));
    req.version(11);
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == "POST" || method == "PUT") req.body() = std::string(body);
    req.prepare_payload();
    stream->expires_after(timeout);
    beast::error_code ec;
    // A signal that interrupts a blocking call (this process starts and
    // reaps other processes) is not an answer of the server: carry on.
    http::request_serializer<http::string_body> serializer(req);
    do {
      http::write(*stream, serializer, ec);
    } while (ec == net::error::interrupted);
    if (ec) {
      stream.reset();
      *retryable = true;
      result.body = "write failed: " + ec.message();
      return result;
    }
    result.sent = std::chrono::steady_clock::now();
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ULL << 30);
    if (method == "HEAD") parser.skip(true);
    do {
      http::read(*stream, buffer, parser, ec);
    } while (ec == net::error::interrupted);
    if (ec) {
      stream.reset();
      // A keep-alive connection the server closed between requests.
      *retryable = ec == http::error::end_of_stream || ec == net::error::connection_reset ||
                   ec == net::error::eof;
      result.body = "read failed: " + ec.message();
      return result;
    }
    auto& res = parser.get();
    result.status = static_cast<int>(res.result_int());
    result.body = res.body();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      result.headers[name] = std::string(f.value());
    }
    if (!res.keep_alive()) stream.reset();
    return result;
  }
};

HttpClient::HttpClient(uint16_t port, std::chrono::milliseconds timeout, bool retry_closed)
    : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->timeout = timeout;
  impl_->retry_closed = retry_closed;
}

HttpClient::~HttpClient() = default;

HttpResult HttpClient::Request(std::string_view method, std::string_view target,
                               std::string_view body,
                               const std::map<std::string, std::string>& headers) {
  bool reused = impl_->stream != nullptr;
  bool retryable = false;
  HttpResult r = impl_->Once(method, target, body, headers, &retryable);
  // Only a request on a reused connection that the server had already
  // closed is retried; it was never processed.
  if (r.status == 0 && retryable && reused && impl_->retry_closed) {
    r = impl_->Once(method, target, body, headers, &retryable);
  }
  return r;
}

std::string RawExchange(uint16_t port, std::string_view bytes, std::chrono::milliseconds wait,
                        bool* closed_by_server) {
  if (closed_by_server) *closed_by_server = false;
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(wait);
  beast::error_code ec;
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return {};
  SetSocketTimeouts(stream.socket().native_handle(), wait);
  net::write(stream.socket(), net::buffer(bytes.data(), bytes.size()), ec);
  std::string out;
  char buf[4096];
  auto until = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < until) {
    size_t n = stream.socket().read_some(net::buffer(buf), ec);
    out.append(buf, n);
    if (ec == net::error::interrupted) continue;
    if (ec) {
      if (closed_by_server) {
        *closed_by_server = ec == net::error::eof || ec == net::error::connection_reset;
      }
      break;
    }
  }
  return out;
}

}  // namespace catchall::testing
