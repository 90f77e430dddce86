#include "engine/http_auth.h"

#include <fmt/format.h>

#include "auth_probe.h"

namespace catchall {

HttpAuth::HttpAuth(Metrics& metrics)
    : probe_(std::make_unique<AuthProbe>(metrics)), keys_(std::make_shared<const ApiKeys>()) {}

HttpAuth::~HttpAuth() = default;

void HttpAuth::SetKeys(ApiKeys keys) {
  auto next = std::make_shared<const ApiKeys>(std::move(keys));
  std::lock_guard lock(mu_);
  keys_.swap(next);
  // The old set is released here or by the last request still holding it.
}

size_t HttpAuth::KeyCount() const { return Current()->size(); }

std::shared_ptr<const ApiKeys> HttpAuth::Current() const {
  std::lock_guard lock(mu_);
  return keys_;
}

void HttpAuth::Install(HttpRouter* router) const {
  router->SetGate(
      [this](const HttpRequest& request, std::string_view route) { return Check(request, route); });
}

std::optional<HttpResponse> HttpAuth::Check(const HttpRequest& request,
                                            std::string_view route) const {
  ApiScope scope = ApiScope::kIngest;
  RouteAccess access = AccessOfRoute(route, &scope);
  if (access == RouteAccess::kOpen) return std::nullopt;
  std::optional<ApiScope> needed;
  if (access == RouteAccess::kScoped) needed = scope;

  std::string_view token;
  std::string_view why;
  // Two keys make the request's authority ambiguous: whichever one a
  // proxy or this server picked, the other was not checked (a probe found
  // the first silently won).
  AuthOutcome outcome = AuthOutcome::kMalformed;
  if (request.HeaderCount("Authorization") > 1) {
    why = "'Authorization' is sent more than once; send one key";
  } else {
    outcome = ParseBearer(request.Header("Authorization"), &token, &why);
  }
  if (outcome == AuthOutcome::kAllowed) outcome = Current()->CheckToken(token, needed);
  if (outcome == AuthOutcome::kAllowed) return std::nullopt;

  probe_->OnDenied(needed, outcome);
  HttpResponse r;
  switch (outcome) {
    case AuthOutcome::kMissing:
      r = HttpResponse::Error(401, "missing_api_key",
                              "this path needs an API key: send 'Authorization: Bearer <key>'");
      break;
    case AuthOutcome::kMalformed:
      r = HttpResponse::Error(401, "malformed_authorization", why);
      break;
    case AuthOutcome::kUnknown:
      r = HttpResponse::Error(401, "unknown_api_key", "the API key is not known (revoked?)");
      break;
    default:
      r = HttpResponse::Error(403, "insufficient_scope",
                              needed
                                  ? fmt::format("the API key lacks the '{}' scope this path needs",
                                                ApiScopeName(*needed))
                                  : std::string("no API key scope grants this path"));
      // RFC 6750 section 3: a 403 names the scope that would have sufficed.
      r.headers.emplace_back("WWW-Authenticate",
                             needed
                                 ? fmt::format("Bearer error=\"insufficient_scope\", scope=\"{}\"",
                                               ApiScopeName(*needed))
                                 : std::string("Bearer error=\"insufficient_scope\""));
      return r;
  }
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

}  // namespace catchall
