#include "http_wire.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>

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

void DecodeTargetEscapes(BeastRequest* request) {
  if (auto decoded = DecodeUnreservedEscapes(View(request->target()))) {
    request->target(*decoded);
  }
}

HttpRequest ToHttpRequest(const BeastRequest& request,
                          std::chrono::steady_clock::time_point received) {
  HttpRequest out;
  out.method = MethodOf(request.method());
  out.target = OriginForm(View(request.target()));
  out.body = request.body();
  out.received = received;
  out.headers.reserve(8);
  for (const auto& field : request) {
    out.headers.push_back(HttpHeader{View(field.name_string()), View(field.value())});
  }
  return out;
}

std::string_view OriginForm(std::string_view target) {
  if (target.empty() || target.front() == '/') return target;
  size_t scheme_end = target.find("://");
  beast::string_view scheme(target.data(), std::min(scheme_end, target.size()));
  if (scheme_end == std::string_view::npos ||
      !(beast::iequals(scheme, "http") || beast::iequals(scheme, "https"))) {
    return target;  // `*`, or nothing a client should send: routed as is
  }
  // The authority ends at the first '/', '?' or '#'; `http://h?q=/x` has
  // no path (its query is dropped with it: no route reads queries).
  size_t end = target.find_first_of("/?#", scheme_end + 3);
  if (end == std::string_view::npos || target[end] != '/') return "/";
  return target.substr(end);
}

namespace {

bool IsContinue(std::string_view member) {
  return beast::iequals(beast::string_view(member.data(), member.size()), "100-continue");
}

// Calls `each` with every member of the Expect fields of `request`, in
// order, trimmed, empty ones left out (RFC 9110, 5.6.1), until it returns
// true; whether one did. A member with a quoted string may be cut at a
// comma inside it: it is not 100-continue either way.
template <typename Each>
bool AnyExpectation(const BeastRequest& request, Each each) {
  auto fields = request.equal_range(http::field::expect);
  for (auto field = fields.first; field != fields.second; ++field) {
    std::string_view rest = View(field->value());
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view member = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      while (!member.empty() && (member.front() == ' ' || member.front() == '\t')) {
        member.remove_prefix(1);
      }
      while (!member.empty() && (member.back() == ' ' || member.back() == '\t')) {
        member.remove_suffix(1);
      }
      if (!member.empty() && each(member)) return true;
    }
  }
  return false;
}

// The first expectation of `request` other than 100-continue, if any. An
// HTTP/1.0 request's are ignored (RFC 9110, 10.1.1).
std::optional<std::string_view> UnmetExpectation(const BeastRequest& request) {
  if (request.version() < 11) return std::nullopt;
  std::optional<std::string_view> unmet;
  AnyExpectation(request, [&](std::string_view member) {
    if (IsContinue(member)) return false;
    unmet = member;
    return true;
  });
  return unmet;
}

}  // namespace

std::optional<HttpResponse> HeadersResponse(const BeastRequestParser& parser) {
  const BeastRequest& request = parser.get();
  if (request.version() >= 11 && request.count(http::field::host) != 1) {
    return HttpResponse::Error(
        400, "bad_request",
        request.count(http::field::host) == 0
            ? "malformed HTTP request: an HTTP/1.1 request needs a Host header"
            : "malformed HTTP request: more than one Host header");
  }
  // RFC 9112, 3.2: a target is a path (origin form), an absolute URL, or
  // `*` (for OPTIONS, which the router answers). `GET healthz` was a 404
  // "no such path" (a probe): the request, not the path, is wrong.
  std::string_view target = View(request.target());
  if (target != "*" && OriginForm(target).substr(0, 1) != "/") {
    return HttpResponse::Error(
        400, "bad_request",
        fmt::format("malformed HTTP request: the request target '{}' is neither a path "
                    "starting with '/' nor an absolute http:// or https:// URL",
                    target.substr(0, 64)));
  }
  // RFC 9110, 10.1.1: an expectation the server cannot meet may be
  // answered 417. Serving the request anyway (as before) told a client
  // that asked for something else that it had been met.
  if (auto unmet = UnmetExpectation(request)) {
    return HttpResponse::Error(
        417, "expectation_failed",
        fmt::format("the expectation '{}' cannot be met: the only one this server knows is "
                    "'Expect: 100-continue'",
                    unmet->substr(0, 64)));
  }
  auto codings = request.equal_range(http::field::transfer_encoding);
  if (codings.first == codings.second) return std::nullopt;
  if (request.version() < 11) {
    return HttpResponse::Error(400, "bad_request",
                               "malformed HTTP request: Transfer-Encoding is not allowed in "
                               "HTTP/1.0; send a Content-Length");
  }
  // One walk over the codings: how often chunked comes, and the first
  // coding that is not chunked (answered 501 once the framing is sound).
  size_t chunked = 0;
  std::optional<std::string_view> unsupported;
  for (auto field = codings.first; field != codings.second; ++field) {
    for (const auto& coding : http::token_list(field->value())) {
      if (beast::iequals(coding, "chunked")) {
        ++chunked;
      } else if (!unsupported) {
        unsupported = View(coding);
      }
    }
  }
  // RFC 9112, 6.1: chunked at most once. The message said "the last must
  // be chunked" of `chunked, chunked`, whose last is (a probe).
  if (chunked > 1) {
    return HttpResponse::Error(400, "bad_request",
                               "malformed HTTP request: the chunked transfer coding is applied "
                               "more than once");
  }
  if (!parser.chunked()) {
    return HttpResponse::Error(400, "bad_request",
                               "malformed HTTP request: the last Transfer-Encoding must be "
                               "chunked, or the body's end cannot be known");
  }
  if (unsupported) {
    return HttpResponse::Error(501, "not_implemented",
                               fmt::format("transfer coding '{}' is not supported: send the body "
                                           "chunked or with a Content-Length",
                                           *unsupported));
  }
  return std::nullopt;
}

