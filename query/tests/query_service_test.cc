#include "query/query_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/metrics.h"

namespace catchall {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Counters from a map; records what it was asked; fails on demand.
class FakeStatusReader : public StatusReader {
 public:
  Result<DomainCounts> Get(std::string_view domain) const override {
    gets.emplace_back(domain);
    if (!error.ok()) return error;
    auto it = counts.find(std::string(domain));
    return it == counts.end() ? DomainCounts{} : it->second;
  }
  Status MultiGet(const std::vector<std::string>& domains,
                  std::vector<DomainCounts>* out) const override {
    multi_gets.push_back(domains);
    if (!error.ok()) return error;
    out->clear();
    for (const std::string& d : domains) {
      auto it = counts.find(d);
      out->push_back(it == counts.end() ? DomainCounts{} : it->second);
    }
    return Status::Ok();
  }

  std::map<std::string, DomainCounts> counts;
  Status error;
  mutable std::vector<std::string> gets;
  mutable std::vector<std::vector<std::string>> multi_gets;
};

// Parsed JSON, owned.
struct Json {
  explicit Json(std::string_view text) : padded(text) {
    ok = parser.parse(padded).get(root) == simdjson::SUCCESS;
  }
  simdjson::padded_string padded;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  bool ok = false;
};

std::string Str(simdjson::dom::element e, std::string_view key) {
  std::string_view v;
  if (e[key].get_string().get(v) != simdjson::SUCCESS) return "<missing>";
  return std::string(v);
}

int64_t Int(simdjson::dom::element e, std::string_view key) {
  int64_t v = -1;
  if (e[key].get_int64().get(v) != simdjson::SUCCESS) return -1;
  return v;
}

// One answer of a status lookup, flattened for comparisons.
struct Answer {
  std::string domain;
  std::string status;  // or "error:<code>"
  int64_t delivered = -1;
  int64_t bounced = -1;
  bool operator==(const Answer&) const = default;
};

void PrintTo(const Answer& a, std::ostream* os) {
  *os << "{" << a.domain << ", " << a.status << ", " << a.delivered << ", " << a.bounced << "}";
}

Answer ToAnswer(simdjson::dom::element e) {
  simdjson::dom::element error;
  if (e["error"].get(error) == simdjson::SUCCESS) {
    EXPECT_NE(Str(error, "message"), "<missing>");
    return Answer{Str(e, "domain"), "error:" + Str(error, "code"), -1, -1};
  }
  return Answer{Str(e, "domain"), Str(e, "status"), Int(e, "delivered"), Int(e, "bounced")};
}

struct Captured {
  int calls = 0;
  HttpResponse response;
  std::string Header(std::string_view name) const {
    for (const auto& [k, v] : response.headers) {
      if (k == name) return v;
    }
    return "<absent>";
  }
  std::string Code() const {
    Json json(response.body);
    return json.ok ? Str(json.root, "code") : "<invalid json>";
  }
};

class QueryServiceTest : public ::testing::Test {
 protected:
  QueryServiceTest() { MakeService(QueryOptions{}); }

  void MakeService(QueryOptions options) {
    service_.reset();
    metrics_ = std::make_unique<Metrics>();
    service_ = std::make_unique<QueryService>(options, &reader_, metrics_.get());
  }

  Captured Send(HttpMethod method, std::string_view target, std::string_view body = {}) {
    HttpRequest request;
    request.method = method;
    request.target = target;
    request.body = body;
    Captured c;
    service_->Handle(request, [&c](HttpResponse&& r) {
      ++c.calls;
      c.response = std::move(r);
    });
    EXPECT_EQ(c.calls, 1) << target;
    return c;
  }

  // GET /domains/{segment} answered 200, flattened.
  Answer GetStatus(std::string_view segment) {
    std::string target = "/domains/" + std::string(segment);
    Captured c = Send(HttpMethod::kGet, target);
    EXPECT_EQ(c.response.status, 200) << target << ": " << c.response.body;
    Json json(c.response.body);
    if (!json.ok) return Answer{"<invalid json>", "", -1, -1};
    return ToAnswer(json.root);
  }

