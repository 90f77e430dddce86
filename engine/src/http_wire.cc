#include "http_wire.h"

#include <fmt/format.h>

namespace catchall {

namespace beast = boost::beast;
namespace http = beast::http;

HttpMethod MethodOf(http::verb verb) {
  switch (verb) {
    case http::verb::get: return HttpMethod::kGet;
    case http::verb::head: return HttpMethod::kHead;
    case http::verb::post: return HttpMethod::kPost;
    case http::verb::put: return HttpMethod::kPut;
    case http::verb::delete_: return HttpMethod::kDelete;
    case http::verb::patch: return HttpMethod::kPatch;
    case http::verb::options: return HttpMethod::kOptions;
    default: return HttpMethod::kOther;
  }
}

namespace {
std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }
}  // namespace

void LimitRequestParser(const HttpServerOptions& options, BeastRequestParser* parser) {
  parser->header_limit(static_cast<std::uint32_t>(options.header_limit));
  parser->body_limit(options.body_limit);
}

HttpRequest ToHttpRequest(const BeastRequest& request,
                          std::chrono::steady_clock::time_point received) {
  HttpRequest out;
  out.method = MethodOf(request.method());
  out.target = View(request.target());
  out.body = request.body();
  out.received = received;
  out.headers.reserve(8);
  for (const auto& field : request) {
    out.headers.push_back(HttpHeader{View(field.name_string()), View(field.value())});
  }
  return out;
}

std::optional<HttpResponse> MalformedRequestResponse(const HttpServerOptions& options,
                                                     beast::error_code ec) {
  if (ec == http::error::header_limit) {
    return HttpResponse::Error(
        431, "headers_too_large",
        fmt::format("request headers exceed {} bytes", options.header_limit));
  }
  if (ec == http::error::body_limit) {
    return HttpResponse::Error(413, "body_too_large",
                               fmt::format("request body exceeds {} bytes", options.body_limit));
  }
  if (ec.category() == http::make_error_code(http::error::bad_target).category() ||
      ec == http::error::partial_message) {
    return HttpResponse::Error(400, "bad_request",
                               fmt::format("malformed HTTP request: {}", ec.message()));
  }
  return std::nullopt;
}

namespace {
template <class Body>
void SetHeaders(const HttpResponse& response, unsigned version, bool keep_alive,
                http::response<Body>* out) {
  *out = {};
  out->version(version);
  out->result(static_cast<unsigned>(response.status));
  if (response.status != 204 && response.status != 304) {
    out->set(http::field::content_type, response.content_type);
  }
  for (const auto& [name, value] : response.headers) out->set(name, value);
  out->keep_alive(keep_alive);
}
}  // namespace

void ToBeastResponse(HttpResponse&& response, unsigned version, bool keep_alive,
                     BeastResponse* out) {
  SetHeaders(response, version, keep_alive, out);
  out->body() = std::move(response.body);
  out->prepare_payload();
}

void ToBeastHeadResponse(HttpResponse&& response, unsigned version, bool keep_alive,
                         BeastHeadResponse* out) {
  SetHeaders(response, version, keep_alive, out);
  if (response.status != 204 && response.status != 304) {
    out->content_length(response.body.size());
  }
}

}  // namespace catchall
