#include "bench/http_connection.h"

#include <array>
#include <atomic>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <iostream>

namespace catchall::bench {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {
constexpr size_t kReadChunk = 64 << 10;
constexpr Clock::duration kMinConnectBackoff = std::chrono::milliseconds(10);
constexpr Clock::duration kMaxConnectBackoff = std::chrono::seconds(1);
// Idle longer than this, a connection may have been closed by the server.
constexpr Clock::duration kStaleAfter = std::chrono::seconds(1);
}  // namespace

HttpConnection::HttpConnection(net::io_context& ioc, const Target& target,
                               ConnectionHandler* handler, uint32_t id, Clock::duration timeout)
    : socket_(ioc), target_(target), timer_(ioc), handler_(handler), id_(id), timeout_(timeout) {
  head_.reserve(512);
}

void HttpConnection::Start() { Connect(); }

void HttpConnection::Connect() {
  state_ = State::kConnecting;
  timed_out_ = false;
  deadline_ = Clock::now() + timeout_;
  tls_.reset();
  socket_.async_connect(target_.endpoint,
                        [this](const boost::system::error_code& ec) { OnConnect(ec); });
}

void HttpConnection::OnConnect(const boost::system::error_code& ec) {
  if (state_ == State::kStopped) return;
  if (ec) {
    connect_backoff_ = std::clamp(connect_backoff_ * 2, kMinConnectBackoff, kMaxConnectBackoff);
    Fail(TransportError::kConnect);
    return;
  }
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  if (target_.tls_context) {
    tls_.emplace(socket_, *target_.tls_context);
    boost::system::error_code ip_ec;
    net::ip::make_address(target_.host, ip_ec);
    if (ip_ec) {
      // A name, not an address: send it (SNI) and check the certificate
      // is for it.
      // SSL_set_tlsext_host_name without its C cast.
      SSL_ctrl(tls_->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(target_.host.c_str()));
      SSL_set1_host(tls_->native_handle(), target_.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls_->native_handle()), target_.host.c_str());
    }
    tls_->async_handshake(net::ssl::stream_base::client,
                          [this](const boost::system::error_code& hec) { OnHandshake(hec); });
    return;
  }
  OnTransportReady();
}

void HttpConnection::OnHandshake(const boost::system::error_code& ec) {
  if (state_ == State::kStopped) return;
  if (ec) {
    // Counted as a connect error; the reason (an untrusted certificate,
    // plain HTTP on the port) is said once, or the run is a mystery.
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) {
      std::cerr << "catchall-bench: TLS handshake with " << target_.host_header
                << " failed: " << ec.message() << "\n";
    }
    connect_backoff_ = std::clamp(connect_backoff_ * 2, kMinConnectBackoff, kMaxConnectBackoff);
    Fail(TransportError::kConnect);
    return;
  }
  OnTransportReady();
}

void HttpConnection::OnTransportReady() {
  connect_backoff_ = Clock::duration::zero();
  last_used_ = Clock::now();
  if (resend_on_connect_) {
    resend_on_connect_ = false;
    state_ = State::kWriting;
    deadline_ = Clock::now() + timeout_;
    return DoWrite();
  }
  state_ = State::kReady;
  handler_->OnReady(*this);
}

void HttpConnection::Send() {
  resent_ = false;
  state_ = State::kWriting;
  timed_out_ = false;
  sent_at_ = Clock::now();
  deadline_ = sent_at_ + timeout_;
  DoWrite();
}

void HttpConnection::SendAfter(Clock::duration delay) {
  if (delay <= Clock::duration::zero()) return Send();
  state_ = State::kDelayed;
  timer_.expires_after(delay);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || state_ != State::kDelayed) return;
    Send();
  });
}

void HttpConnection::DoWrite() {
  const std::array<net::const_buffer, 2> buffers = {net::buffer(head_), net::buffer(body_)};
  auto on_written = [this](const boost::system::error_code& ec, size_t) {
    if (state_ == State::kStopped) return;
    if (ec) {
      if (ResendIfStale()) return;
      return Fail(timed_out_ ? TransportError::kTimeout : TransportError::kClosed);
    }
    state_ = State::kReading;
    parser_.emplace(&response_body_);
    if (read_buffer_.size() > 0) return Parse();
    DoRead();
  };
  if (tls_) {
    net::async_write(*tls_, buffers, std::move(on_written));
  } else {
    net::async_write(socket_, buffers, std::move(on_written));
  }
}

