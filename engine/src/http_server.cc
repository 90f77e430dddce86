#include "engine/http_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/io_round.h"
#include "engine/this_thread.h"
#include "http_probe.h"
#include "http_wire.h"
#include "tls_context.h"

namespace catchall {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class SessionBase;

// Responses produced on another thread reach a session's I/O thread through
// one of these per io_context. The log writer answers a whole group commit
// of PUTs at once; one post then wakes the I/O thread for all of them,
// instead of one post (a lock on the io_context's queue, an allocation, a
// wake-up) per response.
struct Completions {
  // Each answer with the session it is for.
  using Answers = std::vector<std::pair<std::shared_ptr<SessionBase>, HttpResponse>>;
  std::mutex mu;
  // Answers waiting for the I/O thread, in the order they were produced.
  Answers ready;           // GUARDED_BY(mu)
  bool scheduled = false;  // a RunCompletions is posted; GUARDED_BY(mu)
  // Set once the I/O threads are gone for good: responses produced later are
  // dropped instead of being posted to an io_context that will never run
  // them (which would keep the session, and through it the server, alive).
  bool closed = false;  // GUARDED_BY(mu)
  // The batch being answered; touched by the context's own thread only. It
  // keeps its capacity from one batch to the next.
  Answers running;
};

// Each I/O thread runs its own io_context and owns the sessions accepted
// onto it, so a session's handlers never run concurrently and need no
// strand; executors are concrete types (no type-erased executor copies on
// every operation). This is the model of Beast's fast server examples.
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using PlainStream = beast::basic_stream<tcp, Executor>;
using TlsStream = beast::ssl_stream<PlainStream>;
using Timer = net::basic_waitable_timer<std::chrono::steady_clock,
                                        net::wait_traits<std::chrono::steady_clock>, Executor>;

// How long accepting pauses after an accept failed (HttpServerImpl::OnAcceptFailed).
constexpr std::chrono::milliseconds kAcceptPause{100};

// The end-of-round tasks of one I/O thread (engine/io_round.h). Touched by
// that thread only, or by the thread stopping the server once it is gone.
struct Round {
  explicit Round(net::io_context* c) : context(c) {}
  net::io_context* context;
  std::vector<RoundTask*> tasks;  // each once, in the order first deferred
  std::vector<RoundTask*> running;
  bool posted = false;

  void Run() {
    posted = false;
    std::swap(running, tasks);
    for (RoundTask* task : running) task->RunAtEndOfRound();
    running.clear();
  }
};

// The Round of the I/O thread this is, if it is one.
thread_local Round* current_round = nullptr;

struct HttpServerImpl : std::enable_shared_from_this<HttpServerImpl> {
  HttpServerOptions options;
  const HttpRouter* router;
  Metrics* metrics = nullptr;
  // Made by Start, not before: its route labels are the router's routes,
  // which a node mounts between Bind and Start.
  std::unique_ptr<HttpProbe> probe;
  std::vector<std::unique_ptr<net::io_context>> contexts;  // one per I/O thread
  std::vector<std::unique_ptr<Completions>> completions;   // one per context
  std::vector<std::unique_ptr<Round>> rounds;              // one per context
  std::vector<net::executor_work_guard<Executor>> work;
  std::atomic<size_t> next_context{0};
  std::optional<tcp::acceptor> acceptor;  // on the first context
  // Paces accepting again after a failed accept (acceptor's context only).
  std::optional<Timer> accept_pause;
  // Failed accepts not yet logged, and when the last warning was (acceptor's
  // context only): at most one warning a second.
  uint64_t accept_failures_unlogged = 0;
  std::chrono::steady_clock::time_point accept_failure_logged{};
  // A descriptor held in reserve (/dev/null, taken at Bind), given up for a
  // moment to answer a queued client when none is left (ShedOneQueued).
  int spare_fd = -1;
  // What such a client is sent (plain HTTP only).
  std::string out_of_descriptors;
  // Null when the server speaks plain HTTP. Set before Start, so reading the
  // pointer needs no lock (the context it hands out does, see TlsContext).
  std::unique_ptr<TlsContext> tls;
  std::vector<std::thread> threads;
  std::atomic<bool> draining{false};
  std::atomic<size_t> connections{0};
  // Bytes of request bodies the sessions hold (options.max_inflight_body_bytes).
  std::atomic<size_t> body_bytes{0};

