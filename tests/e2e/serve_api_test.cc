// The HTTP API of `catchall serve`, end to end: real binary, real HTTP.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "support/catchall_client.h"
#include "support/server_process.h"

namespace catchall::testing {
namespace {

using ::testing::HasSubstr;

class ServeApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A small threshold keeps the catch-all case quick to reach.
    server_ = std::make_unique<ServerProcess>(std::vector<std::string>{
        "serve", "--data-dir", data_.path(), "--threshold", "5", "--partitions", "4"});
    ASSERT_TRUE(server_->started());
    ASSERT_TRUE(server_->WaitReady());
    client_ = std::make_unique<HttpClient>(server_->port());
  }

  void PutEvents(const std::string& domain, const std::string& type, int n) {
    const std::string path = "/events/" + domain + "/";
    for (int i = 0; i < n; ++i) {
      HttpResult r = client_->Put(path + type);
      ASSERT_EQ(r.status, 204) << r.body;
    }
  }

  TempDir data_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(ServeApiTest, NeverSeenDomainIsUnknownWithZeroCounts) {
  DomainView v = GetDomain(*client_, "never-seen.example");
  EXPECT_EQ(v.status, 200);
  EXPECT_EQ(v.state, "unknown");
  EXPECT_EQ(v.delivered, 0);
  EXPECT_EQ(v.bounced, 0);
}

TEST_F(ServeApiTest, StatusFollowsTheThresholdAndBounces) {
  PutEvents("at-threshold.com", "delivered", 5);
  DomainView v = WaitForCounts(*client_, "at-threshold.com", 5, 0);
  EXPECT_EQ(v.state, "unknown") << "delivered == threshold is not catch-all";

  PutEvents("at-threshold.com", "delivered", 1);
  v = WaitForCounts(*client_, "at-threshold.com", 6, 0);
  EXPECT_EQ(v.state, "catch-all");

  PutEvents("at-threshold.com", "bounced", 1);
  v = WaitForCounts(*client_, "at-threshold.com", 6, 1);
  EXPECT_EQ(v.state, "not catch-all");
}

TEST_F(ServeApiTest, DomainsAreNormalizedBeforeCounting) {
  PutEvents("Example.COM.", "delivered", 1);
  PutEvents("example.com", "delivered", 1);
  PutEvents("EXAMPLE.com", "bounced", 1);
  PutEvents("b%C3%BCcher.de", "delivered", 1);  // bücher.de, percent-encoded UTF-8
  PutEvents("xn--bcher-kva.de", "delivered", 1);
  // "Example.COM." and "example.com" are one domain, and "EXAMPLE.com" too.
  DomainView v = WaitForCounts(*client_, "example.com", 2, 1);
  EXPECT_EQ(v.delivered, 2);
  EXPECT_EQ(v.bounced, 1);
  DomainView idn = WaitForCounts(*client_, "xn--bcher-kva.de", 2, 0);
  EXPECT_EQ(idn.delivered, 2);
  EXPECT_EQ(idn.bounced, 0);
  // Looking up by the Unicode form finds the same counters.
  EXPECT_EQ(GetDomain(*client_, "B%C3%9Ccher.de").delivered, 2);
}

// RFC 3986, 6.2.2.2: an escaped unreserved character is the character, in
// the fixed segments too (a black-box probe got 404 for `/%65vents/...`).
TEST_F(ServeApiTest, EscapedUnreservedCharactersInThePathAreTheCharacters) {
  ASSERT_EQ(client_->Put("/%65vents/escaped.com/%64elivered").status, 204);
  ASSERT_EQ(client_->Put("/ev%65nts/escaped%2ecom/bounced").status, 204);
  DomainView v = WaitForCounts(*client_, "escaped.com", 1, 1);
  EXPECT_EQ(v.delivered, 1u);
  HttpResult r = client_->Get("/%64omains/escaped.com");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr(R"("domain":"escaped.com")"));
  EXPECT_EQ(client_->Get("/healt%68z").status, 200);
  // An escaped '/' is a byte of a segment, not a separator.
  EXPECT_EQ(client_->Put("/events%2Fescaped.com/delivered").status, 404);
}

TEST_F(ServeApiTest, NdjsonBatchAcceptsValidItemsAndReportsBadOnes) {
  std::string body =
      "{\"domain\":\"batch.com\",\"type\":\"delivered\"}\n"
      "\n"
      "{\"domain\":\"bad_domain\",\"type\":\"delivered\"}\n"
      "{\"domain\":\"batch.com\",\"type\":\"exploded\"}\n"
      "not json\n"
      "{\"domain\":\"batch.com\",\"type\":\"bounced\",\"id\":\"x1\",\"ts\":1700000000000}\n";
  HttpResult r = client_->Post("/events", body, "application/x-ndjson");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(JsonInt(r.body, "accepted"), 2);
  EXPECT_EQ(JsonInt(r.body, "rejected"), 3);
  EXPECT_THAT(r.body, HasSubstr(R"({"index":1,"code":"invalid_domain")"));
  EXPECT_THAT(r.body, HasSubstr(R"({"index":2,"code":"invalid_event_type")"));
  EXPECT_THAT(r.body, HasSubstr(R"({"index":3,"code":"invalid_item")"));
  DomainView v = WaitForCounts(*client_, "batch.com", 1, 1);
  EXPECT_EQ(v.delivered, 1);
  EXPECT_EQ(v.bounced, 1);
}

