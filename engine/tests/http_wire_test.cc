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

TEST(HttpWireTest, ParserErrorsAreJsonErrorsAndTransportErrorsAreNot) {
  HttpServerOptions options;
  auto headers = MalformedRequestResponse(options, http::error::header_limit);
  ASSERT_TRUE(headers.has_value());
  EXPECT_EQ(headers->status, 431);
  EXPECT_THAT(headers->body, HasSubstr(R"("code":"headers_too_large")"));
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
}

TEST(HttpWireTest, ToBeastResponseSetsStatusHeadersAndLength) {
  HttpResponse r = HttpResponse::MethodNotAllowed("GET");
  BeastResponse out;
  ToBeastResponse(std::move(r), 11, false, &out);
  EXPECT_EQ(out.result_int(), 405u);
  EXPECT_EQ(out[http::field::allow], "GET");
  EXPECT_EQ(out[http::field::content_type], "application/json");
  EXPECT_EQ(out[http::field::content_length], std::to_string(out.body().size()));
  EXPECT_FALSE(out.keep_alive());

  ToBeastResponse(HttpResponse::NoContent(), 10, true, &out);
  EXPECT_EQ(out.result_int(), 204u);
  EXPECT_EQ(out.version(), 10u);
  EXPECT_EQ(out.count(http::field::content_type), 0u);
  EXPECT_TRUE(out.keep_alive());
}

}  // namespace
}  // namespace catchall
