#include "engine/http.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "test_util.h"

namespace catchall {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string HeaderOf(const HttpResponse& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "<absent>";
}

// Calls the router synchronously and returns the response it produced.
HttpResponse Call(const HttpRouter& router, std::string_view target,
                  HttpMethod method = HttpMethod::kGet) {
  HttpRequest request;
  request.method = method;
  request.target = target;
  std::optional<HttpResponse> response;
  int calls = 0;
  router.Handle(request, [&](HttpResponse&& r) {
    ++calls;
    response = std::move(r);
  });
  EXPECT_EQ(calls, 1);
  return response.value_or(HttpResponse::Error(599, "no_response", ""));
}

HttpHandler Echo(const std::string& name) {
  return [name](const HttpRequest& request, const Responder& respond) {
    respond(HttpResponse::Text(
        200, name + " " + std::string(request.path()) + " ? " + std::string(request.query()),
        "text/plain"));
  };
}

TEST(HttpRouterTest, DispatchesByPathPrefix) {
  HttpRouter router;
  router.Mount("/events", Echo("events"));
  router.Mount("/domains", Echo("domains"));
  router.Mount("/metrics", Echo("metrics"));
  EXPECT_EQ(Call(router, "/events").body, "events /events ? ");
  EXPECT_EQ(Call(router, "/events/a.com/delivered").body, "events /events/a.com/delivered ? ");
  EXPECT_EQ(Call(router, "/domains/a.com?x=1&y").body, "domains /domains/a.com ? x=1&y");
  EXPECT_EQ(Call(router, "/metrics?").body, "metrics /metrics ? ");
  EXPECT_EQ(Call(router, "/events/").status, 200);
}

TEST(HttpRouterTest, UnknownPathsAreJson404) {
  HttpRouter router;
  router.Mount("/events", Echo("events"));
  for (const char* target : {"/", "/eventsx", "/event", "/nope/events", "", "/EVENTS"}) {
    SCOPED_TRACE(target);
    HttpResponse r = Call(router, target);
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_TRUE(test::IsValidJson(r.body)) << r.body;
    EXPECT_EQ(test::JsonStringField(r.body, "code"), "not_found");
  }
  HttpResponse r = Call(router, "/no/\"such\"/path?q=1");
  EXPECT_TRUE(test::IsValidJson(r.body)) << r.body;
  EXPECT_THAT(test::JsonStringField(r.body, "message"), HasSubstr("/no/\"such\"/path"));
  EXPECT_THAT(test::JsonStringField(r.body, "message"), ::testing::Not(HasSubstr("q=1")));
  // A huge path is not echoed in full.
  std::string huge = "/" + std::string(100000, 'x');
  EXPECT_LT(Call(router, huge).body.size(), 1000u);
}

TEST(HttpRouterTest, OptionsAsteriskIsAnsweredForTheServer) {
  HttpRouter router;
  router.Mount("/events", Echo("events"), nullptr, "POST, PUT");
  // What the routes serve, and nothing else (a query node has no PUT).
  EXPECT_EQ(HeaderOf(Call(router, "*", HttpMethod::kOptions), "Allow"), "POST, PUT");
  router.Mount("/domains", Echo("domains"), nullptr, "GET,POST");
  EXPECT_EQ(HeaderOf(Call(router, "*", HttpMethod::kOptions), "Allow"), "GET, HEAD, POST, PUT");
  router.Mount("/metrics", Echo("metrics"));  // GET
  HttpResponse options = Call(router, "*", HttpMethod::kOptions);
  EXPECT_EQ(options.status, 204);
  EXPECT_EQ(HeaderOf(options, "Allow"), "GET, HEAD, POST, PUT");
  HttpResponse get = Call(router, "*", HttpMethod::kGet);
  EXPECT_EQ(get.status, 400);
  EXPECT_EQ(test::JsonStringField(get.body, "code"), "bad_request");
  HttpRequest request;
  request.method = HttpMethod::kOptions;
  request.target = "*";
  std::optional<HttpResponse> early = router.Refusal(request);
  ASSERT_TRUE(early.has_value()) << "answered before any body is read";
  EXPECT_EQ(early->status, 204);
}

TEST(HttpRouterTest, FirstMatchingMountWins) {
  HttpRouter router;
  router.Mount("/a", Echo("first"));
  router.Mount("/a", Echo("second"));
  router.Mount("/a/b", Echo("deeper"));
  EXPECT_THAT(Call(router, "/a/b").body, HasSubstr("first"));
}

TEST(HttpRouterTest, RouteLabelsAndIndexes) {
  HttpRouter router;
  router.Mount("/events", Echo("events"));
  router.Mount("/domains", Echo("domains"));
  EXPECT_EQ(router.RouteCount(), 2u);
  EXPECT_EQ(router.PrefixAt(1), "/domains");
  EXPECT_EQ(router.RouteLabel("/events/x.com/bounced"), "/events");
  EXPECT_EQ(router.RouteLabel("/domains"), "/domains");
  EXPECT_EQ(router.RouteLabel("/random/thing"), "other");
  EXPECT_EQ(router.RouteIndex("/events"), 0u);
  EXPECT_EQ(router.RouteIndex("/domains/a"), 1u);
  EXPECT_EQ(router.RouteIndex("/x"), 2u);
}

// A gate (the API-key check) refuses requests of the paths a route serves;
// a path under its prefix that the handler does not serve is the handler's
// 404 with or without a key, as docs/api.md promises (a black-box probe
// found 401 for /metrics/x without a key, 404 with one).
TEST(HttpRouterTest, GateSkipsPathsTheRouteDoesNotServe) {
  HttpRouter router;
  router.Mount(
      "/metrics",
      [](const HttpRequest& request, const Responder& respond) {
        if (request.path() != "/metrics") return respond(HttpResponse::Error(404, "not_found", ""));
        respond(HttpResponse::Text(200, "ok", "text/plain"));
      },
      [](std::string_view path) { return path == "/metrics"; });
  router.Mount("/open", Echo("open"));  // no shape: the gate sees every path under it
  int gate_calls = 0;
  router.SetGate([&](const HttpRequest&, std::string_view) -> std::optional<HttpResponse> {
    ++gate_calls;
    return HttpResponse::Error(401, "missing_api_key", "");
  });
  EXPECT_EQ(Call(router, "/metrics").status, 401);
  EXPECT_EQ(gate_calls, 1);
  for (const char* target : {"/metrics/", "/metrics/x", "/metrics/x/y"}) {
    SCOPED_TRACE(target);
    EXPECT_EQ(Call(router, target).status, 404);
    HttpRequest request;
    request.target = target;
    std::optional<HttpResponse> refusal = router.Refusal(request);
    ASSERT_TRUE(refusal.has_value()) << "a 404 before the body is read";
    EXPECT_EQ(refusal->status, 404);
  }
  EXPECT_EQ(gate_calls, 1);
  EXPECT_EQ(Call(router, "/open/anything").status, 401);
  EXPECT_EQ(gate_calls, 2);
}

TEST(HttpRouterTest, HandlersMayRespondLater) {
  HttpRouter router;
  Responder saved;
  router.Mount("/later",
               [&](const HttpRequest&, Responder respond) { saved = std::move(respond); });
  HttpRequest request;
  request.target = "/later";
  std::optional<HttpResponse> got;
  router.Handle(request, [&](HttpResponse&& r) { got = std::move(r); });
  EXPECT_FALSE(got.has_value());
  ASSERT_TRUE(saved);
  saved(HttpResponse::NoContent());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status, 204);
}

