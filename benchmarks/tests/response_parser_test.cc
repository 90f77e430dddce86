#include "bench/response_parser.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace catchall::bench {
namespace {

// Feeds `wire` in pieces of `step` bytes; returns the parser's final error.
boost::beast::error_code Feed(ResponseParser& p, std::string_view wire, size_t step) {
  std::string pending;
  boost::beast::error_code ec;
  for (size_t off = 0; off < wire.size() && !p.is_done(); off += step) {
    pending.append(wire.substr(off, step));
    for (;;) {
      ec = {};
      const size_t used = p.put(boost::asio::buffer(pending), ec);
      pending.erase(0, used);
      if (ec == boost::beast::http::error::need_more) {
        ec = {};
        break;
      }
      if (ec || p.is_done() || pending.empty() || used == 0) break;
    }
    if (ec) return ec;
  }
  return ec;
}

TEST(ResponseParserTest, NoContentWithoutBody) {
  std::string body = "stale";
  ResponseParser p(&body);
  auto ec = Feed(p, "HTTP/1.1 204 No Content\r\nServer: nginx\r\nDate: x\r\n\r\n", 1000);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(p.is_done());
  EXPECT_EQ(p.status(), 204);
  EXPECT_TRUE(p.keep_alive());
  EXPECT_EQ(body, "");
}

TEST(ResponseParserTest, ContentLengthBodyInTinyPieces) {
  std::string body;
  ResponseParser p(&body);
  auto ec = Feed(p,
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n"
                 "{\"accepted\":1}",
                 3);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(p.is_done());
  EXPECT_EQ(p.status(), 200);
  EXPECT_EQ(body, "{\"accepted\":1}");
}

TEST(ResponseParserTest, ChunkedBody) {
  std::string body;
  ResponseParser p(&body);
  auto ec = Feed(
      p,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
      7);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(p.is_done());
  EXPECT_EQ(body, "hello world");
}

TEST(ResponseParserTest, RetryAfterAndConnectionClose) {
  std::string body;
  ResponseParser p(&body);
  auto ec = Feed(p,
                 "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nConnection: close\r\n"
                 "Content-Length: 2\r\n\r\n{}",
                 1000);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(p.status(), 503);
  EXPECT_EQ(p.retry_after_s(), 2u);
  EXPECT_FALSE(p.keep_alive());
}

TEST(ResponseParserTest, GarbageIsAnError) {
  std::string body;
  ResponseParser p(&body);
  EXPECT_TRUE(Feed(p, "SMTP 220 hello\r\n\r\n", 1000));
}

}  // namespace
}  // namespace catchall::bench