  // Whether `bytes` more of bodies would fit beside `held` (nothing counted).
  bool BodyRoomFor(size_t bytes, size_t held) const {
    const size_t limit = options.max_inflight_body_bytes;
    return limit == 0 || bytes <= limit - std::min(held, limit);
  }
  bool BodyRoomFor(size_t bytes) const {
    return BodyRoomFor(bytes, body_bytes.load(std::memory_order_relaxed));
  }
  // Counts `bytes` of a body (with no limit too, for the gauge); false
  // (nothing counted) if that would pass the limit.
  bool ReserveBody(size_t bytes) {
    size_t held = body_bytes.load(std::memory_order_relaxed);
    do {
      if (!BodyRoomFor(bytes, held)) return false;
    } while (!body_bytes.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
    if (probe) probe->AddBodyBytes(bytes);
    return true;
  }
  void ReleaseBody(size_t bytes) {
    body_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    if (probe) probe->SubtractBodyBytes(bytes);
  }
  uint16_t bound_port = 0;

  std::mutex sessions_mu;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;  // GUARDED_BY(sessions_mu)

  HttpServerImpl(HttpServerOptions o, const HttpRouter* r, Metrics* m)
      : options(std::move(o)), router(r), metrics(m) {
    int n = std::max(1, options.threads);
    for (int i = 0; i < n; ++i) {
      contexts.push_back(std::make_unique<net::io_context>(1));
      completions.push_back(std::make_unique<Completions>());
      rounds.push_back(std::make_unique<Round>(contexts.back().get()));
    }
    acceptor.emplace(*contexts[0]);
    accept_pause.emplace(contexts[0]->get_executor());
  }

  ~HttpServerImpl() {
    if (spare_fd >= 0) ::close(spare_fd);
  }
  HttpServerImpl(const HttpServerImpl&) = delete;
  HttpServerImpl& operator=(const HttpServerImpl&) = delete;

  net::io_context& NextContext() {
    return *contexts[next_context.fetch_add(1, std::memory_order_relaxed) % contexts.size()];
  }

  void DoAccept();
  void OnAccept(beast::error_code ec, Socket socket);
  void OnAcceptFailed(const beast::error_code& ec);
  bool ShedOneQueued();
  // Takes the spare descriptor if it is not held (it may fail: no room).
  void TakeSpare() {
    if (spare_fd < 0) spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  // The index of the context a socket was accepted onto.
  size_t ContextOf(Socket& socket) const {
    for (size_t i = 0; i < contexts.size(); ++i) {
      if (&socket.get_executor().context() == contexts[i].get()) return i;
    }
    return 0;
  }

  // Queues a response produced on another thread for its session, whose
  // handlers run on context `index`.
  void Complete(size_t index, std::shared_ptr<SessionBase> session, HttpResponse&& response);
  // On context `index`'s thread: writes every queued response.
  void RunCompletions(size_t index);
  // After the I/O threads stopped: drops queued responses and refuses more.
  void CloseCompletions();

  // References to the open sessions. Taken under the lock but returned, so
  // that a session whose last reference is dropped is destroyed outside it
  // (its destructor takes the lock).
  std::vector<std::shared_ptr<SessionBase>> LiveSessions() {
    std::vector<std::shared_ptr<SessionBase>> live;
    std::lock_guard<std::mutex> lock(sessions_mu);
    for (auto& [raw, weak] : sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    return live;
  }
};

// What Shutdown needs of a session, whatever its stream. Virtual calls
// happen only when the server stops, never per request.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  virtual void CloseIfIdle() = 0;
  virtual void Abort() = 0;
  // On the session's thread: writes the answer to the request in progress.
  virtual void Respond(HttpResponse&& response) = 0;
};

// One connection: (TLS handshake,) reads a request, hands it to the router,
// writes the response, repeats while keep-alive. Its handlers run on its
// io_context's single thread. A template over the stream so that the plain
// HTTP path is the same code it was before TLS, with no indirection:
// Stream is PlainStream or TlsStream.
template <class Stream>
class Session final : public SessionBase {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  // `tls` is the context the connection keeps (null for PlainStream).
  Session(Socket&& socket, std::shared_ptr<HttpServerImpl> server,
          std::shared_ptr<net::ssl::context> tls = nullptr)
      : context_(server->ContextOf(socket)),
        server_(std::move(server)),
        tls_(std::move(tls)),
        stream_(MakeStream(std::move(socket), tls_.get())),
        timer_(stream_.get_executor()) {}

  ~Session() override {
    ReleaseBody();
    server_->connections.fetch_sub(1);
    if (server_->probe) server_->probe->OnConnectionClosed();
    std::lock_guard<std::mutex> lock(server_->sessions_mu);
    server_->sessions.erase(this);
  }

  void Start() {
    {
      std::lock_guard<std::mutex> lock(server_->sessions_mu);
      server_->sessions.emplace(this, weak_from_this());
    }
    net::dispatch(stream_.get_executor(),
                  [self = Self()] { self->Handshake([self] { self->DoReadHeader(); }); });
  }

  // Runs on the session's strand: closes the connection if it is between
  // requests. A request in progress finishes first, and so does one the
  // client had sent before the server began to drain: the read waiting for
  // a request is cancelled, not the socket shut, and OnReadError finishes
  // reading whatever had arrived (some of it may sit in a read that
  // completed but whose handler has not run yet, out of sight here).
  void CloseIfIdle() override {
    net::post(stream_.get_executor(), [self = Self()] {
      if (self->idle_ && !self->RequestPending()) {
        beast::error_code ec;
        self->Sock().cancel(ec);
      }
    });
  }

  // Cuts the connection, whatever it is doing.
  void Abort() override {
    net::post(stream_.get_executor(), [self = Self()] { self->Lowest().close(); });
  }

  void Respond(HttpResponse&& response) override { DoWrite(std::move(response)); }

  // Writes a canned error and closes (used when refusing a connection).
  void Refuse(HttpResponse response) {
    keep_alive_ = false;
    refused_ = true;
    version_ = 11;
    received_ = std::chrono::steady_clock::now();
    net::dispatch(stream_.get_executor(), [self = Self(), r = std::move(response)]() mutable {
      self->Handshake([self, r = std::move(r)]() mutable { self->DoWrite(std::move(r)); });
    });
  }

 private:
  static Stream MakeStream(Socket&& socket, net::ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(PlainStream(std::move(socket)), *tls);
    } else {
      return Stream(std::move(socket));
    }
  }

  std::shared_ptr<Session> Self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  PlainStream& Lowest() { return beast::get_lowest_layer(stream_); }
  Socket& Sock() { return Lowest().socket(); }

  // After a failed handshake: a client that spoke plain HTTP gets a plain
  // 400 saying why (what nginx does too), anything else a closed socket.
  void RefusePlainHttp(beast::error_code ec) {
    if (ec.category() != net::error::get_ssl_category() ||
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) != SSL_R_HTTP_REQUEST) {
      return Lowest().close();
    }
    static const std::string kBadRequest = [] {
      std::string body =
          R"({"code":"plain_http_to_https_port","message":"this port speaks HTTPS: use https://"})";
      return fmt::format(
          "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
          "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
          body.size(), body);
    }();
    Lowest().expires_after(server_->options.io_timeout);
    net::async_write(Lowest(), net::const_buffer(kBadRequest.data(), kBadRequest.size()),
                     [self = Self()](beast::error_code, std::size_t) {
                       beast::error_code ignored;
                       self->Sock().shutdown(tcp::socket::shutdown_send, ignored);
                       self->Lowest().close();
                     });
  }

