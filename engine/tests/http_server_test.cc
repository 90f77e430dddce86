#include "engine/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/metrics.h"
#include "test_util.h"

namespace catchall {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Every client operation gives up after this, so a broken server fails the
// test instead of hanging it. Generous: the machine may be loaded.
constexpr auto kClientTimeout = 20s;

using Response = http::response<http::string_body>;
using Request = http::request<http::string_body>;

// A blocking HTTP/1.1 client over Beast. Operations run asynchronously on a
// private io_context so that each one has a timeout.
class Client {
 public:
  Client() : stream_(ioc_) {}

  beast::error_code Connect(uint16_t port) {
    beast::error_code result = net::error::would_block;
    stream_.expires_after(kClientTimeout);
    stream_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                          [&](beast::error_code ec) { result = ec; });
    Run();
    return result;
  }

  beast::error_code Send(Request& request) {
    request.prepare_payload();
    beast::error_code result = net::error::would_block;
    stream_.expires_after(kClientTimeout);
    http::async_write(stream_, request, [&](beast::error_code ec, size_t) { result = ec; });
    Run();
    return result;
  }

  beast::error_code WriteRaw(std::string_view bytes) {
    beast::error_code result = net::error::would_block;
    stream_.expires_after(kClientTimeout);
    net::async_write(stream_, net::buffer(bytes.data(), bytes.size()),
                     [&](beast::error_code ec, size_t) { result = ec; });
    Run();
    return result;
  }

  beast::error_code Read(Response* response) {
    *response = {};
    beast::error_code result = net::error::would_block;
    stream_.expires_after(kClientTimeout);
    http::async_read(stream_, buffer_, *response,
                     [&](beast::error_code ec, size_t) { result = ec; });
    Run();
    return result;
  }

  // Reads the response to a HEAD request: the headers only, whatever
  // Content-Length says.
  beast::error_code ReadHead(Response* response) {
    http::response_parser<http::string_body> parser;
    parser.skip(true);
    beast::error_code result = net::error::would_block;
    stream_.expires_after(kClientTimeout);
    http::async_read(stream_, buffer_, parser, [&](beast::error_code ec, size_t) { result = ec; });
    Run();
    *response = parser.release();
    return result;
  }

  // Sends `request` and reads the response; fails the test on I/O errors.
  Response RoundTrip(Request request) {
    Response response;
    beast::error_code ec = Send(request);
    EXPECT_FALSE(ec) << "send: " << ec.message();
    if (ec) return response;
    ec = Read(&response);
    EXPECT_FALSE(ec) << "read: " << ec.message();
    return response;
  }

