#include "engine/http.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <strings.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "engine/json_writer.h"

namespace catchall {

std::string_view HttpMethodName(HttpMethod method) {
  switch (method) {
    case HttpMethod::kGet: return "GET";
    case HttpMethod::kHead: return "HEAD";
    case HttpMethod::kPost: return "POST";
    case HttpMethod::kPut: return "PUT";
    case HttpMethod::kDelete: return "DELETE";
    case HttpMethod::kPatch: return "PATCH";
    case HttpMethod::kOptions: return "OPTIONS";
    case HttpMethod::kOther: return "OTHER";
  }
  return "OTHER";
}

namespace {
bool Named(const HttpHeader& h, std::string_view name) {
  return h.name.size() == name.size() && strncasecmp(h.name.data(), name.data(), name.size()) == 0;
}
}  // namespace

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& h : headers) {
    if (Named(h, name)) return h.value;
  }
  return {};
}

size_t HttpRequest::HeaderCount(std::string_view name) const {
  size_t n = 0;
  for (const auto& h : headers) n += Named(h, name) ? 1 : 0;
  return n;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  return HttpResponse{status, std::move(body), "application/json", {}};
}

HttpResponse HttpResponse::Text(int status, std::string body, std::string content_type) {
  return HttpResponse{status, std::move(body), std::move(content_type), {}};
}

HttpResponse HttpResponse::Error(int status, std::string_view code, std::string_view message) {
  std::string body = R"({"code":)";
  AppendJsonString(code, &body);
  body += R"(,"message":)";
  AppendJsonString(message, &body);
  body += '}';
  return Json(status, std::move(body));
}

