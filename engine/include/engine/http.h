// The HTTP contract between the server and the services (ingest, query,
// runtime endpoints). A handler is a function from a request to exactly one
// response, delivered through a Responder, synchronously or later from any
// thread; handlers never see sockets, so they are tested by calling them.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/status.h"

namespace catchall {

enum class HttpMethod { kGet, kHead, kPost, kPut, kDelete, kPatch, kOptions, kOther };

std::string_view HttpMethodName(HttpMethod method);

struct HttpHeader {
  std::string_view name;
  std::string_view value;
};

// A request as the handler sees it. The views are valid only during the
// handler call: a handler that responds later copies what it needs.
struct HttpRequest {
  HttpMethod method = HttpMethod::kGet;
  std::string_view target;  // path and query, as sent
  std::string_view body;
  std::vector<HttpHeader> headers;
  std::chrono::steady_clock::time_point received{};

  std::string_view path() const { return target.substr(0, target.find('?')); }
  std::string_view query() const {
    size_t q = target.find('?');
    return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  }
  // Value of the first header named `name` (case-insensitive), or empty.
  std::string_view Header(std::string_view name) const;
  // How many headers are named `name` (case-insensitive).
  size_t HeaderCount(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse Json(int status, std::string body);
  static HttpResponse Text(int status, std::string body, std::string content_type);
  static HttpResponse NoContent() { return HttpResponse{204, {}, {}, {}}; }
  // {"code":"<code>","message":"<message>"}
  static HttpResponse Error(int status, std::string_view code, std::string_view message);
  // 405 with an Allow header listing `allowed` (and HEAD where GET is).
  static HttpResponse MethodNotAllowed(std::string_view allowed);
  // 404 not_found naming `path` (its first 200 bytes).
  static HttpResponse NoSuchPath(std::string_view path);
  // Maps a Status to its HTTP status; `code` names the error for clients.
  static HttpResponse FromStatus(const Status& status, std::string_view code = {});
};

// Delivers the response of one request. Call exactly once, from any thread.
using Responder = std::function<void(HttpResponse&&)>;
using HttpHandler = std::function<void(const HttpRequest&, Responder)>;
// Runs before the handler of a mounted route (`route` is its prefix):
// nullopt lets the request through, a response is answered instead of the
// handler's (the API-key check, engine/http_auth.h).
using HttpGate = std::function<std::optional<HttpResponse>(const HttpRequest&, std::string_view)>;

// Dispatches requests by path prefix ("/events" serves "/events" and
// "/events/..."); anything else is a JSON 404. Mount everything before the
// server starts; Handle is then thread-safe.
class HttpRouter {
 public:
  // Whether a handler serves `path` (one of its prefix's paths) at all.
  using PathShape = bool (*)(std::string_view path);

  // `serves`, when given, names the paths under `prefix` that the handler
  // answers with anything but a 404: other paths skip the gate and go
  // straight to the handler's 404, so that an unknown path is a 404 with or
  // without an API key (docs/api.md). `methods` lists the methods the
  // handler serves on some path ("GET, POST"; HEAD goes with GET), for the
  // server-wide `OPTIONS *`.
  void Mount(std::string prefix, HttpHandler handler, PathShape serves = nullptr,
             std::string_view methods = "GET");
  // Puts `gate` in front of every mounted route; unmatched paths still get
  // the plain 404. Without a gate, Handle costs one branch more.
  void SetGate(HttpGate gate) { gate_ = std::move(gate); }
  void Handle(const HttpRequest& request, Responder respond) const;
  // What Handle would answer `request` without its handler: the 404 of an
  // unmatched path, the gate's refusal, or the answer to `OPTIONS *`;
  // nullopt if the handler would run. For a request whose body has not
  // been read yet: the server answers it from its headers, without reading
  // the body (or asking for it with `100 Continue`).
  std::optional<HttpResponse> Refusal(const HttpRequest& request) const;
  // Low-cardinality label for metrics: the mounted prefix, or "other".
  std::string_view RouteLabel(std::string_view path) const;
  // Index of RouteLabel in [0, RouteCount()].
  size_t RouteIndex(std::string_view path) const;
  size_t RouteCount() const { return routes_.size(); }
  // REQUIRES: i < RouteCount()
  const std::string& PrefixAt(size_t i) const { return routes_[i].prefix; }

 private:
  struct Route {
    std::string prefix;
    HttpHandler handler;
    PathShape serves;
    std::string methods;
  };
  // The answer to a request whose target is `*` (RFC 9112, 3.2.4), if it is.
  std::optional<HttpResponse> AsteriskForm(const HttpRequest& request) const;
  // Whether `route`'s handler serves `path`, one of its prefix's paths.
  static bool Serves(const Route& route, std::string_view path) {
    return route.serves == nullptr || route.serves(path);
  }
  std::vector<Route> routes_;
  HttpGate gate_;
};

// Splits "/a/b/c" into {"a", "b", "c"} (empty segments kept).
std::vector<std::string_view> SplitPath(std::string_view path);

// Decodes %XX escapes of a URL path segment. InvalidArgument on a malformed
// escape. '+' is left as is (it is only special in query strings).
Result<std::string> PercentDecode(std::string_view segment);

// `target` with the %XX escapes of unreserved characters (letters, digits,
// '-', '.', '_', '~') in its path decoded, which RFC 3986, 6.2.2.2 says
// name the same resource: `/%65vents` is `/events`. Other escapes (`%2F`
// stays a byte of a segment, not a separator) and the query are left as
// they are. nullopt when there is nothing to decode, or when the path
// holds a malformed escape (then nothing is decoded: around it, a new
// escape could be made, `%%36%35` -> `%65`).
std::optional<std::string> DecodeUnreservedEscapes(std::string_view target);

}  // namespace catchall
