// One keep-alive HTTP/1.1 client connection driven by callbacks.
//
// The owner fills head() (and body() for requests with a body), calls Send(),
// and hears back through its ConnectionHandler: OnResponse for every complete
// response, OnFailure for transport errors, and OnReady whenever the
// connection is connected and idle (after connecting, and after each
// response), which is the only time the owner may call Send() again.
// Requests are never pipelined: at most one is outstanding.
//
// The connection reconnects by itself after failures (with exponential
// backoff for connect errors) and after a "Connection: close" response. A
// request sent on a connection that sat idle for a while and that the server
// had meanwhile closed (EOF or reset before any byte of the answer) is sent
// again once on a new connection, as browsers and HTTP libraries do. Its
// buffers and its response parser are reused, so a steady request/response
// exchange does not allocate. Timeouts are checked by the owner calling
// CheckDeadline() periodically (cheaper than a timer per request).
//
// Over TLS (an https:// target) each connect is followed by a handshake; a
// failed handshake counts as a connect failure. The TLS stream is created
// per connection over the same socket, and the plain path does not touch it.
//
// Not thread-safe: every call, and every callback, happens on the thread
// running the io_context given at construction. The owner keeps the object
// alive until that io_context has stopped running.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bench/response_parser.h"
#include "bench/target.h"

namespace catchall::bench {

using Clock = std::chrono::steady_clock;

enum class TransportError : uint8_t {
  kConnect = 0,   // connection refused, unreachable, connect timeout
  kTimeout = 1,   // no complete response within the request timeout
  kClosed = 2,    // the peer closed or reset the connection mid-request
  kProtocol = 3,  // unparseable response
};
constexpr int kTransportErrorKinds = 4;
constexpr std::string_view TransportErrorName(TransportError e) {
  switch (e) {
    case TransportError::kConnect: return "connect";
    case TransportError::kTimeout: return "timeout";
    case TransportError::kClosed: return "closed";
    case TransportError::kProtocol: return "protocol";
  }
  return "unknown";
}

struct HttpResponseView {
  int status = 0;
  std::string_view body;
  uint32_t retry_after_s = 0;  // 0 when absent
};

class HttpConnection;

// Receives a connection's events. Implemented by the connection's owner.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  // Connected and idle: the owner may Send().
  virtual void OnReady(HttpConnection& conn) = 0;
  // A complete response to the outstanding request. OnReady follows when the
  // connection stays open; otherwise it reconnects first.
  virtual void OnResponse(HttpConnection& conn, const HttpResponseView& response) = 0;
  // A transport failure; `in_flight` says whether a request was outstanding
  // (its fate is then unknown). The connection reconnects afterwards.
  virtual void OnFailure(HttpConnection& conn, TransportError error, bool in_flight) = 0;
};

class HttpConnection {
 public:
  // `target` (its endpoint and TLS context) must outlive the connection.
  HttpConnection(boost::asio::io_context& ioc, const Target& target, ConnectionHandler* handler,
                 uint32_t id, Clock::duration timeout);
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  uint32_t id() const { return id_; }
  bool ready() const { return state_ == State::kReady; }
  bool busy() const {
    return state_ == State::kWriting || state_ == State::kReading || state_ == State::kDelayed;
  }

  // Starts connecting; OnReady follows.
  void Start();

  // The request to send next: the owner rewrites them before Send().
  std::string& head() { return head_; }
  std::string& body() { return body_; }

  // Sends head() + body() and reads the response.
  // REQUIRES: ready()
  void Send();
  // Sends after `delay` (retry backoff). REQUIRES: ready()
  void SendAfter(Clock::duration delay);

  // Fails the connection with kTimeout when the request (or the connect)
  // has been outstanding longer than the timeout.
  void CheckDeadline(Clock::time_point now);

  // Closes for good; pending operations end without callbacks.
  void Shutdown();

 private:
  enum class State : uint8_t {
    kIdle,
    kConnecting,
    kReady,
    kDelayed,
    kWriting,
    kReading,
    kBackoff,
    kStopped
  };

  void Connect();
  void OnConnect(const boost::system::error_code& ec);
  void OnHandshake(const boost::system::error_code& ec);
  // Connected (and handshaken): sends the pending resend, or reports ready.
  void OnTransportReady();
  void DoWrite();
  void DoRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  void Parse();
  void Complete();
  void Fail(TransportError error);
  // Replaces a connection the server closed while it sat idle and resends
  // the request; false when the failure is not that.
  bool ResendIfStale();
  void Reconnect(Clock::duration delay);

  boost::asio::ip::tcp::socket socket_;
  const Target& target_;
  // Over TLS: the session on socket_, made anew for each connection (in
  // Connect, when no operation is pending on the old one).
  std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
  boost::asio::steady_timer timer_;
  ConnectionHandler* handler_;
  const uint32_t id_;
  const Clock::duration timeout_;
  State state_ = State::kIdle;
  bool timed_out_ = false;
  bool resend_on_connect_ = false;  // a stale keep-alive connection is replaced
  bool resent_ = false;             // the current request was already resent once
  Clock::time_point last_used_{};   // when the last answer arrived
  Clock::time_point sent_at_{};     // when Send() was called
  Clock::time_point deadline_{};
  Clock::duration connect_backoff_{};
  std::string head_;
  std::string body_;
  boost::beast::flat_buffer read_buffer_;
  std::string response_body_;
  std::optional<ResponseParser> parser_;
};

}  // namespace catchall::bench