  // Waits for the server to close the connection. True if it did (EOF or
  // reset) before the client's timeout; unexpected bytes count as not closed.
  bool WaitForClose() {
    char byte;
    beast::error_code result = net::error::would_block;
    size_t got = 0;
    stream_.expires_after(kClientTimeout);
    stream_.async_read_some(net::buffer(&byte, 1), [&](beast::error_code ec, size_t n) {
      result = ec;
      got = n;
    });
    Run();
    return got == 0 && buffer_.size() == 0 &&
           (result == net::error::eof || result == net::error::connection_reset);
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream& stream() { return stream_; }

 private:
  void Run() {
    ioc_.restart();
    ioc_.run();
  }

  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

Request Get(const std::string& target) {
  Request r{http::verb::get, target, 11};
  r.set(http::field::host, "127.0.0.1");
  return r;
}

Request Post(const std::string& target, std::string body) {
  Request r{http::verb::post, target, 11};
  r.set(http::field::host, "127.0.0.1");
  r.set(http::field::content_type, "application/x-ndjson");
  r.body() = std::move(body);
  return r;
}

std::string Field(const Response& r, http::field f) { return std::string(r[f]); }

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() {
    router_.Mount("/echo", [](const HttpRequest& request, const Responder& respond) {
      respond(HttpResponse::Text(
          200,
          std::string(HttpMethodName(request.method)) + " " + std::string(request.target) + " [" +
              std::string(request.body) + "] x-test=" + std::string(request.Header("x-test")),
          "text/plain"));
    });
    router_.Mount("/slow", [this](const HttpRequest&, Responder respond) {
      std::lock_guard<std::mutex> lock(mu_);
      slow_started_.set_value();
      responders_.emplace_back([respond = std::move(respond)]() mutable {
        std::this_thread::sleep_for(200ms);
        respond(HttpResponse::Text(200, "slow done", "text/plain"));
      });
    });
    router_.Mount("/later", [this](const HttpRequest& request, Responder respond) {
      std::lock_guard<std::mutex> lock(mu_);
      later_.emplace_back(std::string(request.target), std::move(respond));
      later_cv_.notify_all();
    });
    router_.Mount("/nocontent", [](const HttpRequest&, const Responder& respond) {
      respond(HttpResponse::NoContent());
    });
    router_.Mount("/never", [this](const HttpRequest&, Responder respond) {
      std::lock_guard<std::mutex> lock(mu_);
      never_started_.set_value();
      parked_.push_back(std::move(respond));
    });
  }

  ~HttpServerTest() override {
    if (server_) server_->Shutdown(5s);
    for (auto& t : responders_) t.join();
    parked_.clear();
    later_.clear();
    server_.reset();
  }

  HttpServerOptions DefaultOptions() {
    HttpServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    return options;
  }

  void Start(const HttpServerOptions& options, Metrics* metrics = nullptr) {
    server_ = std::make_unique<HttpServer>(options, &router_, metrics);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  std::unique_ptr<Client> Connect() {
    auto client = std::make_unique<Client>();
    beast::error_code ec = client->Connect(port_);
    EXPECT_FALSE(ec) << ec.message();
    return client;
  }

  // `request` on a fresh connection to a server whose header limit is
  // 1 KiB.
  Response RoundTripWithHeaderLimit1K(const Request& request) {
    HttpServerOptions options = DefaultOptions();
    options.header_limit = 1024;
    Start(options);
    return Connect()->RoundTrip(request);
  }

  static void ExpectJsonError(const Response& r, int status, std::string_view code) {
    EXPECT_EQ(r.result_int(), status) << r.body();
    EXPECT_EQ(Field(r, http::field::content_type), "application/json");
    EXPECT_TRUE(test::IsValidJson(r.body())) << r.body();
    EXPECT_EQ(test::JsonStringField(r.body(), "code"), code) << r.body();
    EXPECT_NE(test::JsonStringField(r.body(), "message"), "<missing>") << r.body();
  }

  HttpRouter router_;
  Metrics metrics_;  // outlives server_
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::promise<void> slow_started_;
  std::promise<void> never_started_;
  std::vector<std::thread> responders_;
  std::vector<Responder> parked_;
  std::condition_variable later_cv_;
  std::vector<std::pair<std::string, Responder>> later_;  // GUARDED_BY(mu_)
};

TEST_F(HttpServerTest, ServesRequestsOverOneKeepAliveConnection) {
  Start(DefaultOptions());
  auto client = Connect();
  Request first = Get("/echo/one?x=1");
  first.set("X-Test", "hello");
  Response r1 = client->RoundTrip(first);
  EXPECT_EQ(r1.result_int(), 200);
  EXPECT_EQ(r1.body(), "GET /echo/one?x=1 [] x-test=hello");
  EXPECT_EQ(Field(r1, http::field::content_type), "text/plain");
  EXPECT_TRUE(r1.keep_alive());

  Response r2 = client->RoundTrip(Post("/echo/two", "{\"a\":1}\n"));
  EXPECT_EQ(r2.result_int(), 200);
  EXPECT_EQ(r2.body(), "POST /echo/two [{\"a\":1}\n] x-test=");
  EXPECT_TRUE(r2.keep_alive());

  Response r3 = client->RoundTrip(Get("/echo/three"));
  EXPECT_EQ(r3.body(), "GET /echo/three [] x-test=");
}

// Found while writing docs/openapi.yaml: a HEAD was answered with a body,
// which a client reads as the start of the next response on the connection.
TEST_F(HttpServerTest, HeadIsAnsweredLikeGetWithoutTheBody) {
  Start(DefaultOptions());
  auto client = Connect();
  ASSERT_FALSE(
      client->WriteRaw("HEAD /echo/h HTTP/1.1\r\nHost: x\r\n\r\n"
                       "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /echo/g HTTP/1.1\r\nHost: x\r\n\r\n"));
  Response head;
  ASSERT_FALSE(client->ReadHead(&head));
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_EQ(Field(head, http::field::content_type), "text/plain");
  // The length of the GET's body: "GET /echo/h [] x-test=".
  EXPECT_EQ(Field(head, http::field::content_length), "22");
  Response head404;
  ASSERT_FALSE(client->ReadHead(&head404));
  EXPECT_EQ(head404.result_int(), 404);
  EXPECT_EQ(Field(head404, http::field::content_type), "application/json");
  Response get;
  ASSERT_FALSE(client->Read(&get));
  EXPECT_EQ(get.result_int(), 200);
  EXPECT_EQ(get.body(), "GET /echo/g [] x-test=");
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveIsClosedAfterTheResponse) {
  Start(DefaultOptions());
  auto client = Connect();
  ASSERT_FALSE(client->WriteRaw("GET /echo HTTP/1.0\r\n\r\n"));
  Response r;
  ASSERT_FALSE(client->Read(&r));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_FALSE(r.keep_alive());
  EXPECT_TRUE(client->WaitForClose());
}

TEST_F(HttpServerTest, ConnectionCloseRequestIsHonoured) {
  Start(DefaultOptions());
  auto client = Connect();
  Request req = Get("/echo");
  req.keep_alive(false);
  Response r = client->RoundTrip(req);
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_FALSE(r.keep_alive());
  EXPECT_TRUE(client->WaitForClose());
}

// Routes and handlers see the path with escaped unreserved characters
// decoded (RFC 3986, 6.2.2.2).
TEST_F(HttpServerTest, EscapedUnreservedCharactersAreRoutedAsTheCharacters) {
  Start(DefaultOptions());
  auto client = Connect();
  Response r = client->RoundTrip(Get("/%65ch%6F/a%2Fb?q=%65"));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), "GET /echo/a%2Fb?q=%65 [] x-test=");
}

TEST_F(HttpServerTest, UnknownPathIsJson404AndKeepsTheConnection) {
  Start(DefaultOptions());
  auto client = Connect();
  Response r = client->RoundTrip(Get("/nope/nothing"));
  ExpectJsonError(r, 404, "not_found");
  EXPECT_TRUE(r.keep_alive());
  EXPECT_EQ(client->RoundTrip(Get("/echo")).result_int(), 200);
}