  // Runs `then` once the connection can carry HTTP: at once for plain HTTP;
  // after a TLS handshake, which must finish within the io timeout. A failed
  // handshake (a plain HTTP request, an old protocol version, a client that
  // distrusts the certificate) is counted and closes the connection.
  template <class Then>
  void Handshake(Then&& then) {
    if constexpr (!kTls) {
      then();
    } else {
      // A connection over server.max_connections gets its 503 only over
      // TLS, but it must not keep its descriptor for the io timeout: silent
      // ones did, past the limit, until accepts failed for want of
      // descriptors (a probe: 600 of them with `ulimit -n 400`).
      Lowest().expires_after(refused_ ? std::min<std::chrono::milliseconds>(
                                            server_->options.io_timeout, kRefusedHandshake)
                                      : server_->options.io_timeout);
      stream_.async_handshake(
          net::ssl::stream_base::server,
          [self = Self(), then = std::forward<Then>(then)](beast::error_code ec) mutable {
            if (ec) {
              if (self->server_->probe) self->server_->probe->OnTlsHandshakeFailed();
              spdlog::debug("TLS handshake failed: {}", ec.message());
              return self->RefusePlainHttp(ec);
            }
            self->Lowest().expires_never();
            then();
          });
    }
  }

  // Drops CR and LF bytes at the front of the buffer; true if there were any.
  bool SkipEmptyLines() {
    bool skipped = false;
    while (buffer_.size() > 0) {
      char c = *static_cast<const char*>(buffer_.data().data());
      if (c != '\r' && c != '\n') break;
      buffer_.consume(1);
      skipped = true;
    }
    return skipped;
  }

  // True if bytes of a next request are here: buffered, or in the socket.
  bool RequestPending() {
    beast::error_code ec;
    return buffer_.size() > 0 || Sock().available(ec) > 0;
  }

  void DoReadHeader() {
    // Empty lines before a request line are ignored (RFC 9112, 2.2): some
    // clients end a body with an extra CRLF. (One that arrives later is
    // skipped by OnReadError.) Before the draining check: a stray CRLF is
    // no request.
    SkipEmptyLines();
    // Draining: no new request, except one the client sent before the
    // server began to drain (its bytes are here already).
    if (server_->draining.load() && !RequestPending()) return DoClose();
    // Until its headers say otherwise, an answer (408, 431, 400) belongs to
    // no route.
    route_ = kNoRoute;
    method_ = HttpMethod::kOther;
    received_ = std::chrono::steady_clock::now();
    head_ = false;
    parser_.emplace();
    LimitRequestParser(server_->options, &*parser_);
    header_bytes_ = 0;
    ReadHeader(received_);
  }

  // Reads (the rest of) a request's headers into parser_, counting the
  // bytes parsed in header_bytes_.
  void ReadHeader(std::chrono::steady_clock::time_point now) {
    idle_ = true;
    SetDeadline(Wait::kRead, server_->options.idle_timeout, now);
    parser_->eager(false);  // stop at the header's end, as async_read_header does
    ReadSomeHeader();
  }

  // One read's worth of header, read piece by piece rather than by
  // async_read_header: Beast applies its header limit to what each read
  // left unparsed, so fields that each end within a read passed it without
  // bound (a review sent 8 MB of fields under a limit of 8 KiB, all held
  // until the header's end). The parsed bytes are counted against the limit
  // as they come.
  void ReadSomeHeader() {
    http::async_read_some(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&Session::OnReadSomeHeader, Self()));
  }

  void OnReadSomeHeader(beast::error_code ec, std::size_t bytes) {
    header_bytes_ += bytes;
    if (!ec && header_bytes_ > server_->options.header_limit) ec = http::error::header_limit;
    if (!ec && !parser_->is_header_done()) return ReadSomeHeader();
    OnReadHeader(ec);
  }

  // What the connection's deadline, when it passes, cuts short: a read is
  // cancelled (and answered 408 if a request had begun; Beast's stream
  // timeout would close the socket, leaving no way to say so); a write
  // closes the connection.
  enum class Wait { kNone, kRead, kWrite };

  // One timer per connection, moved lazily: a request only moves
  // `deadline_` (one clock read); the timer, when it fires early, waits
  // again until the deadline. Scheduling and cancelling a timer for every
  // read and write (a heap update under the reactor's lock each, and more
  // clock reads) was ~5% of the I/O thread under single PUTs, by perf.
  void SetDeadline(Wait what, std::chrono::milliseconds timeout,
                   std::chrono::steady_clock::time_point now) {
    if (what == Wait::kRead) timed_out_ = false;
    waiting_for_ = what;
    deadline_ = now + timeout;
    ArmTimer();
  }

