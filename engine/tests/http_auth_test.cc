#include "engine/http_auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/metrics.h"
#include "test_util.h"

namespace catchall {
namespace {

using ::testing::HasSubstr;

std::string HeaderOf(const HttpResponse& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "<absent>";
}

// A router with the product's routes (each answering 200 "<route>") behind
// the gate, keys for ingest and for query+metrics.
class HttpAuthTest : public ::testing::Test {
 protected:
  HttpAuthTest() {
    for (const char* route : {"/events", "/domains", "/metrics", "/healthz", "/readyz", "/admin"}) {
      router_.Mount(route, [route](const HttpRequest&, const Responder& respond) {
        respond(HttpResponse::Json(200, std::string("\"") + route + "\""));
      });
    }
    ApiKeys keys;
    EXPECT_TRUE(keys.Add(Sha256Hex("ingest-key") + " ingest\n" + Sha256Hex("reader-key") +
                             " query,metrics\n",
                         "keys.txt")
                    .ok());
    auth_.SetKeys(std::move(keys));
    auth_.Install(&router_);
  }

  HttpResponse Call(std::string_view target, std::optional<std::string> authorization) {
    std::vector<HttpHeader> headers;
    if (authorization) headers.push_back({"authorization", *authorization});
    return CallWith(target, std::move(headers));
  }

  // `target` with these headers.
  HttpResponse CallWith(std::string_view target, std::vector<HttpHeader> headers) {
    HttpRequest request;
    request.method = HttpMethod::kGet;
    request.target = target;
    request.headers = std::move(headers);
    std::optional<HttpResponse> response;
    int calls = 0;
    router_.Handle(request, [&](HttpResponse&& r) {
      ++calls;
      response = std::move(r);
    });
    EXPECT_EQ(calls, 1);
    return response.value_or(HttpResponse::Error(599, "no_response", ""));
  }

  std::string Denied(std::string_view scope, std::string_view reason) {
    std::string want = "catchall_http_auth_denied_total{reason=\"" + std::string(reason) +
                       "\",scope=\"" + std::string(scope) + "\"} ";
    std::string text = metrics_.Serialize();
    size_t at = text.find(want);
    if (at == std::string::npos) return "<absent>";
    return text.substr(at + want.size(), text.find('\n', at) - at - want.size());
  }