TEST_F(HttpServerTest, BodyOverLimitIsJson413) {
  HttpServerOptions options = DefaultOptions();
  options.body_limit = 1024;
  Start(options);
  {
    auto client = Connect();
    Response ok = client->RoundTrip(Post("/echo", std::string(1024, 'a')));
    EXPECT_EQ(ok.result_int(), 200) << "exactly the limit is fine";
  }
  auto client = Connect();
  Response r = client->RoundTrip(Post("/echo", std::string(4096, 'a')));
  ExpectJsonError(r, 413, "body_too_large");
  EXPECT_THAT(test::JsonStringField(r.body(), "message"), HasSubstr("1024"));
  EXPECT_FALSE(r.keep_alive());
}

// Beast refuses a declared body over the limit while it reads the headers;
// the 413 was counted as route "other", method "OTHER" (a probe).
TEST_F(HttpServerTest, ABodyRefusedWithTheHeadersIsCountedUnderItsRouteAndMethod) {
  HttpServerOptions options = DefaultOptions();
  options.body_limit = 1024;
  Start(options, &metrics_);
  auto client = Connect();
  ExpectJsonError(client->RoundTrip(Post("/echo", std::string(4096, 'a'))), 413, "body_too_large");
  EXPECT_THAT(
      metrics_.Serialize(),
      HasSubstr("catchall_http_requests_total{code=\"413\",method=\"POST\",route=\"/echo\"} 1"));
}

TEST_F(HttpServerTest, ChunkedBodyOverLimitIsJson413) {
  HttpServerOptions options = DefaultOptions();
  options.body_limit = 1024;
  Start(options);
  auto client = Connect();
  std::string raw =
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "800\r\n" +
      std::string(0x800, 'b') + "\r\n0\r\n\r\n";
  ASSERT_FALSE(client->WriteRaw(raw));
  Response r;
  beast::error_code ec = client->Read(&r);
  ASSERT_FALSE(ec) << ec.message();
  ExpectJsonError(r, 413, "body_too_large");
}

TEST_F(HttpServerTest, HeadersOverLimitAreJson431) {
  Request req = Get("/echo");
  req.set("X-Big", std::string(4000, 'h'));
  Response r = RoundTripWithHeaderLimit1K(req);
  ExpectJsonError(r, 431, "headers_too_large");
  EXPECT_FALSE(r.keep_alive());
}

// Beast applies its limit to the request line and the fields apart, on
// what each read held: a block of 988 bytes in one piece was served with a
// limit of 512 (a black-box probe). The whole block counts.
TEST_F(HttpServerTest, AHeaderBlockOverTheLimitIs431HoweverItArrives) {
  HttpServerOptions options = DefaultOptions();
  options.header_limit = 512;
  Start(options);
  const std::string field(470, 'h');
  auto client = Connect();
  ASSERT_FALSE(client->WriteRaw("GET /echo HTTP/1.1\r\nHost: h\r\nX-A: " + field +
                                "\r\nX-B: " + field + "\r\n\r\n"));
  Response r;
  ASSERT_FALSE(client->Read(&r));
  ExpectJsonError(r, 431, "headers_too_large");
  EXPECT_FALSE(r.keep_alive());
  // Just under the limit is served.
  auto under = Connect();
  std::string request = "GET /echo HTTP/1.1\r\nHost: h\r\nX-A: ";
  request += std::string(512 - request.size() - 4, 'h') + "\r\n\r\n";
  ASSERT_EQ(request.size(), 512u);
  ASSERT_FALSE(under->WriteRaw(request));
  Response ok;
  ASSERT_FALSE(under->Read(&ok));
  EXPECT_EQ(ok.result_int(), 200);
}

// Beast checks its limit against what a read leaves unparsed: a review fed
// its parser fields that each end within a read, and it took 8 MB of them
// under a limit of 8 KiB. The server counts what the parser takes, so such
// a header is refused as it passes the limit, before it ends. (Through a
// socket the old server refused this one too: the reads did not split it
// the way the review's feed did.)
TEST_F(HttpServerTest, HeaderFieldsThatEachEndWithinAReadAreRefusedAtTheLimit) {
  HttpServerOptions options = DefaultOptions();
  options.idle_timeout = 2s;
  Start(options);
  auto client = Connect();
  ASSERT_FALSE(client->WriteRaw("GET /echo HTTP/1.1\r\nHost: h\r\nX"));
  const std::string value(1000, 'a');
  for (int i = 0; i < 20; ++i) {
    // Each write ends one byte into the next field's name.
    if (client->WriteRaw("-" + std::to_string(i) + ": " + value + "\r\nX")) break;
    std::this_thread::sleep_for(20ms);
  }
  Response r;
  ASSERT_FALSE(client->Read(&r));
  ExpectJsonError(r, 431, "headers_too_large");
}