bool ExpectsContinue(const BeastRequest& request) { return AnyExpectation(request, IsContinue); }

bool RequestLineRead(const BeastRequestParser& parser, std::string_view unparsed,
                     size_t header_limit) {
  if (!parser.get().target().empty()) return true;
  return unparsed.substr(0, header_limit).find('\n') != std::string_view::npos;
}

std::string_view UnsupportedHttpVersion(std::string_view unparsed) {
  std::string_view line = unparsed.substr(0, unparsed.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t space = line.rfind(' ');
  if (space == std::string_view::npos) return {};
  std::string_view version = line.substr(space + 1);
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (version.size() != 8 || !version.starts_with("HTTP/") || !digit(version[5]) ||
      version[6] != '.' || !digit(version[7])) {
    return {};
  }
  if (version == "HTTP/1.0" || version == "HTTP/1.1") return {};
  return version;
}

std::optional<HttpResponse> MalformedRequestResponse(const HttpServerOptions& options,
                                                     beast::error_code ec, bool request_line_read,
                                                     std::string_view unsupported_version) {
  // RFC 9110, 15.6.6. Beast takes 1.0 and 1.1 only, so an HTTP/1.2 line
  // (which RFC 9112, 2.3 would have served as 1.1) is refused here too,
  // and said so rather than called malformed.
  if (ec == http::error::bad_version && !unsupported_version.empty()) {
    return HttpResponse::Error(
        505, "http_version_not_supported",
        fmt::format("{} is not supported: send HTTP/1.1 (or HTTP/1.0)", unsupported_version));
  }
  // A URL too long is the client's URL, not its headers (a black-box probe
  // sent a 10,000-byte domain and was told its headers were too large).
  if (ec == http::error::header_limit && !request_line_read) {
    return HttpResponse::Error(
        414, "uri_too_long",
        fmt::format("the request line exceeds {} bytes (server.max_header_bytes): shorten the "
                    "URL (a domain has at most 253 characters)",
                    options.header_limit));
  }
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

void RenderResponse(const HttpResponse& response, unsigned version, bool keep_alive, bool head,
                    std::string* out) {
  out->clear();
  auto to = std::back_inserter(*out);
  int status = response.status;
  fmt::format_to(to, "HTTP/{}.{} {} {}\r\n", version / 10, version % 10, status,
                 View(http::obsolete_reason(static_cast<http::status>(status))));
  bool bodiless = status == 204 || status == 304 || (status >= 100 && status < 200);
  if (!bodiless) fmt::format_to(to, "Content-Type: {}\r\n", response.content_type);
  for (const auto& [name, value] : response.headers) fmt::format_to(to, "{}: {}\r\n", name, value);
  if (!bodiless) fmt::format_to(to, "Content-Length: {}\r\n", response.body.size());
  // HTTP/1.1 keeps a connection unless told; HTTP/1.0 closes it unless told.
  if (version >= 11 && !keep_alive) out->append("Connection: close\r\n");
  if (version < 11 && keep_alive) out->append("Connection: keep-alive\r\n");
  out->append("\r\n");
  if (!head && !bodiless) out->append(response.body);
}

void ReleaseWrittenResponse(std::string* wire) {
  if (wire->capacity() > kKeptResponseBytes) {
    std::string().swap(*wire);
  } else {
    wire->clear();
  }
}

}  // namespace catchall