  Metrics metrics_;
  HttpRouter router_;
  HttpAuth auth_{metrics_};
};

TEST_F(HttpAuthTest, MissingKeyIs401WithWwwAuthenticateAndAJsonError) {
  HttpResponse r = Call("/events/a.example/delivered", std::nullopt);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(HeaderOf(r, "WWW-Authenticate"), "Bearer");
  EXPECT_TRUE(test::IsValidJson(r.body)) << r.body;
  EXPECT_EQ(test::JsonStringField(r.body, "code"), "missing_api_key");
  EXPECT_THAT(test::JsonStringField(r.body, "message"), HasSubstr("Authorization: Bearer"));
  EXPECT_EQ(Denied("ingest", "missing"), "1");
}

TEST_F(HttpAuthTest, UnknownKeyIs401) {
  HttpResponse r = Call("/domains/a.example", "Bearer ingest-key2");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(HeaderOf(r, "WWW-Authenticate"), "Bearer");
  EXPECT_EQ(test::JsonStringField(r.body, "code"), "unknown_api_key");
  EXPECT_EQ(Denied("query", "unknown"), "1");
}

TEST_F(HttpAuthTest, WrongScopeIs403NamingTheScope) {
  HttpResponse r = Call("/domains/a.example", "Bearer ingest-key");
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(test::IsValidJson(r.body)) << r.body;
  EXPECT_EQ(test::JsonStringField(r.body, "code"), "insufficient_scope");
  EXPECT_THAT(test::JsonStringField(r.body, "message"), HasSubstr("'query'"));
  EXPECT_EQ(HeaderOf(r, "WWW-Authenticate"),
            "Bearer error=\"insufficient_scope\", scope=\"query\"");
  EXPECT_EQ(Denied("query", "scope"), "1");
  EXPECT_EQ(Call("/events", "Bearer reader-key").status, 403);
  EXPECT_EQ(Denied("ingest", "scope"), "1");
}

TEST_F(HttpAuthTest, TheRightKeyReachesTheHandler) {
  EXPECT_EQ(Call("/events/a.example/delivered", "Bearer ingest-key").body, "\"/events\"");
  EXPECT_EQ(Call("/domains/a.example", "bearer reader-key").body, "\"/domains\"");
  EXPECT_EQ(Call("/metrics", "Bearer reader-key").body, "\"/metrics\"");
  for (std::string_view scope : {"ingest", "query", "metrics"}) {
    for (std::string_view reason : {"missing", "malformed", "unknown", "scope"}) {
      EXPECT_EQ(Denied(scope, reason), "0") << scope << " " << reason;
    }
  }
}

TEST_F(HttpAuthTest, ProbesStayOpenAndUnknownPathsStay404) {
  EXPECT_EQ(Call("/healthz", std::nullopt).status, 200);
  EXPECT_EQ(Call("/readyz", "Bearer garbage").status, 200);
  EXPECT_EQ(Call("/nowhere", std::nullopt).status, 404);
}

TEST_F(HttpAuthTest, ARouteWithoutAScopeIsClosedEvenToAValidKey) {
  EXPECT_EQ(Call("/admin", "Bearer reader-key").status, 403);
  EXPECT_EQ(Call("/admin", std::nullopt).status, 401);
  EXPECT_EQ(Denied("none", "scope"), "1");
}

TEST_F(HttpAuthTest, MalformedHeadersAre401JsonAndCounted) {
  const std::string headers[] = {
      "Basic dXNlcjpwYXNz",
      "Bearer",
      "Bearer abc def",
      "Bearer \x01\x02",
      "Bearer \xff\xfe",
      "Bearer " + std::string(100000, 'k'),
      std::string(100000, ' ') + "x",
  };
  for (const std::string& h : headers) {
    SCOPED_TRACE(h.substr(0, 20));
    HttpResponse r = Call("/metrics", h);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(HeaderOf(r, "WWW-Authenticate"), "Bearer");
    EXPECT_TRUE(test::IsValidJson(r.body)) << r.body;
    EXPECT_EQ(test::JsonStringField(r.body, "code"), "malformed_authorization");
  }
  EXPECT_EQ(Denied("metrics", "malformed"), std::to_string(std::size(headers)));
}

// Two keys, in either order: refused, whichever of them would pass (a
// probe found the first one silently won).
TEST_F(HttpAuthTest, TwoAuthorizationHeadersAre401Malformed) {
  for (const auto& [first, second] : {std::pair{"Bearer ingest-key", "Bearer reader-key"},
                                      std::pair{"Bearer reader-key", "Bearer ingest-key"}}) {
    HttpResponse r =
        CallWith("/domains/a.example", {{"authorization", first}, {"Authorization", second}});
    EXPECT_EQ(r.status, 401) << first;
    EXPECT_EQ(test::JsonStringField(r.body, "code"), "malformed_authorization");
    EXPECT_THAT(test::JsonStringField(r.body, "message"), HasSubstr("more than once"));
  }
  EXPECT_EQ(Denied("query", "malformed"), "2");
}

TEST_F(HttpAuthTest, ManyFailedAttemptsAreEachRefusedAndCounted) {
  for (int i = 0; i < 5000; ++i) {
    ASSERT_EQ(Call("/events", "Bearer guess-" + std::to_string(i)).status, 401) << i;
  }
  EXPECT_EQ(Denied("ingest", "unknown"), "5000");
  EXPECT_EQ(Call("/events", "Bearer ingest-key").status, 200) << "the real key still works";
}

TEST_F(HttpAuthTest, SetKeysSwapsTheWholeSet) {
  ApiKeys next;
  ASSERT_TRUE(next.Add(Sha256Hex("new-key") + " ingest", "keys.txt").ok());
  auth_.SetKeys(std::move(next));
  EXPECT_EQ(auth_.KeyCount(), 1U);
  EXPECT_EQ(Call("/events", "Bearer new-key").status, 200);
  EXPECT_EQ(Call("/events", "Bearer ingest-key").status, 401);
}

TEST(HttpAuthMetricTest, TheDenialCountersExistAtZeroWithoutKeys) {
  Metrics metrics;
  HttpAuth auth(metrics);
  std::string text = metrics.Serialize();
  EXPECT_THAT(text,
              HasSubstr("catchall_http_auth_denied_total{reason=\"missing\",scope=\"ingest\"} 0"));
  EXPECT_THAT(text,
              HasSubstr("catchall_http_auth_denied_total{reason=\"scope\",scope=\"metrics\"} 0"));
}

}  // namespace
}  // namespace catchall