// A HEAD refused for its headers is answered without a body (it had one).
TEST_F(HttpServerTest, AHeadRefusedForItsHeadersHasNoBody) {
  HttpServerOptions options = DefaultOptions();
  options.header_limit = 1024;
  Start(options);
  auto client = Connect();
  ASSERT_FALSE(client->WriteRaw(
      "HEAD /echo HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(2000, 'h') + "\r\n\r\n"));
  Response r;
  ASSERT_FALSE(client->ReadHead(&r));
  EXPECT_EQ(r.result_int(), 431);
  EXPECT_TRUE(client->WaitForClose()) << "bytes after the headers: a body";
}

TEST_F(HttpServerTest, ARequestLineOverTheHeaderLimitIsJson414) {
  Response r = RoundTripWithHeaderLimit1K(Get("/echo/" + std::string(4000, 'u')));
  ExpectJsonError(r, 414, "uri_too_long");
  EXPECT_FALSE(r.keep_alive());
}

// A short URL with headers over the limit is 431 whatever the first read
// held: Beast gives up parsing the request line when its first look does
// not hold all of it (a 600-byte line is more than a new connection's
// first 512-byte read), and a review found the 414 check misled by that.
TEST_F(HttpServerTest, AUrlUnderTheLimitWithHeadersOverItIs431) {
  Request req = Get("/echo/" + std::string(600, 'u'));
  req.set("X-Big", std::string(4000, 'h'));
  Response r = RoundTripWithHeaderLimit1K(req);
  ExpectJsonError(r, 431, "headers_too_large");
}

TEST_F(HttpServerTest, GarbageRequestIsJson400) {
  Start(DefaultOptions());
  for (const char* garbage : {"this is not http\r\n\r\n", "GET /echo HTTP/x.y\r\n\r\n",
                              "GET /echo HTTP/1.1\r\nBad Header Line\r\n\r\n",
                              "POST /echo HTTP/1.1\r\nContent-Length: nope\r\n\r\n"}) {
    SCOPED_TRACE(garbage);
    auto client = Connect();
    ASSERT_FALSE(client->WriteRaw(garbage));
    Response r;
    beast::error_code ec = client->Read(&r);
    ASSERT_FALSE(ec) << ec.message();
    ExpectJsonError(r, 400, "bad_request");
    EXPECT_TRUE(client->WaitForClose());
  }
}

// A version Beast does not take is said to be one (a black-box probe got
// "malformed HTTP request: bad version" for HTTP/1.2); the body names it.
TEST_F(HttpServerTest, AnUnsupportedHttpVersionIsJson505) {
  Start(DefaultOptions());
  for (std::string version : {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9"}) {
    SCOPED_TRACE(version);
    auto client = Connect();
    ASSERT_FALSE(client->WriteRaw("GET /echo " + version + "\r\nHost: h\r\n\r\n"));
    Response r;
    beast::error_code ec = client->Read(&r);
    ASSERT_FALSE(ec) << ec.message();
    ExpectJsonError(r, 505, "http_version_not_supported");
    EXPECT_THAT(r.body(), HasSubstr(version));
    EXPECT_TRUE(client->WaitForClose());
  }
}

TEST_F(HttpServerTest, IdleConnectionIsClosedAfterIdleTimeout) {
  HttpServerOptions options = DefaultOptions();
  options.idle_timeout = 200ms;
  Start(options);
  auto started = std::chrono::steady_clock::now();
  auto silent = Connect();
  EXPECT_TRUE(silent->WaitForClose());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 150ms);

  // Also between requests of a keep-alive connection.
  auto client = Connect();
  EXPECT_EQ(client->RoundTrip(Get("/echo")).result_int(), 200);
  EXPECT_TRUE(client->WaitForClose());
}

// A request whose headers do not arrive within idle_timeout learns why.
TEST_F(HttpServerTest, HalfSentRequestTimesOutWithJson408) {
  HttpServerOptions options = DefaultOptions();
  options.idle_timeout = 200ms;
  Start(options);
  auto client = Connect();
  ASSERT_FALSE(client->WriteRaw("GET /echo HTTP/1.1\r\nHost: x\r\n"));
  Response r;
  beast::error_code ec = client->Read(&r);
  ASSERT_FALSE(ec) << ec.message();
  ExpectJsonError(r, 408, "request_timeout");
  EXPECT_FALSE(r.keep_alive());
  EXPECT_TRUE(client->WaitForClose());
}

// The same for a body that stops arriving (io_timeout).
TEST_F(HttpServerTest, HalfSentBodyTimesOutWithJson408) {
  HttpServerOptions options = DefaultOptions();
  options.io_timeout = 200ms;
  Start(options);
  auto client = Connect();
  ASSERT_FALSE(client->WriteRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
  Response r;
  beast::error_code ec = client->Read(&r);
  ASSERT_FALSE(ec) << ec.message();
  ExpectJsonError(r, 408, "request_timeout");
}

TEST_F(HttpServerTest, ConnectionsOverTheLimitGetJson503) {
  HttpServerOptions options = DefaultOptions();
  options.max_connections = 2;
  Start(options, &metrics_);
  auto c1 = Connect();
  auto c2 = Connect();
  // A request on each makes sure the server has accepted both.
  EXPECT_EQ(c1->RoundTrip(Get("/echo")).result_int(), 200);
  EXPECT_EQ(c2->RoundTrip(Get("/echo")).result_int(), 200);

  auto c3 = Connect();
  Response refused;
  beast::error_code ec = c3->Read(&refused);
  ASSERT_FALSE(ec) << ec.message();
  ExpectJsonError(refused, 503, "too_many_connections");
  EXPECT_EQ(Field(refused, http::field::retry_after), "1");
  EXPECT_FALSE(refused.keep_alive());
  EXPECT_TRUE(c3->WaitForClose());
  EXPECT_THAT(metrics_.Serialize(), HasSubstr("catchall_http_connections_rejected_total 1"));

  // The two admitted connections still work.
  EXPECT_EQ(c1->RoundTrip(Get("/echo")).result_int(), 200);

  // Once one closes, a new connection is admitted (the server notices the
  // close asynchronously, so retry for a while).
  c2->Close();
  bool admitted = false;
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!admitted && std::chrono::steady_clock::now() < deadline) {
    auto c4 = Connect();
    Response r = c4->RoundTrip(Get("/echo"));
    admitted = r.result_int() == 200;
    if (!admitted) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(admitted);
}

// A connection refused at the limit is answered and let go within a
// moment, even when its client sent a request and keeps the connection
// open: lingering there as long as elsewhere (reading until the client
// closes, up to 2 s) held the very slot the refusal is about (a review).
TEST_F(HttpServerTest, AConnectionRefusedAtTheLimitIsNotHeldWhileItsClientWaits) {
  HttpServerOptions options = DefaultOptions();
  options.max_connections = 1;
  Start(options, &metrics_);
  auto admitted = Connect();
  EXPECT_EQ(admitted->RoundTrip(Get("/echo")).result_int(), 200);
  std::vector<std::unique_ptr<Client>> refused;
  for (int i = 0; i < 5; ++i) {
    refused.push_back(Connect());
    ASSERT_FALSE(refused.back()->WriteRaw("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  for (auto& c : refused) {
    Response r;
    ASSERT_FALSE(c->Read(&r));
    ExpectJsonError(r, 503, "too_many_connections");
  }
  // Every refused client still holds its end open.
  auto deadline = std::chrono::steady_clock::now() + 1s;
  while (metrics_.Serialize().find("\ncatchall_http_connections 1\n") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_THAT(metrics_.Serialize(), HasSubstr("\ncatchall_http_connections 1\n"));
}

TEST_F(HttpServerTest, ExpectContinueGetsA100ThenTheResponse) {
  Start(DefaultOptions());
  auto client = Connect();
  Request req = Post("/echo/continue", "hello");
  req.set(http::field::expect, "100-continue");
  req.prepare_payload();
  http::request_serializer<http::string_body> serializer(req);

  beast::error_code result = net::error::would_block;
  http::async_write_header(client->stream(), serializer,
                           [&](beast::error_code ec, size_t) { result = ec; });
  // Run the write through the client's context by reading the interim response.
  Response interim;
  beast::error_code ec = client->Read(&interim);
  ASSERT_FALSE(result) << result.message();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(interim.result_int(), 100);

  result = net::error::would_block;
  http::async_write(client->stream(), serializer,
                    [&](beast::error_code wec, size_t) { result = wec; });
  Response final_response;
  ec = client->Read(&final_response);
  ASSERT_FALSE(result) << result.message();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(final_response.result_int(), 200);
  EXPECT_EQ(final_response.body(), "POST /echo/continue [hello] x-test=");
}

// RFC 9112, 2.2: a server should ignore empty lines before a request line
// (some clients end a body with an extra CRLF).
TEST_F(HttpServerTest, EmptyLinesBetweenPipelinedRequestsAreIgnored) {
  Start(DefaultOptions());
  auto client = Connect();
  ASSERT_FALSE(
      client->WriteRaw("POST /echo/a HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab\r\n\r\n"
                       "GET /echo/b HTTP/1.1\r\nHost: t\r\n\r\n"));
  Response first;
  ASSERT_FALSE(client->Read(&first));
  EXPECT_EQ(first.body(), "POST /echo/a [ab] x-test=");
  Response second;
  ASSERT_FALSE(client->Read(&second));
  EXPECT_EQ(second.result_int(), 200);
  EXPECT_EQ(second.body(), "GET /echo/b [] x-test=");
}

// The same when the extra CRLF comes in a packet of its own, after the
// server has begun to read the next request.
TEST_F(HttpServerTest, AnEmptyLineArrivingAloneBeforeTheNextRequestIsIgnored) {
  Start(DefaultOptions());
  auto client = Connect();
  ASSERT_FALSE(client->WriteRaw("POST /echo/a HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab"));
  Response first;
  ASSERT_FALSE(client->Read(&first));
  EXPECT_EQ(first.body(), "POST /echo/a [ab] x-test=");
  ASSERT_FALSE(client->WriteRaw("\r\n"));
  std::this_thread::sleep_for(100ms);  // read on its own by the server
  ASSERT_FALSE(client->WriteRaw("GET /echo/b HTTP/1.1\r\nHost: t\r\n\r\n"));
  Response second;
  ASSERT_FALSE(client->Read(&second));
  EXPECT_EQ(second.result_int(), 200);
  EXPECT_EQ(second.body(), "GET /echo/b [] x-test=");
}

// The answer to an unknown path is known without the body: it comes at
// once, not after a 100 Continue and an upload.
TEST_F(HttpServerTest, ExpectContinueToAnUnknownPathIsAnswered404WithoutA100) {
  Start(DefaultOptions());
  auto client = Connect();
  ASSERT_FALSE(client->WriteRaw(
      "POST /nope HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n"));
  Response r;
  ASSERT_FALSE(client->Read(&r));
  EXPECT_EQ(r.result_int(), 404);
  EXPECT_FALSE(r.keep_alive());
  EXPECT_TRUE(client->WaitForClose());
}

TEST_F(HttpServerTest, ShutdownLetsASlowRequestFinish) {
  Start(DefaultOptions());
  auto slow = Connect();
  auto idle = Connect();
  EXPECT_EQ(idle->RoundTrip(Get("/echo")).result_int(), 200);

  Request req = Get("/slow");
  ASSERT_FALSE(slow->Send(req));
  ASSERT_EQ(slow_started_.get_future().wait_for(kClientTimeout), std::future_status::ready);

  auto started = std::chrono::steady_clock::now();
  std::thread stopper([&] { server_->Shutdown(10s); });
  Response r;
  beast::error_code ec = slow->Read(&r);
  stopper.join();
  auto took = std::chrono::steady_clock::now() - started;

  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), "slow done");
  EXPECT_FALSE(r.keep_alive()) << "a draining server closes after the response";
  EXPECT_TRUE(slow->WaitForClose());
  EXPECT_TRUE(idle->WaitForClose()) << "idle connections are closed by Shutdown";
  EXPECT_LT(took, 9s) << "Shutdown returns once the connections are gone, not at the deadline";

  Client late;
  EXPECT_TRUE(late.Connect(port_)) << "no longer accepting";
}

TEST_F(HttpServerTest, ShutdownCutsRequestsThatOutliveTheDeadline) {
  Start(DefaultOptions());
  auto client = Connect();
  Request req = Get("/never");
  ASSERT_FALSE(client->Send(req));
  ASSERT_EQ(never_started_.get_future().wait_for(kClientTimeout), std::future_status::ready);
  server_->Shutdown(300ms);
  EXPECT_TRUE(client->WaitForClose());
}

// A handler that answers after Shutdown's deadline must not post the write
// to the stopped io_context: the queued handler would hold the Session, which
// holds the server, which owns the io_context that holds the handler, and
// that cycle would leak the whole server. The connections gauge shows it in
// every build: a Session decrements it when it is destroyed, so it returns to
// 0 only if nothing holds the Session any more. (LeakSanitizer reports the
// cycle too in the debug build.)
TEST_F(HttpServerTest, AnsweringAfterShutdownDoesNotLeakTheServer) {
  Start(DefaultOptions(), &metrics_);
  auto client = Connect();
  Request req = Get("/never");
  ASSERT_FALSE(client->Send(req));
  ASSERT_EQ(never_started_.get_future().wait_for(kClientTimeout), std::future_status::ready);
  EXPECT_THAT(metrics_.Serialize(), HasSubstr("\ncatchall_http_connections 1\n"));
  server_->Shutdown(300ms);
  EXPECT_TRUE(client->WaitForClose());
  parked_[0](HttpResponse::Text(200, "late", "text/plain"));
  parked_.clear();
  server_.reset();
  EXPECT_THAT(metrics_.Serialize(), HasSubstr("\ncatchall_http_connections 0\n"))
      << "the session outlived the server: something still holds it";
}

// `--listen localhost:8080` listens where localhost resolves (/etc/hosts).
TEST_F(HttpServerTest, AHostNameIsListenedOnAtItsAddress) {
  HttpServerOptions options = DefaultOptions();
  options.host = "localhost";
  HttpServer server(options, &router_, nullptr);
  ASSERT_TRUE(server.Start().ok());
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto addresses = resolver.resolve("localhost", std::to_string(server.port()), ec);
  ASSERT_FALSE(ec) << ec.message();
  tcp::socket socket(ioc);
  net::connect(socket, addresses, ec);
  EXPECT_FALSE(ec) << ec.message();
  server.Shutdown(std::chrono::milliseconds(0));
}

TEST_F(HttpServerTest, StartFailsOnBadAddresses) {
  HttpServerOptions bad_host = DefaultOptions();
  bad_host.host = "no-such-host.invalid";  // RFC 6761: never resolves
  HttpServer s1(bad_host, &router_, nullptr);
  Status st = s1.Start();
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("no-such-host.invalid"));

  Start(DefaultOptions());
  HttpServerOptions taken = DefaultOptions();
  taken.port = port_;
  HttpServer s2(taken, &router_, nullptr);
  Status busy = s2.Start();
  EXPECT_EQ(busy.code(), Code::kIoError);
  EXPECT_THAT(busy.message(), HasSubstr(std::to_string(port_)));
}

TEST_F(HttpServerTest, ConcurrentClients) {
  Start(DefaultOptions());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Client c;
      if (c.Connect(port_)) return;
      for (int i = 0; i < 25; ++i) {
        std::string target = "/echo/" + std::to_string(t) + "/" + std::to_string(i);
        Request req = Get(target);
        Response r;
        if (c.Send(req) || c.Read(&r)) return;
        if (r.result_int() == 200 && r.body() == "GET " + target + " [] x-test=") ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 100);
}

// The gauge of body bytes held moves by each request's bytes. It was set
// from each I/O thread's own view of the total, so it kept whichever thread
// set it last (a review: 50 bytes held with none left, until the next body
// came). That window is a few instructions wide: this test did not catch it
// in 30 runs of the old code; it checks that concurrent bodies all return.
TEST_F(HttpServerTest, TheBodyBytesGaugeIsZeroOnceConcurrentBodiesAreDone) {
  Start(DefaultOptions(), &metrics_);  // two I/O threads
  constexpr int kClients = 8;
  constexpr int kRequests = 150;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  threads.reserve(kClients);
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      Client c;
      if (c.Connect(port_)) return;
      for (int i = 0; i < kRequests; ++i) {
        // Sizes differ, so that a stale total rarely equals the true one.
        Request req =
            Post("/echo", std::string(1 + static_cast<size_t>((t * 131 + i * 17) % 997), 'b'));
        Response r;
        if (c.Send(req) || c.Read(&r)) return;
        if (r.result_int() == 200) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(ok.load(), kClients * kRequests);
  EXPECT_THAT(metrics_.Serialize(), HasSubstr("\ncatchall_http_request_body_bytes 0\n"));
}

// The log writer answers a whole group commit of PUTs at once, from its own
// thread. Those answers reach each connection's I/O thread through a queue
// per io_context (one wake-up for the lot): every client must get its own
// answer, on both I/O threads, and keep its connection for the next request.
TEST_F(HttpServerTest, AnswersFromAnotherThreadReachTheirOwnConnections) {
  Start(DefaultOptions());
  constexpr int kClients = 12;
  std::vector<std::unique_ptr<Client>> clients;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kClients; ++i) {
      if (round == 0) clients.push_back(Connect());
      Request req = Get("/later/" + std::to_string(round) + "/" + std::to_string(i));
      ASSERT_FALSE(clients[i]->Send(req));
    }
    std::vector<std::pair<std::string, Responder>> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ASSERT_TRUE(
          later_cv_.wait_for(lock, kClientTimeout, [&] { return later_.size() == kClients; }));
      batch.swap(later_);
    }
    // One thread, not an I/O thread, answers them all back to back.
    std::thread([&] {
      for (auto& [target, respond] : batch) {
        respond(HttpResponse::Text(200, "answer to " + target, "text/plain"));
      }
    }).join();
    for (int i = 0; i < kClients; ++i) {
      Response r;
      ASSERT_FALSE(clients[i]->Read(&r)) << "client " << i;
      EXPECT_EQ(r.result_int(), 200);
      EXPECT_EQ(r.body(), "answer to /later/" + std::to_string(round) + "/" + std::to_string(i));
    }
  }
}

// A client that pipelines requests and stops reading fills its socket: its
// answers must wait for room (under the write timeout) without holding up
// anyone else, and none may be lost or cut. Here one client sends 200,000
// PUTs (enough to fill the kernel's buffers: with 20,000 nothing ever
// waited) with a tiny receive buffer and reads nothing for half a second:
// another client is still answered, and the first then gets every 204,
// whole and in order.
TEST_F(HttpServerTest, AClientThatStopsReadingGetsEveryAnswerOnceItReads) {
  Start(DefaultOptions());
  constexpr int kRequests = 200000;
  net::io_context ioc;
  tcp::socket slow(ioc);
  slow.open(tcp::v4());
  slow.set_option(net::socket_base::receive_buffer_size(4096));
  slow.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
  const std::string request = "PUT /nocontent HTTP/1.1\r\nHost: t\r\n\r\n";
  std::thread writer([&] {
    std::string all;
    for (int i = 0; i < kRequests; ++i) all += request;
    beast::error_code ec;
    net::write(slow, net::buffer(all), ec);
  });
  std::this_thread::sleep_for(500ms);
  {
    auto other = Connect();
    Request ping = Get("/echo/other");
    ASSERT_FALSE(other->Send(ping));
    Response r;
    ASSERT_FALSE(other->Read(&r));
    EXPECT_EQ(r.result_int(), 200);
  }
  const std::string answer = "HTTP/1.1 204 No Content\r\n\r\n";
  std::string got;
  got.reserve(answer.size() * kRequests);
  std::array<char, 65536> buf{};
  while (got.size() < answer.size() * kRequests) {
    pollfd ready{slow.native_handle(), POLLIN, 0};
    if (::poll(&ready, 1, static_cast<int>(kClientTimeout / 1ms)) != 1) break;
    beast::error_code ec;
    size_t n = slow.read_some(net::buffer(buf), ec);
    if (ec) break;
    got.append(buf.data(), n);
  }
  beast::error_code ignored;
  slow.shutdown(tcp::socket::shutdown_both, ignored);  // unblocks the writer if stuck
  writer.join();
  ASSERT_EQ(got.size(), answer.size() * kRequests)
      << "got " << got.size() / answer.size() << " answers of " << kRequests;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(got.compare(i * answer.size(), answer.size(), answer), 0) << "answer " << i;
  }
}