  void ArmTimer() {
    if (timer_armed_ && timer_.expiry() <= deadline_) return;  // fires first, waits on
    // Sooner than the pending wait (or none): that wait, if any, completes
    // as cancelled and does nothing.
    timer_armed_ = true;
    timer_.expires_at(deadline_);
    timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec) return;  // cancelled: re-armed sooner, or the connection closed
      if (auto base = weak.lock()) static_cast<Session*>(base.get())->OnTimer();
    });
  }

  void ClearDeadline() { waiting_for_ = Wait::kNone; }

  void OnTimer() {
    timer_armed_ = false;
    if (waiting_for_ == Wait::kNone) return;
    if (std::chrono::steady_clock::now() < deadline_) return ArmTimer();
    Wait what = std::exchange(waiting_for_, Wait::kNone);
    beast::error_code ignored;
    if (what == Wait::kRead) {
      timed_out_ = true;
      Sock().cancel(ignored);
    } else {
      // A client that stopped reading: nothing else would tell an operator
      // why its connections end (a probe).
      if (server_->probe) server_->probe->OnWriteTimedOut();
      Lowest().close();
    }
  }

  // Takes what the answer to `req` depends on from its parsed request
  // line: its target's escapes decoded, the version, whether it is a HEAD
  // (answered without a body), and the method and route it is counted
  // under. Once its headers are read, or refused.
  void TakeRequestLine(BeastRequest& req) {
    DecodeTargetEscapes(&req);
    version_ = req.version();
    head_ = req.method() == http::verb::head;
    method_ = MethodOf(req.method());
    std::string_view target =
        OriginForm(std::string_view(req.target().data(), req.target().size()));
    route_ = server_->router->RouteIndex(target.substr(0, target.find('?')));
  }

  void OnReadHeader(beast::error_code ec) {
    idle_ = false;
    ClearDeadline();
    if (ec) return OnReadError(ec);
    auto& req = parser_->get();
    TakeRequestLine(req);
    keep_alive_ = req.keep_alive();
    if (auto refusal = HeadersResponse(*parser_)) {
      keep_alive_ = false;  // the body is not read: where the next request begins is unknown
      return DoWrite(std::move(*refusal));
    }
    if (parser_->is_done()) return DoReadBody();  // no body: the router answers it whole
    // With a body to come, what the headers alone decide is answered before
    // any of it is read: an unknown path, a missing or refused API key. A
    // request without a key held its body in the server's budget until it
    // had all arrived (two keyless 1 MiB bodies made every keyed batch a
    // 503), and a key sent in a chunked trailer was taken (a probe). The
    // connection is closed: the unread body is dropped.
    HttpRequest headers_only = ToHttpRequest(req, std::chrono::steady_clock::now());
    if (head_) headers_only.method = HttpMethod::kGet;
    if (auto refusal = server_->router->Refusal(headers_only)) {
      keep_alive_ = false;
      return DoWrite(std::move(*refusal));
    }
    // A declared body that would not fit beside what is held now is refused
    // before any of it is read (a chunked one is checked as it arrives).
    if (!server_->BodyRoomFor(parser_->content_length().value_or(0))) return RefuseBusy();
    if (version_ == 11 && ExpectsContinue(req)) {
      // curl and others wait for this before sending a large body; never
      // sent to an HTTP/1.0 client, which must ignore the expectation (RFC
      // 9110, 10.1.1).
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return Write(kContinue, std::chrono::steady_clock::now(), [this](beast::error_code wec) {
        if (wec) return DoClose();
        DoReadBody();
      });
    }
    DoReadBody();
  }

  void DoReadBody() {
    // A request without a body (nearly every single-event PUT) is complete
    // with its headers: no read, no deadline, no round trip through the
    // io_context.
    if (parser_->is_done()) return OnRead({}, 0);
    SetDeadline(Wait::kRead, server_->options.io_timeout, std::chrono::steady_clock::now());
    ReadSomeBody();
  }

  // Reads the body piece by piece (what each read finds in the socket),
  // counting what it holds against the server's budget as it grows.
  void ReadSomeBody() {
    http::async_read_some(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&Session::OnReadSomeBody, Self()));
  }

  void OnReadSomeBody(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec) return OnRead(ec, 0);
    if (!ReserveBody()) {
      ClearDeadline();
      return RefuseBusy();
    }
    if (parser_->is_done()) return OnRead({}, 0);
    ReadSomeBody();
  }

  void OnReadError(beast::error_code ec) {
    if (timed_out_ && ec == net::error::operation_aborted) ec = beast::error::timeout;
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        !parser_->is_header_done() && SkipEmptyLines()) {
      // The empty line of an earlier request came in a packet of its own,
      // and the read of this one began with it: read it again without.
      // The deadline stays where the first read put it: empty lines do not
      // keep a connection.
      parser_.emplace();
      LimitRequestParser(server_->options, &*parser_);
      header_bytes_ = 0;
      return ReadHeader(received_);
    }
    if (ec == net::error::operation_aborted && server_->draining.load() &&
        !parser_->is_header_done() && (parser_->got_some() || RequestPending())) {
      // CloseIfIdle cancelled the read, but a request had arrived: answer it.
      return ReadHeader(std::chrono::steady_clock::now());
    }
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::eof) {
      return DoClose();
    }
    keep_alive_ = false;
    if (ec == beast::error::timeout) {
      // An idle keep-alive connection just closes; a half-sent request
      // learns why.
      if (buffer_.size() == 0 && !parser_->got_some()) return DoClose();
      return DoWrite(
          HttpResponse::Error(408, "request_timeout", "the request did not arrive in time"));
    }
    const auto data = buffer_.data();
    const std::string_view unparsed(static_cast<const char*>(data.data()), data.size());
    const bool line_read = RequestLineRead(*parser_, unparsed, server_->options.header_limit);
    // The request line was parsed before its headers failed (a declared
    // body over the limit, headers too large): the answer is counted under
    // its route and method, not as "other" (a probe), and a HEAD's has no
    // body (a review).
    if (auto& req = parser_->get(); !req.target().empty()) TakeRequestLine(req);
    if (auto response = MalformedRequestResponse(server_->options, ec, line_read,
                                                 UnsupportedHttpVersion(unparsed))) {
      return DoWrite(std::move(*response));
    }
    DoClose();
  }

  void OnRead(beast::error_code ec, std::size_t /*bytes*/) {
    ClearDeadline();
    if (ec) return OnReadError(ec);
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    HttpRequest request = ToHttpRequest(req, std::chrono::steady_clock::now());
    method_ = request.method;
    // HEAD is GET without the body (RFC 9110, 9.3.2): the handler sees a GET
    // and DoWrite leaves the body out.
    if (head_) request.method = HttpMethod::kGet;
    route_ = server_->router->RouteIndex(request.path());
    received_ = request.received;
    Lowest().expires_never();
    server_->router->Handle(request, [self = Self()](HttpResponse&& response) {
      if (self->stream_.get_executor().running_in_this_thread()) {
        // Answered at once (a lookup, an error): written after OnRead
        // returns, from the thread's own queue, which takes no lock.
        net::post(self->stream_.get_executor(),
                  [self, r = std::move(response)]() mutable { self->DoWrite(std::move(r)); });
        return;
      }
      self->server_->Complete(self->context_, self, std::move(response));
    });
  }

  // Counts the body bytes received since the last call against the
  // server's budget: what is held in memory, not what was declared (Beast
  // reserves the declared length up front, but pages never written are
  // not memory, and counting them let clients that sent headers only
  // block every body for io_timeout). False if the budget has no room.
  bool ReserveBody() {
    const size_t held = parser_->get().body().size();
    if (held <= body_reserved_) return true;
    if (!server_->ReserveBody(held - body_reserved_)) return false;
    body_reserved_ = held;
    return true;
  }
  // 503 server_busy, and the connection closed (the rest of the body is
  // not read).
  void RefuseBusy() {
    keep_alive_ = false;
    if (server_->probe) server_->probe->OnBodyBudgetRefused();
    HttpResponse busy = HttpResponse::Error(
        503, "server_busy",
        fmt::format("the request bodies the server holds in memory are at its limit of {} "
                    "bytes (server.max_inflight_body_bytes); retry shortly",
                    server_->options.max_inflight_body_bytes));
    busy.headers.emplace_back("Retry-After", "1");
    DoWrite(std::move(busy));
  }
  // The body is done with once it is answered (the handler has read it).
  void ReleaseBody() {
    if (body_reserved_ == 0) return;
    server_->ReleaseBody(body_reserved_);
    body_reserved_ = 0;
  }

  void DoWrite(HttpResponse&& r) {
    ReleaseBody();
    auto now = std::chrono::steady_clock::now();
    if (server_->probe) server_->probe->OnRequest(route_, method_, r.status, now - received_);
    bool keep = keep_alive_ && !server_->draining.load();
    if (r.status == 204 && r.headers.empty() && version_ == 11) {
      // The answer to nearly every single-event PUT: a constant, written
      // without building a response object.
      static constexpr std::string_view kKeepAlive = "HTTP/1.1 204 No Content\r\n\r\n";
      static constexpr std::string_view kClose =
          "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
      return Write(keep ? kKeepAlive : kClose, now,
                   [this, keep](beast::error_code ec) { OnWrite(keep, ec); });
    }
    // A HEAD gets the headers the GET would get, Content-Length included,
    // and no body.
    RenderResponse(r, version_, keep, head_, &wire_);
    Write(wire_, now, [this, keep](beast::error_code ec) { OnWrite(keep, ec); });
  }

  // Every write to the client goes through here, under the write deadline
  // (`io_timeout`): a client that stops reading is cut off whatever was
  // being written, an interim 100 Continue as much as a response. `bytes`
  // must outlive the write; `then` runs on the connection's strand with
  // the session still alive.
  template <class Then>
  void Write(std::string_view bytes, std::chrono::steady_clock::time_point now, Then&& then) {
    SetDeadline(Wait::kWrite, server_->options.io_timeout, now);
    net::async_write(stream_, net::const_buffer(bytes.data(), bytes.size()),
                     [self = Self(), then = std::forward<Then>(then)](beast::error_code ec,
                                                                      std::size_t) mutable {
                       self->ClearDeadline();
                       then(ec);
                     });
  }

  void OnWrite(bool keep, beast::error_code ec) {
    ReleaseWrittenResponse(&wire_);
    if (ec) return DoClose();
    if (!keep) return DoClose();
    DoReadHeader();
  }

  void DoClose() {
    ClearDeadline();
    timer_.cancel();
    if constexpr (kTls) {
      // close_notify first, so that the client can tell the end of the
      // connection from a truncation attack. Without waiting for the
      // client's own close_notify (marked as received): an idle keep-alive
      // client does not read until its next request, and waiting for it
      // held every SIGTERM up by the timeout below (measured: 5 s with one
      // idle HTTPS client). nginx does not wait either.
      SSL_set_shutdown(stream_.native_handle(), SSL_RECEIVED_SHUTDOWN);
      Lowest().expires_after(std::min<std::chrono::milliseconds>(server_->options.io_timeout,
                                                                 std::chrono::seconds(5)));
      stream_.async_shutdown([self = Self()](beast::error_code ec) {
        // Bytes of the client still unread would reset the connection, as
        // over plain HTTP below; after close_notify they are records of no
        // use, read and dropped raw.
        if (!ec && self->ClientMaySendMore()) return self->LingerRaw();
        self->Lowest().close();
      });
    } else {
      beast::error_code ec;
      Sock().shutdown(tcp::socket::shutdown_send, ec);
      if (ClientMaySendMore()) {
        // Closing with bytes of the client's unread makes the kernel reset
        // the connection, and the reset destroys what we wrote that the
        // client has not read yet: the answer to a body we did not read
        // (a 503 server_busy, a 413), or, when requests were pipelined
        // behind the one that ended the connection (`Connection: close`,
        // a malformed one, a 505), the responses before it, 204s of
        // counted events among them (a probe lost 10-160 of 201 in most
        // runs). Read and drop what it sends until it closes, for at most
        // a couple of seconds, as nginx's lingering close does (RFC 9112,
        // 9.6).
        return LingerRaw();
      }
      stream_.close();
    }
  }

  // After our last byte: the sending side shut, what the client sends is
  // read and dropped until it closes, for at most a couple of seconds; for
  // a connection refused at the limit only briefly, as it holds the very
  // slot the refusal is about (a review: 2 s did).
  void LingerRaw() {
    beast::error_code ec;
    Sock().shutdown(tcp::socket::shutdown_send, ec);
    // A body refused from its headers (no key, an unknown path, no room)
    // may take its client longer than a couple of seconds to send, and many
    // clients read the answer only once they have sent it all: cut off at
    // 2 s, they saw a reset, not the 401 (a review). Its bytes are dropped
    // as they come, holding no memory, for at most the io timeout.
    const std::chrono::milliseconds most = refused_           ? kRefusedLinger
                                           : BodyLeftUnread() ? server_->options.io_timeout
                                                              : std::chrono::seconds(2);
    Lowest().expires_after(std::min<std::chrono::milliseconds>(server_->options.io_timeout, most));
    Linger();
  }
  static constexpr std::chrono::milliseconds kRefusedLinger{200};
  // Time a refused TLS client has to finish its handshake and get its 503:
  // a few round trips for a live client, far below the io timeout.
  static constexpr std::chrono::milliseconds kRefusedHandshake{1000};

  // Whether the client has sent, or may still be sending, bytes we did not
  // read: a body, or requests pipelined behind the last one answered
  // (stray empty lines after it are none). A connection refused at accept
  // (server.max_connections) always may: its 503 goes out before its
  // request arrives, and that request would reset the connection.
  bool ClientMaySendMore() {
    if (refused_) return true;
    SkipEmptyLines();
    return BodyLeftUnread() || RequestPending();
  }

  // The request's headers were read and its body was not (all of it).
  bool BodyLeftUnread() const {
    return parser_ && parser_->is_header_done() && !parser_->is_done();
  }

  void Linger() {
    // Dropped bytes: one buffer per thread serves every lingering session.
    static thread_local std::array<char, 16384> dropped;
    Lowest().async_read_some(
        net::buffer(dropped), [self = Self()](beast::error_code ec, std::size_t) {
          if (ec) return self->Lowest().close();  // the client closed, or the time is up
          self->Linger();
        });
  }

  const size_t context_;  // index of the io_context the handlers run on
  // Before stream_ and timer_, so destroyed after them: a session that
  // outlives the server's shutdown (a log still holding its responder) may
  // hold the last reference to the server, whose io_contexts the socket
  // and the timer need while they are destroyed.
  std::shared_ptr<HttpServerImpl> server_;
  std::shared_ptr<net::ssl::context> tls_;  // kept alive for stream_'s sake
  Stream stream_;
  Timer timer_;
  bool timer_armed_ = false;  // a wait on timer_ is pending
  Wait waiting_for_ = Wait::kNone;
  std::chrono::steady_clock::time_point deadline_{};
  bool timed_out_ = false;  // the deadline cancelled the read
  beast::flat_buffer buffer_;
  std::optional<BeastRequestParser> parser_;
  // Header bytes parser_ has taken so far (the request line and fields).
  size_t header_bytes_ = 0;
  size_t body_reserved_ = 0;  // of the server's body budget, by the request being read
  std::string wire_;          // the response being written (RenderResponse)
  bool head_ = false;         // the request being answered is a HEAD
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool refused_ = false;  // answered 503 at accept (Refuse)
  bool idle_ = false;
  // Route index of the request being answered, for the metrics; kNoRoute
  // (reported as "other") before its headers are read.
  static constexpr size_t kNoRoute = static_cast<size_t>(-1);
  HttpMethod method_ = HttpMethod::kOther;
  size_t route_ = kNoRoute;
  std::chrono::steady_clock::time_point received_{};
};