namespace {
// "GET, POST" -> {"GET", "POST"}.
std::vector<std::string_view> SplitMethods(std::string_view list) {
  std::vector<std::string_view> out;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view m = list.substr(0, comma);
    while (!m.empty() && m.front() == ' ') m.remove_prefix(1);
    while (!m.empty() && m.back() == ' ') m.remove_suffix(1);
    if (!m.empty()) out.push_back(m);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace

HttpResponse HttpResponse::MethodNotAllowed(std::string_view allowed) {
  // Every GET is also served as HEAD (RFC 9110, 9.3.2), so Allow lists it,
  // as OPTIONS * does: it said "GET" alone (a probe).
  std::vector<std::string_view> listed = SplitMethods(allowed);
  auto get = std::find(listed.begin(), listed.end(), "GET");
  if (get != listed.end() && std::find(listed.begin(), listed.end(), "HEAD") == listed.end()) {
    listed.insert(get + 1, "HEAD");
  }
  std::string methods = fmt::format("{}", fmt::join(listed, ", "));
  HttpResponse r =
      Error(405, "method_not_allowed", fmt::format("this path accepts only {}", methods));
  r.headers.emplace_back("Allow", std::move(methods));
  return r;
}

HttpResponse HttpResponse::NoSuchPath(std::string_view path) {
  return Error(404, "not_found", fmt::format("no such path: {}", path.substr(0, 200)));
}

HttpResponse HttpResponse::FromStatus(const Status& status, std::string_view code) {
  int http = 500;
  switch (status.code()) {
    case Code::kOk: http = 200; break;
    case Code::kInvalidArgument: http = 400; break;
    case Code::kNotFound: http = 404; break;
    case Code::kTooLarge: http = 413; break;
    case Code::kUnavailable:
    case Code::kTimeout:
    case Code::kFailedPrecondition: http = 503; break;
    case Code::kNoSpace: http = 507; break;
    default: http = 500; break;
  }
  HttpResponse r = Error(http, code.empty() ? CodeName(status.code()) : code, status.message());
  if (http == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

void HttpRouter::Mount(std::string prefix, HttpHandler handler, PathShape serves,
                       std::string_view methods) {
  routes_.push_back(Route{std::move(prefix), std::move(handler), serves, std::string(methods)});
}

// The asterisk-form target, `OPTIONS * HTTP/1.1`, asks about the server
// as a whole (RFC 9110, 9.3.7): it was a 404 "no such path: *" (a probe).
// Allow lists what some route serves. Any other method with it is
// malformed (RFC 9112, 3.2.4).
std::optional<HttpResponse> HttpRouter::AsteriskForm(const HttpRequest& request) const {
  if (request.target != "*") return std::nullopt;
  if (request.method != HttpMethod::kOptions) {
    return HttpResponse::Error(400, "bad_request",
                               "the request target '*' is for OPTIONS only; other methods "
                               "need a path such as /domains/example.com");
  }
  auto serves = [&](std::string_view method) {
    return std::any_of(routes_.begin(), routes_.end(), [&](const Route& r) {
      for (std::string_view m : SplitMethods(r.methods)) {
        if (m == method) return true;
      }
      return false;
    });
  };
  std::string allow;
  for (std::string_view method : {"GET", "HEAD", "POST", "PUT"}) {
    const bool served = method == "HEAD" ? serves("GET") : serves(method);
    if (!served) continue;
    if (!allow.empty()) allow += ", ";
    allow += method;
  }
  HttpResponse r = HttpResponse::NoContent();
  if (!allow.empty()) r.headers.emplace_back("Allow", std::move(allow));
  return r;
}

namespace {
bool Matches(std::string_view path, std::string_view prefix) {
  return path.size() >= prefix.size() && path.substr(0, prefix.size()) == prefix &&
         (path.size() == prefix.size() || path[prefix.size()] == '/');
}

}  // namespace

void HttpRouter::Handle(const HttpRequest& request, Responder respond) const {
  if (std::optional<HttpResponse> answer = AsteriskForm(request)) {
    return respond(std::move(*answer));
  }
  std::string_view path = request.path();
  size_t i = RouteIndex(path);
  if (i == routes_.size()) return respond(HttpResponse::NoSuchPath(path));
  const Route& r = routes_[i];
  if (gate_ && Serves(r, path)) {
    if (std::optional<HttpResponse> refusal = gate_(request, r.prefix)) {
      return respond(std::move(*refusal));
    }
  }
  r.handler(request, std::move(respond));
}

std::optional<HttpResponse> HttpRouter::Refusal(const HttpRequest& request) const {
  if (std::optional<HttpResponse> answer = AsteriskForm(request)) return answer;
  std::string_view path = request.path();
  size_t i = RouteIndex(path);
  if (i == routes_.size()) return HttpResponse::NoSuchPath(path);
  const Route& r = routes_[i];
  // A path the route does not serve is a 404 before its body is read, with
  // or without a key.
  if (!Serves(r, path)) return HttpResponse::NoSuchPath(path);
  return gate_ ? gate_(request, r.prefix) : std::nullopt;
}

std::string_view HttpRouter::RouteLabel(std::string_view path) const {
  size_t i = RouteIndex(path);
  return i == routes_.size() ? std::string_view("other") : routes_[i].prefix;
}

size_t HttpRouter::RouteIndex(std::string_view path) const {
  for (size_t i = 0; i < routes_.size(); ++i) {
    if (Matches(path, routes_[i].prefix)) return i;
  }
  return routes_.size();
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      parts.push_back(path.substr(start));
      break;
    }
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

namespace {
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool Unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}
}  // namespace

std::optional<std::string> DecodeUnreservedEscapes(std::string_view target) {
  const size_t path_end = std::min(target.find('?'), target.size());
  if (target.substr(0, path_end).find('%') == std::string_view::npos) return std::nullopt;
  std::string out;
  out.reserve(target.size());
  bool decoded = false;
  size_t i = 0;
  for (; i < path_end; ++i) {
    if (target[i] == '%') {
      // A malformed escape leaves the whole target as sent, for the
      // handlers to refuse: decoding around it could make a new escape
      // out of it (`%%36%35` -> `%65`), which they would decode again (a
      // review).
      if (i + 2 >= path_end) return std::nullopt;
      const int hi = HexDigit(target[i + 1]);
      const int lo = HexDigit(target[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      const char c = static_cast<char>(hi * 16 + lo);
      if (Unreserved(c)) {
        out.push_back(c);
        decoded = true;
        i += 2;
        continue;
      }
    }
    out.push_back(target[i]);
  }
  if (!decoded) return std::nullopt;
  out.append(target.substr(path_end));
  return out;
}

Result<std::string> PercentDecode(std::string_view segment) {
  std::string out;
  out.reserve(segment.size());
  for (size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] != '%') {
      out.push_back(segment[i]);
      continue;
    }
    if (i + 2 >= segment.size()) {
      return Status::InvalidArgument("truncated percent-escape in the URL");
    }
    int hi = HexDigit(segment[i + 1]);
    int lo = HexDigit(segment[i + 2]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument("malformed percent-escape in the URL");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace catchall