// A client that sends and never reads must not hold its connection (and
// the answers queued for it) forever: once an answer has waited io_timeout
// for room, the server closes the connection, and the client's blocked
// write fails. Others are still answered meanwhile. `request` is sent over
// and over until a write fails. Its answer should be large (an echo of a
// large body): the socket buffers then fill within a few hundred answers,
// however slowly the server runs (a debug build under sanitizers answered
// too few 27-byte 204s within the client's timeout to fill them).
void ExpectCutOffWhenNeverReading(uint16_t port, const std::string& request,
                                  const std::function<int()>& other_round_trip) {
  net::io_context ioc;
  tcp::socket slow(ioc);
  slow.open(tcp::v4());
  slow.set_option(net::socket_base::receive_buffer_size(4096));
  slow.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  std::promise<beast::error_code> written;
  std::thread writer([&] {
    beast::error_code ec;
    for (int i = 0; i < 1000000 && !ec; ++i) net::write(slow, net::buffer(request), ec);
    written.set_value(ec);
  });
  auto done = written.get_future();
  EXPECT_EQ(other_round_trip(), 200);
  bool cut_off = done.wait_for(kClientTimeout) == std::future_status::ready;
  beast::error_code ignored;
  if (!cut_off) slow.shutdown(tcp::socket::shutdown_both, ignored);  // unblocks the writer
  writer.join();
  ASSERT_TRUE(cut_off) << "the server kept a connection that reads nothing";
  EXPECT_TRUE(done.get()) << "the writes cannot all have finished: nothing was read";
}

