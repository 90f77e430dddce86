// An HTTP/1.1 response parser that keeps only what the benchmark needs.
//
// Beast's basic_parser does the parsing (status line, Content-Length,
// chunked bodies, keep-alive semantics); this derived class records the
// status code and Retry-After and appends the body to a caller-owned string,
// so that, unlike http::response_parser, it allocates nothing per response.
// One parser per response (construction is cheap); single-threaded.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <cstdint>
#include <string>

namespace catchall::bench {

class ResponseParser final : public boost::beast::http::basic_parser<false> {
 public:
  static constexpr uint64_t kBodyLimit = 64ull << 20;

  // Clears `*body` and appends the response body to it.
  explicit ResponseParser(std::string* body);

  int status() const { return status_; }
  uint32_t retry_after_s() const { return retry_after_s_; }

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;

  void on_request_impl(boost::beast::http::verb, string_view, string_view, int,
                       error_code& ec) override;
  void on_response_impl(int code, string_view reason, int version, error_code& ec) override;
  void on_field_impl(boost::beast::http::field name, string_view name_string, string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code& ec) override;
  void on_body_init_impl(const boost::optional<uint64_t>& content_length, error_code& ec) override;
  size_t on_body_impl(string_view body, error_code& ec) override;
  void on_chunk_header_impl(uint64_t size, string_view extensions, error_code& ec) override;
  size_t on_chunk_body_impl(uint64_t remain, string_view body, error_code& ec) override;
  void on_finish_impl(error_code& ec) override;

  std::string* body_;
  int status_ = 0;
  uint32_t retry_after_s_ = 0;
};

}  // namespace catchall::bench