void HttpConnection::DoRead() {
  auto on_read = [this](const boost::system::error_code& ec, size_t n) { OnRead(ec, n); };
  if (tls_) {
    tls_->async_read_some(read_buffer_.prepare(kReadChunk), std::move(on_read));
  } else {
    socket_.async_read_some(read_buffer_.prepare(kReadChunk), std::move(on_read));
  }
}

void HttpConnection::OnRead(const boost::system::error_code& ec, size_t n) {
  if (state_ == State::kStopped) return;
  if (ec) {
    // A TLS server that closes without close_notify ends the body the same.
    const bool eof = ec == net::error::eof || ec == net::ssl::error::stream_truncated;
    if (eof && parser_->got_some() && parser_->need_eof()) {
      boost::beast::error_code eof_ec;
      parser_->put_eof(eof_ec);
      if (!eof_ec && parser_->is_done()) return Complete();
    }
    if (!parser_->got_some() && read_buffer_.size() == 0 && ResendIfStale()) return;
    return Fail(timed_out_ ? TransportError::kTimeout : TransportError::kClosed);
  }
  read_buffer_.commit(n);
  Parse();
}

void HttpConnection::Parse() {
  for (;;) {
    boost::beast::error_code ec;
    const size_t used = parser_->put(read_buffer_.data(), ec);
    read_buffer_.consume(used);
    if (ec == http::error::need_more) return DoRead();
    if (ec) return Fail(TransportError::kProtocol);
    if (parser_->is_done()) return Complete();
    if (read_buffer_.size() == 0 || used == 0) return DoRead();
  }
}

bool HttpConnection::ResendIfStale() {
  if (timed_out_ || resent_ || sent_at_ - last_used_ < kStaleAfter) return false;
  resent_ = true;
  resend_on_connect_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  read_buffer_.clear();
  parser_.reset();
  Connect();
  return true;
}

void HttpConnection::Complete() {
  last_used_ = Clock::now();
  const bool keep_alive = parser_->keep_alive();
  HttpResponseView view;
  view.status = parser_->status();
  view.body = response_body_;
  view.retry_after_s = parser_->retry_after_s();
  state_ = State::kReady;
  handler_->OnResponse(*this, view);
  if (state_ == State::kStopped) return;
  if (!keep_alive) {
    boost::system::error_code ignored;
    socket_.close(ignored);
    read_buffer_.clear();
    return Connect();
  }
  handler_->OnReady(*this);
}

void HttpConnection::Fail(TransportError error) {
  // A failed reconnect for a resend fails the request it carried.
  const bool in_flight =
      state_ == State::kWriting || state_ == State::kReading || resend_on_connect_;
  resend_on_connect_ = false;
  boost::system::error_code ignored;
  socket_.close(ignored);
  read_buffer_.clear();
  parser_.reset();
  state_ = State::kBackoff;
  handler_->OnFailure(*this, error, in_flight);
  if (state_ == State::kStopped) return;
  Reconnect(error == TransportError::kConnect ? connect_backoff_ : Clock::duration::zero());
}

void HttpConnection::Reconnect(Clock::duration delay) {
  if (delay <= Clock::duration::zero()) return Connect();
  state_ = State::kBackoff;
  timer_.expires_after(delay);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || state_ != State::kBackoff) return;
    Connect();
  });
}

void HttpConnection::CheckDeadline(Clock::time_point now) {
  const bool waiting =
      state_ == State::kConnecting || state_ == State::kWriting || state_ == State::kReading;
  if (waiting && now > deadline_ && !timed_out_) {
    timed_out_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);  // the pending operation completes with an error
  }
}

void HttpConnection::Shutdown() {
  state_ = State::kStopped;
  boost::system::error_code ignored;
  socket_.close(ignored);
  timer_.cancel();
}

}  // namespace catchall::bench