void HttpServerImpl::Complete(size_t index, std::shared_ptr<SessionBase> session,
                              HttpResponse&& response) {
  Completions& c = *completions[index];
  // The post happens under the lock, so that CloseCompletions cannot slip in
  // between the check and the post.
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.closed) return;
  c.ready.emplace_back(std::move(session), std::move(response));
  if (c.scheduled) return;
  c.scheduled = true;
  net::post(*contexts[index], [impl = shared_from_this(), index] { impl->RunCompletions(index); });
}

void HttpServerImpl::RunCompletions(size_t index) {
  Completions& c = *completions[index];
  {
    std::lock_guard<std::mutex> lock(c.mu);
    std::swap(c.running, c.ready);
    c.scheduled = false;
  }
  for (auto& [session, response] : c.running) session->Respond(std::move(response));
  c.running.clear();
}

void HttpServerImpl::CloseCompletions() {
  for (auto& c : completions) {
    Completions::Answers dropped;
    {
      std::lock_guard<std::mutex> lock(c->mu);
      c->closed = true;
      dropped.swap(c->ready);
    }
    // `dropped` releases its sessions here, outside the lock: the last
    // reference destroys a session, and its destructor takes other locks.
  }
}

void HttpServerImpl::DoAccept() {
  acceptor->async_accept(NextContext(),
                         beast::bind_front_handler(&HttpServerImpl::OnAccept, shared_from_this()));
}