TEST_F(ServeApiTest, JsonArrayBatch) {
  HttpResult r = client_->Post(
      "/events",
      R"([{"domain":"arr.com","type":"delivered"},{"domain":"arr.com","type":"delivered"},42])");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(JsonInt(r.body, "accepted"), 2);
  EXPECT_EQ(JsonInt(r.body, "rejected"), 1);
  EXPECT_EQ(WaitForCounts(*client_, "arr.com", 2, 0).delivered, 2);
}

TEST_F(ServeApiTest, BatchWithOnlyBadItemsIs422AndStoresNothing) {
  HttpResult r = client_->Post("/events", R"([{"domain":"x..com","type":"delivered"}])");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(JsonString(r.body, "code"), "no_valid_items");
  EXPECT_EQ(JsonInt(r.body, "accepted"), 0);
}

TEST_F(ServeApiTest, BatchLookupAnswersInOrderWithPerItemErrors) {
  PutEvents("one.com", "delivered", 1);
  WaitForCounts(*client_, "one.com", 1, 0);
  HttpResult r =
      client_->Post("/domains/lookup", R"({"domains":["ONE.com","two.com","not a domain"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"({"domain":"one.com","status":"unknown","delivered":1,)"));
  EXPECT_THAT(r.body, HasSubstr(R"({"domain":"two.com","status":"unknown","delivered":0,)"));
  EXPECT_THAT(r.body, HasSubstr(R"("domain":"not a domain","error":{"code":"invalid_domain")"));
  EXPECT_LT(r.body.find("one.com"), r.body.find("two.com"));
}

TEST_F(ServeApiTest, IdempotencyKeyCountsARetriedEventOnce) {
  std::map<std::string, std::string> key = {{"Idempotency-Key", "retry-123"}};
  ASSERT_EQ(client_->Put("/events/idem.com/delivered", key).status, 204);
  ASSERT_EQ(client_->Put("/events/idem.com/delivered", key).status, 204);
  ASSERT_EQ(client_->Put("/events/idem.com/delivered", {{"Idempotency-Key", "other"}}).status, 204);
  // Batch items with an id are deduplicated the same way.
  HttpResult r =
      client_->Post("/events",
                    "{\"domain\":\"idem.com\",\"type\":\"delivered\",\"id\":\"retry-123\"}"
                    "\n",
                    "application/x-ndjson");
  ASSERT_EQ(r.status, 200);
  // Wait for a later event so every earlier one has been applied.
  ASSERT_EQ(client_->Put("/events/idem.com/bounced").status, 204);
  DomainView v = WaitForCounts(*client_, "idem.com", 2, 1);
  EXPECT_EQ(v.delivered, 2);
}

// A window of 0 turns deduplication off, as documented: every event with
// an id is counted, also several with one id in one batch (they were
// dropped as duplicates of each other: a black-box probe).
TEST(ServeWithoutDeduplicationTest, AWindowOfZeroCountsEveryEventWithAnId) {
  TempDir data;
  ServerProcess server(
      {"serve", "--data-dir", data.path(), "--set", "aggregate.idempotency_window_s=0"});
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(server.WaitReady());
  HttpClient client(server.port());
  const std::string item = "{\"domain\":\"nodedup.com\",\"type\":\"delivered\",\"id\":\"s\"}\n";
  HttpResult r = client.Post("/events", item + item + item, "application/x-ndjson");
  ASSERT_EQ(r.status, 200) << r.body;
  std::map<std::string, std::string> key = {{"Idempotency-Key", "s"}};
  ASSERT_EQ(client.Put("/events/nodedup.com/delivered", key).status, 204);
  ASSERT_EQ(client.Put("/events/nodedup.com/delivered", key).status, 204);
  ASSERT_EQ(client.Put("/events/nodedup.com/bounced").status, 204);
  DomainView v = WaitForCounts(client, "nodedup.com", 5, 1);
  EXPECT_EQ(v.delivered, 5);
}

TEST_F(ServeApiTest, OperationalEndpoints) {
  HttpResult health = client_->Get("/healthz");
  EXPECT_EQ(health.status, 200);
  HttpResult ready = client_->Get("/readyz");
  EXPECT_EQ(ready.status, 200);
  PutEvents("metrics.com", "delivered", 3);
  WaitForCounts(*client_, "metrics.com", 3, 0);
  HttpResult metrics = client_->Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.Header("content-type"), HasSubstr("text/plain"));
  EXPECT_THAT(metrics.body,
              HasSubstr("catchall_ingest_events_accepted_total{type=\"delivered\"} 3"));
  EXPECT_THAT(metrics.body, HasSubstr("catchall_aggregate_records_total{outcome=\"counted\"} 3"));
  EXPECT_THAT(metrics.body, HasSubstr("catchall_http_requests_total"));
  EXPECT_THAT(metrics.body, HasSubstr("catchall_process_resident_memory_bytes"));
}

}  // namespace
}  // namespace catchall::testing
