#include "support/http_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

namespace catchall::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// Every operation is asynchronous, bounded by the stream's expiry, and run
// to completion on the caller's thread. (Asio's synchronous socket calls
// ignore SO_RCVTIMEO: they poll without a timeout after EAGAIN, so a server
// that never answered hung the test.)
void RunUntilDone(net::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

tcp::endpoint Loopback(uint16_t port) { return {net::ip::make_address("127.0.0.1"), port}; }

}  // namespace

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
    beast::error_code ec = net::error::would_block;
    stream->async_connect(Loopback(port), [&ec](beast::error_code e) { ec = e; });
    RunUntilDone(ioc);
    buffer.clear();
    if (ec) {
      stream.reset();
      return false;
    }
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
    beast::error_code ec = net::error::would_block;
    http::async_write(*stream, req, [&ec](beast::error_code e, size_t) { ec = e; });
    RunUntilDone(ioc);
    if (ec) {
      stream.reset();
      *retryable = ec != beast::error::timeout;
      result.body = "write failed: " + ec.message();
      return result;
    }
    result.sent = std::chrono::steady_clock::now();
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ULL << 30);
    if (method == "HEAD") parser.skip(true);
    stream->expires_after(timeout);
    ec = net::error::would_block;
    http::async_read(*stream, buffer, parser, [&ec](beast::error_code e, size_t) { ec = e; });
    RunUntilDone(ioc);
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

size_t CountOf(std::string_view text, std::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string RawExchange(uint16_t port, std::string_view bytes, std::chrono::milliseconds wait,
                        bool* closed_by_server) {
  if (closed_by_server) *closed_by_server = false;
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(wait);  // one deadline for the whole exchange
  beast::error_code ec = net::error::would_block;
  stream.async_connect(Loopback(port), [&ec](beast::error_code e) { ec = e; });
  RunUntilDone(ioc);
  if (ec) return {};
  ec = net::error::would_block;
  net::async_write(stream, net::buffer(bytes.data(), bytes.size()),
                   [&ec](beast::error_code e, size_t) { ec = e; });
  RunUntilDone(ioc);
  std::string out;
  char buf[4096];
  while (!ec) {
    size_t n = 0;
    ec = net::error::would_block;
    stream.async_read_some(net::buffer(buf), [&](beast::error_code e, size_t got) {
      ec = e;
      n = got;
    });
    RunUntilDone(ioc);
    out.append(buf, n);
  }
  if (closed_by_server) {
    *closed_by_server = ec == net::error::eof || ec == net::error::connection_reset;
  }
  return out;
}

int ConnectIdle(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace catchall::testing