template <class S>
void Admit(HttpServerImpl& server, size_t open, const std::shared_ptr<S>& session) {
  if (open > server.options.max_connections) {
    if (server.probe) server.probe->OnConnectionRejected();
    HttpResponse r = HttpResponse::Error(
        503, "too_many_connections",
        fmt::format("the server has {} connections open, its limit; retry shortly",
                    server.options.max_connections));
    r.headers.emplace_back("Retry-After", "1");
    session->Refuse(std::move(r));
  } else {
    session->Start();
  }
}

// A failed accept leaves the connection in the listen queue, so the socket
// stays readable and an accept at once fails again: out of file descriptors
// (EMFILE, past `ulimit -n`), this spun a core and wrote ~600,000 warnings
// a second (a probe with `ulimit -n 96` and 200 idle connections). Accepting
// resumes after a pause instead (what nginx does: accept_mutex_delay), the
// queued clients wait for a descriptor to be freed, and the warning comes at
// most once a second with how many failed.
void HttpServerImpl::OnAcceptFailed(const beast::error_code& ec) {
  if (probe) probe->OnAcceptFailed();
  if ((ec == net::error::no_descriptors || ec.value() == ENFILE) && ShedOneQueued()) {
    // One queued client answered; the next may be waiting too.
    DoAccept();
    return;
  }
  ++accept_failures_unlogged;
  const auto now = std::chrono::steady_clock::now();
  if (now - accept_failure_logged >= std::chrono::seconds(1)) {
    spdlog::warn(
        "accepting a connection failed ({} failures since the last warning): {}; pausing "
        "accepts for {} ms (raise the open file limit, `ulimit -n`, or lower "
        "server.max_connections)",
        accept_failures_unlogged, ec.message(), kAcceptPause.count());
    accept_failures_unlogged = 0;
    accept_failure_logged = now;
  }
  accept_pause->expires_after(kAcceptPause);
  accept_pause->async_wait([self = shared_from_this()](beast::error_code wait_ec) {
    if (wait_ec || !self->acceptor->is_open()) return;
    self->DoAccept();
  });
}