  // POST /domains/lookup answered 200, flattened.
  std::vector<Answer> Lookup(std::string_view body) {
    Captured c = Send(HttpMethod::kPost, "/domains/lookup", body);
    EXPECT_EQ(c.response.status, 200) << body << ": " << c.response.body;
    std::vector<Answer> out;
    Json json(c.response.body);
    simdjson::dom::array results;
    if (!json.ok || json.root["results"].get_array().get(results) != simdjson::SUCCESS) {
      ADD_FAILURE() << "no results array in " << c.response.body;
      return out;
    }
    for (simdjson::dom::element e : results) out.push_back(ToAnswer(e));
    return out;
  }

  FakeStatusReader reader_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<QueryService> service_;
};

// --- GET /domains/{domain} ----------------------------------------------------

TEST_F(QueryServiceTest, StatusAtTheThresholdIsUnknownAndAboveItCatchAll) {
  reader_.counts["a999.com"] = {999, 0};
  reader_.counts["a1000.com"] = {1000, 0};
  reader_.counts["a1001.com"] = {1001, 0};
  EXPECT_EQ(GetStatus("a999.com"), (Answer{"a999.com", "unknown", 999, 0}));
  EXPECT_EQ(GetStatus("a1000.com"), (Answer{"a1000.com", "unknown", 1000, 0}));
  EXPECT_EQ(GetStatus("a1001.com"), (Answer{"a1001.com", "catch-all", 1001, 0}));
}

TEST_F(QueryServiceTest, OneBounceMakesADomainNotCatchAll) {
  reader_.counts["bounced.com"] = {50000, 1};
  reader_.counts["only-bounces.com"] = {0, 3};
  EXPECT_EQ(GetStatus("bounced.com"), (Answer{"bounced.com", "not catch-all", 50000, 1}));
  EXPECT_EQ(GetStatus("only-bounces.com"), (Answer{"only-bounces.com", "not catch-all", 0, 3}));
}

TEST_F(QueryServiceTest, ThresholdIsConfigurable) {
  MakeService(QueryOptions{.catchall_threshold = 5, .max_lookup_domains = 10});
  reader_.counts["five.com"] = {5, 0};
  reader_.counts["six.com"] = {6, 0};
  EXPECT_EQ(GetStatus("five.com").status, "unknown");
  EXPECT_EQ(GetStatus("six.com").status, "catch-all");
}

TEST_F(QueryServiceTest, NeverSeenDomainIsUnknownWithZeroCounts) {
  EXPECT_EQ(GetStatus("never-seen.example"), (Answer{"never-seen.example", "unknown", 0, 0}));
}

TEST_F(QueryServiceTest, LookupDomainIsNormalizedBeforeReading) {
  reader_.counts["example.com"] = {7, 0};
  reader_.counts["xn--bcher-kva.de"] = {2000, 0};
  EXPECT_EQ(GetStatus("EXAMPLE.Com."), (Answer{"example.com", "unknown", 7, 0}));
  EXPECT_EQ(GetStatus("B%C3%BCcher.de"), (Answer{"xn--bcher-kva.de", "catch-all", 2000, 0}));
  EXPECT_THAT(reader_.gets, ElementsAre("example.com", "xn--bcher-kva.de"));
}

TEST_F(QueryServiceTest, InvalidDomainIs400AndIsNotLookedUp) {
  for (std::string_view target : {"/domains/exa_mple.com", "/domains/1.2.3.4", "/domains/a..b",
                                  "/domains/bad%zzescape.com", "/domains/%00.com"}) {
    Captured c = Send(HttpMethod::kGet, target);
    EXPECT_EQ(c.response.status, 400) << target;
    EXPECT_EQ(c.Code(), "invalid_domain") << target;
  }
  EXPECT_TRUE(reader_.gets.empty());
}

TEST_F(QueryServiceTest, WrongMethodsAre405WithAllow) {
  Captured put = Send(HttpMethod::kPut, "/domains/example.com");
  EXPECT_EQ(put.response.status, 405);
  EXPECT_EQ(put.Header("Allow"), "GET, HEAD");
  EXPECT_EQ(put.Code(), "method_not_allowed");
  Captured post = Send(HttpMethod::kPost, "/domains/example.com");
  EXPECT_EQ(post.response.status, 405);
  EXPECT_EQ(post.Header("Allow"), "GET, HEAD");
  Captured del = Send(HttpMethod::kDelete, "/domains/lookup");
  EXPECT_EQ(del.response.status, 405);
  EXPECT_EQ(del.Header("Allow"), "GET, HEAD, POST");
  EXPECT_TRUE(reader_.gets.empty());
}

TEST_F(QueryServiceTest, UnknownPathsAre404) {
  for (std::string_view target : {"/domains", "/domains/", "/domains/example.com/extra"}) {
    Captured c = Send(HttpMethod::kGet, target);
    EXPECT_EQ(c.response.status, 404) << target;
    EXPECT_EQ(c.Code(), "not_found") << target;
    // The router lets these skip the API-key check: a 404 with or without one.
    EXPECT_FALSE(QueryService::ServesPath(target)) << target;
  }
  for (std::string_view target : {"/domains/example.com", "/domains/lookup"}) {
    EXPECT_TRUE(QueryService::ServesPath(target)) << target;
  }
}

TEST_F(QueryServiceTest, StoreErrorIs503StoreUnavailable) {
  reader_.error = Status::Unavailable("restoring");
  Captured c = Send(HttpMethod::kGet, "/domains/example.com");
  EXPECT_EQ(c.response.status, 503);
  EXPECT_EQ(c.Code(), "store_unavailable");
  EXPECT_EQ(c.Header("Retry-After"), "1");
}

TEST_F(QueryServiceTest, StoreIoErrorIsAlso503StoreUnavailable) {
  reader_.error = Status::IoError("read failed");
  Captured c = Send(HttpMethod::kGet, "/domains/example.com");
  EXPECT_EQ(c.response.status, 503) << c.response.body;
  EXPECT_EQ(c.Code(), "store_unavailable");
  EXPECT_EQ(c.Header("Retry-After"), "1");
}

// --- POST /domains/lookup -----------------------------------------------------------

TEST_F(QueryServiceTest, LookupAnswersInInputOrderWithObjectBody) {
  reader_.counts["a.com"] = {3, 0};
  reader_.counts["b.org"] = {10, 2};
  reader_.counts["c.net"] = {1001, 0};
  EXPECT_THAT(
      Lookup(R"({"domains": ["c.net", "A.COM", "never.io", "b.org."]})"),
      ElementsAre(Answer{"c.net", "catch-all", 1001, 0}, Answer{"a.com", "unknown", 3, 0},
                  Answer{"never.io", "unknown", 0, 0}, Answer{"b.org", "not catch-all", 10, 2}));
}

TEST_F(QueryServiceTest, LookupAcceptsABareArray) {
  reader_.counts["xn--bcher-kva.de"] = {1, 1};
  EXPECT_THAT(Lookup(R"(["bücher.de", "x.com"])"),
              ElementsAre(Answer{"xn--bcher-kva.de", "not catch-all", 1, 1},
                          Answer{"x.com", "unknown", 0, 0}));
}

TEST_F(QueryServiceTest, LookupSkipsAByteOrderMarkStartingTheBody) {
  reader_.counts["a.com"] = {2, 0};
  EXPECT_THAT(Lookup("\xEF\xBB\xBF{\"domains\": [\"a.com\"]}"),
              ElementsAre(Answer{"a.com", "unknown", 2, 0}));
}

TEST_F(QueryServiceTest, LookupReportsInvalidDomainsInPlace) {
  reader_.counts["a.com"] = {1, 0};
  reader_.counts["b.com"] = {2, 0};
  EXPECT_THAT(
      Lookup(R"(["bad_one.com", "a.com", "not a domain", "b.com", ""])"),
      ElementsAre(Answer{"bad_one.com", "error:invalid_domain", -1, -1},
                  Answer{"a.com", "unknown", 1, 0},
                  Answer{"not a domain", "error:invalid_domain", -1, -1},
                  Answer{"b.com", "unknown", 2, 0}, Answer{"", "error:invalid_domain", -1, -1}));
  // Only the valid, normalized domains are read, in one call.
  EXPECT_THAT(reader_.multi_gets, ElementsAre(ElementsAre("a.com", "b.com")));
}

// Found by scripts/check-api: a valid JSON body with an integer beyond 64
// bits in a field the lookup ignores is not "malformed JSON".
TEST_F(QueryServiceTest, LookupIgnoresNumbersBeyond64BitsOrADoubleInOtherFields) {
  reader_.counts["a.com"] = {1, 0};
  EXPECT_THAT(Lookup(R"({"x": 139676040915199952158720, "domains": ["a.com"]})"),
              ElementsAre(Answer{"a.com", "unknown", 1, 0}));
  EXPECT_THAT(Lookup(R"({"domains": ["a.com"], "x": 1e999, "y": [-2.5E+400]})"),
              ElementsAre(Answer{"a.com", "unknown", 1, 0}));
  Captured c = Send(HttpMethod::kPost, "/domains/lookup", R"(["a.com", 139676040915199952158720])");
  EXPECT_EQ(c.response.status, 400);
  EXPECT_EQ(c.Code(), "malformed_body");
}

TEST_F(QueryServiceTest, LookupOfNothingIsAnEmptyResult) {
  EXPECT_TRUE(Lookup(R"({"domains": []})").empty());
}

TEST_F(QueryServiceTest, LookupOverTheLimitIs413) {
  MakeService(QueryOptions{.catchall_threshold = 1000, .max_lookup_domains = 2});
  EXPECT_EQ(Lookup(R"(["a.com", "b.com"])").size(), 2u);
  Captured c = Send(HttpMethod::kPost, "/domains/lookup", R"(["a.com", "b.com", "c.com"])");
  EXPECT_EQ(c.response.status, 413);
  EXPECT_EQ(c.Code(), "too_many_domains");
  EXPECT_EQ(reader_.multi_gets.size(), 1u);
}

TEST_F(QueryServiceTest, MalformedLookupBodiesAre400) {
  for (std::string_view body :
       {"", "not json", R"({"domains": ["a.com")", R"({"names": ["a.com"]})",
        R"({"domains": "a.com"})", R"(["a.com", 42])", R"("a.com")", R"(["a.com"] extra)"}) {
    Captured c = Send(HttpMethod::kPost, "/domains/lookup", body);
    EXPECT_EQ(c.response.status, 400) << body;
    EXPECT_EQ(c.Code(), "malformed_body") << body;
  }
  EXPECT_TRUE(reader_.multi_gets.empty());
}

TEST_F(QueryServiceTest, LookupStoreErrorIs503StoreUnavailable) {
  reader_.error = Status::Corruption("bad block");
  Captured c = Send(HttpMethod::kPost, "/domains/lookup", R"(["a.com"])");
  EXPECT_EQ(c.response.status, 503);
  EXPECT_EQ(c.Code(), "store_unavailable");
  EXPECT_EQ(c.Header("Retry-After"), "1");
}

// --- metrics ---------------------------------------------------------------------------

TEST_F(QueryServiceTest, MetricsCountAnswersByStatusAndInvalidDomains) {
  reader_.counts["c.com"] = {2000, 0};
  reader_.counts["n.com"] = {1, 1};
  GetStatus("c.com");
  GetStatus("u.com");
  Lookup(R"(["n.com", "bad_.com", "c.com"])");
  Send(HttpMethod::kGet, "/domains/bad_.com");
  std::string text = metrics_->Serialize();
  EXPECT_THAT(text, HasSubstr("catchall_query_answers_total{status=\"catch-all\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("catchall_query_answers_total{status=\"unknown\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("catchall_query_answers_total{status=\"not catch-all\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("catchall_query_invalid_domains_total 2\n"));
  EXPECT_THAT(text, HasSubstr("catchall_query_batch_lookups_total 1\n"));
}

}  // namespace
}  // namespace catchall