// A PUT to /echo whose answer repeats its 64 KiB body.
std::string LargeEcho(std::string_view extra_headers) {
  constexpr size_t kBody = size_t{64} * 1024;
  return "PUT /echo HTTP/1.1\r\nHost: t\r\n" + std::string(extra_headers) +
         "Content-Length: " + std::to_string(kBody) + "\r\n\r\n" + std::string(kBody, 'b');
}

TEST_F(HttpServerTest, AClientThatNeverReadsIsCutOffAfterTheWriteTimeout) {
  HttpServerOptions options = DefaultOptions();
  options.io_timeout = 300ms;
  Start(options, &metrics_);
  ExpectCutOffWhenNeverReading(
      port_, LargeEcho(""), [&] { return Connect()->RoundTrip(Get("/echo/other")).result_int(); });
  // And an operator can tell why (a probe found nothing said it).
  EXPECT_THAT(metrics_.Serialize(), HasSubstr("\ncatchall_http_write_timeouts_total 1\n"));
}

// The same with an interim 100 Continue before each answer: that write is
// under the deadline too, whichever of the two finds the socket full.
TEST_F(HttpServerTest, AClientThatNeverReadsItsContinuesIsCutOffAfterTheWriteTimeout) {
  HttpServerOptions options = DefaultOptions();
  options.io_timeout = 300ms;
  Start(options);
  ExpectCutOffWhenNeverReading(port_, LargeEcho("Expect: 100-continue\r\n"), [&] {
    return Connect()->RoundTrip(Get("/echo/other")).result_int();
  });
}