// Out of descriptors, a queued client waited until one was freed, which
// could be never: with `ulimit -n 20` the store held them all and no
// connection was ever answered (a probe). The spare descriptor is given up
// to accept one queued client, which is answered 503 too_many_connections
// (with TLS, where a handshake would need more, only closed), and taken
// back (libuv's trick). False when there is no spare or nobody queued: the
// caller then pauses.
bool HttpServerImpl::ShedOneQueued() {
  if (spare_fd < 0) return false;
  const int listener = acceptor->native_handle();
  pollfd queued{listener, POLLIN, 0};
  if (::poll(&queued, 1, 0) != 1) return false;  // accept4 must not block
  ::close(spare_fd);
  spare_fd = -1;
  const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0) {
    // The request, if it came: read, so that closing sends FIN, not a reset
    // that could discard the answer at the client. One read, not a loop: a
    // client that keeps sending must not hold the I/O thread.
    std::array<char, 16384> drain{};
    [[maybe_unused]] ssize_t read = ::recv(fd, drain.data(), drain.size(), MSG_DONTWAIT);
    if (!tls) {
      [[maybe_unused]] ssize_t sent = ::send(
          fd, out_of_descriptors.data(), out_of_descriptors.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    ::close(fd);
    if (probe) probe->OnConnectionRejected();
  }
  TakeSpare();
  return fd >= 0;
}

void HttpServerImpl::OnAccept(beast::error_code ec, Socket socket) {
  if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
  // Another thread (a compaction, librdkafka) may have taken the slot the
  // spare gave up: take one again once descriptors are free (a review).
  TakeSpare();
  if (ec == net::error::connection_aborted) {
    // The client gave up before it was accepted; the next one may be fine.
    DoAccept();
    return;
  }
  if (ec) {
    OnAcceptFailed(ec);
    return;
  }
  beast::error_code nodelay_ec;
  socket.set_option(tcp::no_delay(true), nodelay_ec);
  size_t now = connections.fetch_add(1) + 1;
  if (probe) probe->OnConnectionOpened();
  if (tls) {
    Admit(*this, now,
          std::make_shared<Session<TlsStream>>(std::move(socket), shared_from_this(),
                                               tls->Current()));
  } else {
    Admit(*this, now,
          std::make_shared<Session<PlainStream>>(std::move(socket), shared_from_this()));
  }
  DoAccept();
}

bool DeferToEndOfRound(RoundTask* task) {
  Round* round = current_round;
  if (!round) return false;
  if (std::find(round->tasks.begin(), round->tasks.end(), task) == round->tasks.end()) {
    round->tasks.push_back(task);
  }
  if (!round->posted) {
    round->posted = true;
    // Queued behind the handlers that are ready now.
    net::post(*round->context, [round] { round->Run(); });
  }
  return true;
}

HttpServer::HttpServer(HttpServerOptions options, const HttpRouter* router, Metrics* metrics)
    : impl_(std::make_shared<HttpServerImpl>(std::move(options), router, metrics)) {}

HttpServer::~HttpServer() { Shutdown(std::chrono::milliseconds(0)); }

Status HttpServer::Bind() {
  if (impl_->bound_port != 0) return Status::Ok();
  if (!impl_->options.tls_cert_file.empty() || !impl_->options.tls_key_file.empty()) {
    impl_->tls =
        std::make_unique<TlsContext>(impl_->options.tls_cert_file, impl_->options.tls_key_file);
    CATCHALL_RETURN_IF_ERROR(impl_->tls->Reload());
  }
  beast::error_code ec;
  auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec) {
    // A host name (`localhost:8080`): its first IPv4 address, else its
    // first, as the resolver (getaddrinfo, /etc/hosts first) orders them.
    net::io_context resolving;
    tcp::resolver resolver(resolving);
    auto found = resolver.resolve(impl_->options.host, "", ec);
    if (ec || found.empty()) {
      return Status::InvalidArgument(
          fmt::format("'{}' is neither an IP address nor a host name of this machine to listen "
                      "on{}",
                      impl_->options.host, ec ? ": " + ec.message() : ""));
    }
    // An IPv4 address first: `localhost` is often ::1 first in /etc/hosts,
    // and clients (a health check's 127.0.0.1) would find nobody there.
    address = found.begin()->endpoint().address();
    for (const auto& entry : found) {
      if (entry.endpoint().address().is_v4()) {
        address = entry.endpoint().address();
        break;
      }
    }
  }
  tcp::endpoint endpoint(address, impl_->options.port);
  auto& acceptor = *impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IoError(fmt::format("cannot listen on {}:{}: {}", impl_->options.host,
                                       impl_->options.port, ec.message()));
  }
  impl_->bound_port = acceptor.local_endpoint().port();
  // Taken now, before the node opens its store: with a tight open-file
  // limit, later may be too late.
  impl_->TakeSpare();
  HttpResponse shed = HttpResponse::Error(
      503, "too_many_connections",
      "the server is out of file descriptors (its open-file limit, ulimit -n); retry shortly");
  shed.headers.emplace_back("Retry-After", "1");
  RenderResponse(shed, 11, /*keep_alive=*/false, /*head=*/false, &impl_->out_of_descriptors);
  return Status::Ok();
}

