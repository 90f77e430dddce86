#include "http_wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <string>

namespace catchall {
namespace {

namespace http = boost::beast::http;
using ::testing::HasSubstr;

TEST(HttpWireTest, ToHttpRequestKeepsMethodTargetHeadersAndBody) {
  BeastRequest beast{http::verb::put, "/events/a.com/delivered?x=1", 11};
  beast.set("Idempotency-Key", "k1");
  beast.set(http::field::content_type, "application/x-ndjson");
  beast.body() = "body";
  auto now = std::chrono::steady_clock::now();
  HttpRequest request = ToHttpRequest(beast, now);
  EXPECT_EQ(request.method, HttpMethod::kPut);
  EXPECT_EQ(request.path(), "/events/a.com/delivered");
  EXPECT_EQ(request.query(), "x=1");
  EXPECT_EQ(request.body, "body");
  EXPECT_EQ(request.Header("idempotency-key"), "k1");
  EXPECT_EQ(request.Header("Content-Type"), "application/x-ndjson");
  EXPECT_EQ(request.received, now);

  BeastRequest other{http::verb::trace, "/", 11};
  EXPECT_EQ(ToHttpRequest(other, now).method, HttpMethod::kOther);
}

TEST(HttpWireTest, OriginFormTakesThePathOfAnAbsoluteTarget) {
  EXPECT_EQ(OriginForm("/events/a.com/delivered"), "/events/a.com/delivered");
  EXPECT_EQ(OriginForm("http://h:8080/events/a.com/delivered?x=1"), "/events/a.com/delivered?x=1");
  EXPECT_EQ(OriginForm("HTTPS://h/healthz"), "/healthz");
  EXPECT_EQ(OriginForm("http://h:8080"), "/");
  // The authority ends at '?' or '#': a slash in the query is no path.
  EXPECT_EQ(OriginForm("http://h:1?r=/healthz"), "/");
  EXPECT_EQ(OriginForm("http://h#/healthz"), "/");
  EXPECT_EQ(OriginForm("*"), "*");
  EXPECT_EQ(OriginForm("ftp://h/healthz"), "ftp://h/healthz");
}

TEST(HttpWireTest, ParserErrorsAreJsonErrorsAndTransportErrorsAreNot) {
  HttpServerOptions options;
  auto headers = MalformedRequestResponse(options, http::error::header_limit);
  ASSERT_TRUE(headers.has_value());
  EXPECT_EQ(headers->status, 431);
  EXPECT_THAT(headers->body, HasSubstr(R"("code":"headers_too_large")"));
  // Over the limit before the request line ended: the URL is too long.
  auto url = MalformedRequestResponse(options, http::error::header_limit,
                                      /*request_line_read=*/false);
  ASSERT_TRUE(url.has_value());
  EXPECT_EQ(url->status, 414);
  EXPECT_THAT(url->body, HasSubstr(R"("code":"uri_too_long")"));
  auto after_line = MalformedRequestResponse(options, http::error::header_limit,
                                             /*request_line_read=*/true);
  ASSERT_TRUE(after_line.has_value());
  EXPECT_EQ(after_line->status, 431);
  auto body = MalformedRequestResponse(options, http::error::body_limit);
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(body->status, 413);
  for (http::error e : {http::error::bad_method, http::error::bad_version,
                        http::error::bad_content_length, http::error::partial_message}) {
    auto bad = MalformedRequestResponse(options, e);
    ASSERT_TRUE(bad.has_value());
    EXPECT_EQ(bad->status, 400);
    EXPECT_THAT(bad->body, HasSubstr(R"("code":"bad_request")"));
  }
  EXPECT_FALSE(MalformedRequestResponse(options, boost::asio::error::connection_reset));
  // A well-formed version Beast does not take.
  auto version = MalformedRequestResponse(options, http::error::bad_version,
                                          /*request_line_read=*/true, "HTTP/2.0");
  ASSERT_TRUE(version.has_value());
  EXPECT_EQ(version->status, 505);
  EXPECT_THAT(version->body, HasSubstr(R"("code":"http_version_not_supported")"));
  EXPECT_THAT(version->body, HasSubstr("HTTP/2.0 is not supported"));
}

TEST(HttpWireTest, UnsupportedHttpVersionNamesAWellFormedVersionOtherThan10And11) {
  EXPECT_EQ(UnsupportedHttpVersion("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), "HTTP/2.0");
  EXPECT_EQ(UnsupportedHttpVersion("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "HTTP/2.0");
  EXPECT_EQ(UnsupportedHttpVersion("GET /a HTTP/1.2\n"), "HTTP/1.2");
  EXPECT_EQ(UnsupportedHttpVersion("GET /a HTTP/0.9"), "HTTP/0.9");
  EXPECT_EQ(UnsupportedHttpVersion("GET /a HTTP/1.1\r\n"), "");
  EXPECT_EQ(UnsupportedHttpVersion("GET /a HTTP/1.0\r\n"), "");
  // Not a version at all: Beast's 400 stands.
  EXPECT_EQ(UnsupportedHttpVersion("GET /a HTTP/x.y\r\n"), "");
  EXPECT_EQ(UnsupportedHttpVersion("GET /a HTTP/10.0\r\n"), "");
  EXPECT_EQ(UnsupportedHttpVersion("GET /a HTTP/2.0x\r\n"), "");
  EXPECT_EQ(UnsupportedHttpVersion("garbage"), "");
  EXPECT_EQ(UnsupportedHttpVersion(""), "");
  // Only the request line is read.
  EXPECT_EQ(UnsupportedHttpVersion("GET /a b\r\nX: HTTP/2.0\r\n"), "");
}

// Beast parses the request line only when its first look holds all of it;
// after that it consumes nothing until the header block ends, so the
// unconsumed bytes tell whether the line ended within the limit.
TEST(HttpWireTest, RequestLineReadLooksForTheLineEndWithinTheLimit) {
  BeastRequestParser fresh;
  EXPECT_FALSE(RequestLineRead(fresh, "GET /" + std::string(100, 'u'), 64));
  EXPECT_TRUE(RequestLineRead(fresh, "GET /u HTTP/1.1\r\nX-Big: " + std::string(100, 'h'), 64));
  // The line end past the limit: the line alone is over it.
  EXPECT_FALSE(
      RequestLineRead(fresh, "GET /" + std::string(100, 'u') + " HTTP/1.1\r\nX: y\r\n", 64));
  // Once Beast has parsed the line (and consumed it), the target says so.
  BeastRequestParser parsed;
  boost::beast::error_code ec;
  const std::string line = "GET /u HTTP/1.1\r\nX-Big: h";
  parsed.put(boost::asio::buffer(line), ec);
  EXPECT_TRUE(!ec || ec == http::error::need_more) << ec.message();
  EXPECT_TRUE(RequestLineRead(parsed, "X-Big: " + std::string(100, 'h'), 64));
}

// What RenderResponse writes, read back by Beast's own parser (a client's).
http::response<http::string_body> ParseBack(const std::string& bytes, bool head = false) {
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  parser.skip(head);  // the answer to a HEAD has no body, whatever its Content-Length
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(bytes), ec);
  EXPECT_FALSE(ec) << ec.message() << " in " << bytes;
  EXPECT_TRUE(parser.is_done()) << bytes;
  EXPECT_EQ(used, bytes.size()) << "bytes after the response: " << bytes;
  return parser.release();
}

TEST(HttpWireTest, RenderResponseWritesStatusHeadersLengthAndBody) {
  HttpResponse r = HttpResponse::MethodNotAllowed("GET");
  std::string bytes;
  RenderResponse(r, 11, /*keep_alive=*/false, /*head=*/false, &bytes);
  EXPECT_THAT(bytes, ::testing::StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  auto out = ParseBack(bytes);
  EXPECT_EQ(out.result_int(), 405u);
  EXPECT_EQ(out[http::field::allow], "GET, HEAD");
  EXPECT_EQ(out[http::field::content_type], "application/json");
  EXPECT_EQ(out[http::field::content_length], std::to_string(r.body.size()));
  EXPECT_EQ(out.body(), r.body);
  EXPECT_FALSE(out.keep_alive());

  HttpResponse ok = HttpResponse::Json(200, R"({"status":"unknown"})");
  RenderResponse(ok, 11, /*keep_alive=*/true, /*head=*/false, &bytes);
  out = ParseBack(bytes);
  EXPECT_EQ(out.body(), ok.body);
  EXPECT_TRUE(out.keep_alive());
  EXPECT_EQ(out.count(http::field::connection), 0u) << "HTTP/1.1 keeps the connection unasked";
}

TEST(HttpWireTest, RenderResponseFollowsTheVersionAndLeavesTheBodyOutOfAHead) {
  std::string bytes;
  RenderResponse(HttpResponse::NoContent(), 10, /*keep_alive=*/true, /*head=*/false, &bytes);
  auto out = ParseBack(bytes);
  EXPECT_EQ(out.result_int(), 204u);
  EXPECT_EQ(out.version(), 10u);
  EXPECT_EQ(out.count(http::field::content_type), 0u);
  EXPECT_EQ(out.count(http::field::content_length), 0u);
  EXPECT_TRUE(out.keep_alive()) << "HTTP/1.0 needs Connection: keep-alive";

  RenderResponse(HttpResponse::Json(200, "{}"), 10, /*keep_alive=*/false, /*head=*/false, &bytes);
  EXPECT_FALSE(ParseBack(bytes).keep_alive());

  HttpResponse found = HttpResponse::Json(200, R"({"domain":"a.com"})");
  RenderResponse(found, 11, /*keep_alive=*/true, /*head=*/true, &bytes);
  EXPECT_THAT(bytes, ::testing::EndsWith("\r\n\r\n")) << "no body after a HEAD's headers";
  out = ParseBack(bytes, /*head=*/true);
  EXPECT_EQ(out[http::field::content_length], std::to_string(found.body.size()));
  EXPECT_TRUE(out.body().empty());

  HttpResponse busy = HttpResponse::Error(503, "log_unavailable", "try again");
  busy.headers.emplace_back("Retry-After", "1");
  RenderResponse(busy, 11, /*keep_alive=*/true, /*head=*/false, &bytes);
  out = ParseBack(bytes);
  EXPECT_EQ(out.result_int(), 503u);
  EXPECT_EQ(out[http::field::retry_after], "1");
  EXPECT_EQ(out.body(), busy.body);
}

// A connection's response buffer is kept between requests while small (no
// allocation per response) and released once a large answer is written: a
// keep-alive connection held its largest answer until it closed.
TEST(HttpWireTest, AWrittenResponseBufferIsKeptOnlyWhileSmall) {
  std::string wire;
  RenderResponse(HttpResponse::NoContent(), 11, true, false, &wire);
  const size_t small = wire.capacity();
  ReleaseWrittenResponse(&wire);
  EXPECT_TRUE(wire.empty());
  EXPECT_EQ(wire.capacity(), small);

  HttpResponse report = HttpResponse::Json(200, std::string(4 * kKeptResponseBytes, 'x'));
  RenderResponse(report, 11, true, false, &wire);
  EXPECT_GT(wire.capacity(), kKeptResponseBytes);
  ReleaseWrittenResponse(&wire);
  EXPECT_TRUE(wire.empty());
  EXPECT_LE(wire.capacity(), kKeptResponseBytes);
}

}  // namespace
}  // namespace catchall