// RFC 9110, 10.1.1: an HTTP/1.0 client's 100-continue is ignored, and a
// request whose body is complete (none at all) has nothing to wait for.
TEST_F(HttpServerTest, ExpectContinueIsIgnoredFromHttp10AndWithoutABody) {
  Start(DefaultOptions());
  {
    auto client = Connect();
    ASSERT_FALSE(client->WriteRaw(
        "POST /echo/old HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"));
    Response r;
    ASSERT_FALSE(client->Read(&r));
    EXPECT_EQ(r.result_int(), 200);
    EXPECT_EQ(r.version(), 10);
    EXPECT_EQ(r.body(), "POST /echo/old [hello] x-test=");
  }
  auto client = Connect();
  ASSERT_FALSE(client->WriteRaw(
      "PUT /echo/empty HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"));
  Response r;
  ASSERT_FALSE(client->Read(&r));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), "PUT /echo/empty [] x-test=");
}

// 100-continue is a member of a list like any expectation: said twice, or
// beside an empty member, it was neither refused nor answered, and the
// client waited for a 100 Continue that never came (a review).
TEST_F(HttpServerTest, A100ContinueInAListIsAnswered) {
  Start(DefaultOptions());
  for (std::string expect : {"100-continue, 100-CONTINUE", "100-continue,", ", 100-continue"}) {
    SCOPED_TRACE(expect);
    auto client = Connect();
    ASSERT_FALSE(client->WriteRaw("POST /echo/c HTTP/1.1\r\nHost: t\r\nExpect: " + expect +
                                  "\r\nContent-Length: 5\r\n\r\n"));
    Response interim;
    ASSERT_FALSE(client->Read(&interim));
    EXPECT_EQ(interim.result_int(), 100);
    ASSERT_FALSE(client->WriteRaw("hello"));
    Response r;
    ASSERT_FALSE(client->Read(&r));
    EXPECT_EQ(r.result_int(), 200);
    EXPECT_EQ(r.body(), "POST /echo/c [hello] x-test=");
  }
}