Status HttpServer::Start() {
  CATCHALL_RETURN_IF_ERROR(Bind());
  if (impl_->metrics && !impl_->probe) {
    impl_->probe = std::make_unique<HttpProbe>(*impl_->metrics, impl_->router);
  }
  for (auto& c : impl_->contexts) impl_->work.push_back(net::make_work_guard(*c));
  impl_->DoAccept();
  for (size_t i = 0; i < impl_->contexts.size(); ++i) {
    impl_->threads.emplace_back([impl = impl_, i] {
      // "http-0", "http-1", ...: what an operator sees in `top -H`.
      NameThisThread(fmt::format("http-{}", i));
      current_round = impl->rounds[i].get();
      impl->contexts[i]->run();
      current_round = nullptr;
    });
  }
  return Status::Ok();
}

uint16_t HttpServer::port() const { return impl_->bound_port; }

bool HttpServer::tls() const { return impl_->tls != nullptr; }

Status HttpServer::ReloadTls() {
  if (!impl_->tls) return Status::Ok();
  return impl_->tls->Reload();
}

void HttpServer::Shutdown(std::chrono::milliseconds deadline) {
  if (impl_->threads.empty()) return;
  impl_->draining.store(true);
  net::post(impl_->acceptor->get_executor(), [impl = impl_] {
    beast::error_code ec;
    impl->acceptor->close(ec);
    impl->accept_pause->cancel();
  });
  for (auto& s : impl_->LiveSessions()) s->CloseIfIdle();
  auto until = std::chrono::steady_clock::now() + deadline;
  while (impl_->connections.load() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  impl_->work.clear();
  for (auto& c : impl_->contexts) c->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  // Connections still open after the deadline are cut, and their handlers
  // (which hold the server alive) are run to completion here.
  for (auto& s : impl_->LiveSessions()) s->Abort();
  impl_->CloseCompletions();
  // Run what is still queued (closed sockets complete at once) so that no
  // handler keeps a session alive.
  auto until_idle = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (auto& c : impl_->contexts) {
    c->restart();
    while (c->poll() > 0 && std::chrono::steady_clock::now() < until_idle) {
    }
    c->run_for(std::chrono::milliseconds(50));
  }
}

}  // namespace catchall