TEST(HttpRequestTest, PathQueryAndHeaders) {
  HttpRequest r;
  r.target = "/a/b?c=d?e";
  EXPECT_EQ(r.path(), "/a/b");
  EXPECT_EQ(r.query(), "c=d?e");
  r.target = "/a";
  EXPECT_EQ(r.path(), "/a");
  EXPECT_EQ(r.query(), "");
  r.headers = {{"Content-Type", "application/json"}, {"X-A", "1"}, {"x-a", "2"}};
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("CONTENT-TYPE"), "application/json");
  EXPECT_EQ(r.Header("x-a"), "1") << "the first of repeated headers";
  EXPECT_EQ(r.Header("Content-Typ"), "");
  EXPECT_EQ(r.Header("Idempotency-Key"), "");
}

TEST(SplitPathTest, SplitsOnSlashesKeepingEmptySegments) {
  EXPECT_THAT(SplitPath("/a/b/c"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(SplitPath("/events/example.com/delivered"),
              ElementsAre("events", "example.com", "delivered"));
  EXPECT_THAT(SplitPath("/a//b/"), ElementsAre("a", "", "b", ""));
  EXPECT_THAT(SplitPath("/"), ElementsAre(""));
  EXPECT_THAT(SplitPath(""), ElementsAre(""));
  EXPECT_THAT(SplitPath("a/b"), ElementsAre("a", "b"));
  EXPECT_THAT(SplitPath("/a%2Fb"), ElementsAre("a%2Fb")) << "split before decoding";
}

TEST(PercentDecodeTest, DecodesValidEscapes) {
  auto decode = [](std::string_view s) {
    auto r = PercentDecode(s);
    return r.ok() ? *r : "ERROR: " + r.status().message();
  };
  EXPECT_EQ(decode("example.com"), "example.com");
  EXPECT_EQ(decode(""), "");
  EXPECT_EQ(decode("b%C3%BCcher.de"), "bücher.de");
  EXPECT_EQ(decode("b%c3%bccher.de"), "bücher.de");
  EXPECT_EQ(decode("%41"), "A");
  EXPECT_EQ(decode("a%2Fb"), "a/b");
  EXPECT_EQ(decode("%25"), "%");
  EXPECT_EQ(decode("%2541"), "%41") << "decoded once only";
  EXPECT_EQ(decode("a+b"), "a+b") << "'+' is not a space in a path";
  EXPECT_EQ(decode("%00"), std::string("\0", 1));
  EXPECT_EQ(decode("%FF"), "\xff");
}

TEST(DecodeUnreservedEscapesTest, DecodesOnlyUnreservedCharactersOfThePath) {
  auto decode = [](std::string_view s) { return DecodeUnreservedEscapes(s).value_or("UNCHANGED"); };
  EXPECT_EQ(decode("/%65vents/a.com/%64elivered"), "/events/a.com/delivered");
  EXPECT_EQ(decode("/%41%7a%30%2D%2e%5F%7E"), "/Az0-._~");
  // Reserved and other bytes stay escaped: %2F is no separator.
  EXPECT_EQ(decode("/events%2Fa.com/%64elivered"), "/events%2Fa.com/delivered");
  EXPECT_EQ(decode("/domains/b%C3%BCcher.de"), "UNCHANGED");
  EXPECT_EQ(decode("/a%25%36%35"), "/a%2565") << "decoded once only";
  // A malformed escape leaves the whole target for the handlers to refuse:
  // decoding around it could make a new escape that they decode again.
  EXPECT_EQ(decode("/%zz/%6"), "UNCHANGED");
  EXPECT_EQ(decode("/%6/%65"), "UNCHANGED");
  EXPECT_EQ(decode("/domains/%%36%35xample.com"), "UNCHANGED");
  EXPECT_EQ(decode("/%65%"), "UNCHANGED");
  // The query is not the path.
  EXPECT_EQ(decode("/healthz?x=%65"), "UNCHANGED");
  EXPECT_EQ(decode("/%68ealthz?x=%65"), "/healthz?x=%65");
  EXPECT_EQ(decode("/events"), "UNCHANGED");
  EXPECT_EQ(decode(""), "UNCHANGED");
}

TEST(PercentDecodeTest, RejectsMalformedEscapes) {
  for (const char* bad : {"%zz", "%4", "%", "abc%", "abc%4", "%G0", "%0G", "%%41", "a%-1"}) {
    SCOPED_TRACE(bad);
    auto r = PercentDecode(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("percent-escape"));
  }
  EXPECT_THAT(PercentDecode("%4").status().message(), HasSubstr("truncated"));
  EXPECT_THAT(PercentDecode("%zz").status().message(), HasSubstr("malformed"));
}

TEST(HttpResponseTest, ErrorIsJsonWithCodeAndMessage) {
  HttpResponse r = HttpResponse::Error(400, "invalid_domain", "label 'a\"b' has \\ and \n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.content_type, "application/json");
  ASSERT_TRUE(test::IsValidJson(r.body)) << r.body;
  EXPECT_EQ(test::JsonStringField(r.body, "code"), "invalid_domain");
  EXPECT_EQ(test::JsonStringField(r.body, "message"), "label 'a\"b' has \\ and \n");
  HttpResponse bad_utf8 = HttpResponse::Error(400, "x", "bad \xff byte");
  EXPECT_TRUE(test::IsValidJson(bad_utf8.body)) << bad_utf8.body;
}

TEST(HttpResponseTest, ConstructorsSetStatusAndType) {
  HttpResponse json = HttpResponse::Json(201, "{}");
  EXPECT_EQ(json.status, 201);
  EXPECT_EQ(json.content_type, "application/json");
  EXPECT_EQ(json.body, "{}");
  HttpResponse text = HttpResponse::Text(200, "ok", "text/plain; version=0.0.4");
  EXPECT_EQ(text.content_type, "text/plain; version=0.0.4");
  EXPECT_EQ(text.body, "ok");
  HttpResponse none = HttpResponse::NoContent();
  EXPECT_EQ(none.status, 204);
  EXPECT_TRUE(none.body.empty());
  EXPECT_TRUE(none.headers.empty());
}

TEST(HttpResponseTest, MethodNotAllowedListsHeadWithGet) {
  EXPECT_EQ(HeaderOf(HttpResponse::MethodNotAllowed("GET"), "Allow"), "GET, HEAD");
  EXPECT_EQ(HeaderOf(HttpResponse::MethodNotAllowed("GET, POST"), "Allow"), "GET, HEAD, POST");
  EXPECT_EQ(HeaderOf(HttpResponse::MethodNotAllowed("PUT"), "Allow"), "PUT");
  // Methods, not substrings: "GETX" is no GET.
  EXPECT_EQ(HeaderOf(HttpResponse::MethodNotAllowed("PUT, GETX"), "Allow"), "PUT, GETX");
  EXPECT_EQ(HeaderOf(HttpResponse::MethodNotAllowed("GET, HEAD"), "Allow"), "GET, HEAD");
}

TEST(HttpResponseTest, MethodNotAllowedSetsAllow) {
  HttpResponse r = HttpResponse::MethodNotAllowed("GET, HEAD");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "Allow"), "GET, HEAD");
  ASSERT_TRUE(test::IsValidJson(r.body));
  EXPECT_EQ(test::JsonStringField(r.body, "code"), "method_not_allowed");
  EXPECT_THAT(test::JsonStringField(r.body, "message"), HasSubstr("GET, HEAD"));
}

TEST(HttpResponseTest, FromStatusMapsCodes) {
  struct Case {
    Status status;
    int http;
    const char* code;
  };
  const Case cases[] = {
      {Status::InvalidArgument("bad"), 400, "invalid_argument"},
      {Status::NotFound("gone"), 404, "not_found"},
      {Status::TooLarge("big"), 413, "too_large"},
      {Status::Unavailable("busy"), 503, "unavailable"},
      {Status::Timeout("slow"), 503, "timeout"},
      {Status::FailedPrecondition("not ready"), 503, "failed_precondition"},
      {Status::Internal("bug"), 500, "internal"},
      {Status::IoError("disk"), 500, "io_error"},
      {Status::Corruption("bits"), 500, "corruption"},
      {Status::Aborted("fenced"), 500, "aborted"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.code);
    HttpResponse r = HttpResponse::FromStatus(c.status);
    EXPECT_EQ(r.status, c.http);
    ASSERT_TRUE(test::IsValidJson(r.body)) << r.body;
    EXPECT_EQ(test::JsonStringField(r.body, "code"), c.code);
    EXPECT_EQ(test::JsonStringField(r.body, "message"), c.status.message());
    if (c.http == 503) {
      EXPECT_EQ(HeaderOf(r, "Retry-After"), "1");
    } else {
      EXPECT_EQ(HeaderOf(r, "Retry-After"), "<absent>");
    }
  }
  HttpResponse custom = HttpResponse::FromStatus(Status::InvalidArgument("x"), "invalid_domain");
  EXPECT_EQ(custom.status, 400);
  EXPECT_EQ(test::JsonStringField(custom.body, "code"), "invalid_domain");
}

TEST(HttpMethodNameTest, Names) {
  EXPECT_EQ(HttpMethodName(HttpMethod::kGet), "GET");
  EXPECT_EQ(HttpMethodName(HttpMethod::kPut), "PUT");
  EXPECT_EQ(HttpMethodName(HttpMethod::kPost), "POST");
  EXPECT_EQ(HttpMethodName(HttpMethod::kDelete), "DELETE");
  EXPECT_EQ(HttpMethodName(HttpMethod::kOther), "OTHER");
}

}  // namespace
}  // namespace catchall