// RFC 9110, 10.1.1: an expectation other than 100-continue cannot be met,
// and says so (417, in JSON) rather than being served as if it had been;
// the body is not read, so the connection closes. HTTP/1.0's is ignored.
TEST_F(HttpServerTest, AnExpectationOtherThan100ContinueIs417) {
  Start(DefaultOptions());
  for (std::string expect : {"201-nothing", "100-continue, x-other", "100-CONTINUE ,  Foo=1"}) {
    SCOPED_TRACE(expect);
    auto client = Connect();
    ASSERT_FALSE(client->WriteRaw("POST /echo/x HTTP/1.1\r\nHost: t\r\nExpect: " + expect +
                                  "\r\nContent-Length: 5\r\n\r\nhello"));
    Response r;
    ASSERT_FALSE(client->Read(&r));
    EXPECT_EQ(r.result_int(), 417);
    EXPECT_THAT(r.body(), HasSubstr(R"("code":"expectation_failed")"));
    EXPECT_FALSE(r.keep_alive());
  }
  auto client = Connect();
  ASSERT_FALSE(client->WriteRaw(
      "POST /echo/old HTTP/1.0\r\nExpect: 201-nothing\r\nContent-Length: 5\r\n\r\nhello"));
  Response r;
  ASSERT_FALSE(client->Read(&r));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), "POST /echo/old [hello] x-test=");
}

}  // namespace
}  // namespace catchall
