#include "bench/response_parser.h"

#include <boost/beast/http/error.hpp>
#include <charconv>

namespace catchall::bench {

namespace http = boost::beast::http;

ResponseParser::ResponseParser(std::string* body) : body_(body) {
  body_->clear();
  eager(true);
  body_limit(kBodyLimit);
}

void ResponseParser::on_request_impl(http::verb, string_view, string_view, int, error_code& ec) {
  ec = http::error::bad_version;  // never called for a response parser
}

void ResponseParser::on_response_impl(int code, string_view, int, error_code&) { status_ = code; }

void ResponseParser::on_field_impl(http::field name, string_view, string_view value, error_code&) {
  if (name == http::field::retry_after) {
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec == std::errc()) retry_after_s_ = v;  // an HTTP-date is ignored
  }
}

void ResponseParser::on_header_impl(error_code&) {}

void ResponseParser::on_body_init_impl(const boost::optional<uint64_t>& content_length,
                                       error_code&) {
  if (content_length && *content_length <= kBodyLimit) body_->reserve(*content_length);
}

size_t ResponseParser::on_body_impl(string_view body, error_code&) {
  body_->append(body.data(), body.size());
  return body.size();
}

void ResponseParser::on_chunk_header_impl(uint64_t, string_view, error_code&) {}

size_t ResponseParser::on_chunk_body_impl(uint64_t, string_view body, error_code&) {
  body_->append(body.data(), body.size());
  return body.size();
}

void ResponseParser::on_finish_impl(error_code&) {}

}  // namespace catchall::bench
