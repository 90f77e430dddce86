#include "bench/report.h"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace catchall::bench {
namespace {

BenchReport SampleReport() {
  BenchReport r;
  r.options.target = "http://127.0.0.1:8080";
  r.options.label = "a \"quoted\" label";
  r.workload = "challenge";
  r.stop_reason = "duration";
  r.window_s = 2;
  r.wall_s = 2.1;
  r.totals.events_acked_measured = 2000;
  r.totals.requests_ok_measured = 2000;
  r.totals.status_errors[503] = 3;
  r.totals.transport_errors[static_cast<size_t>(TransportError::kTimeout)] = 1;
  for (int i = 1; i <= 1000; ++i)
    r.totals.latency.Record(static_cast<uint64_t>(i) * 1000);  // 1 us..1 ms
  for (int s = 1; s <= 3; ++s) {
    TimelinePoint p;
    p.t_s = s;
    p.length_s = 1;
    p.ops = p.requests = 1000;
    p.p50_ns = 500'000;
    p.p99_ns = 990'000 * s;
    p.warmup = s == 1;
    r.timeline.push_back(p);
  }
  VerifyResult v;
  v.ok = false;
  v.mismatches = 1;
  Mismatch m;
  m.domain = "abc.com";
  m.expected = {3, 0};
  m.expected_status = "unknown";
  m.actual = {2, 0};
  m.actual_status = "unknown";
  v.examples.push_back(m);
  r.verify = v;
  return r;
}

TEST(ReportTest, ResultsJsonHasTheContractFields) {
  const std::string json = ResultsJson(SampleReport());
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  double throughput = 0;
  ASSERT_EQ(doc["throughput_per_s"].get_double().get(throughput), simdjson::SUCCESS);
  EXPECT_DOUBLE_EQ(throughput, 1000);
  for (const char* key : {"p50", "p95", "p99", "p999", "max"}) {
    double v = -1;
    ASSERT_EQ(doc["latency_ms"][key].get_double().get(v), simdjson::SUCCESS) << key;
    EXPECT_GT(v, 0) << key;
  }
  double p50 = 0;
  ASSERT_EQ(doc["latency_ms"]["p50"].get_double().get(p50), simdjson::SUCCESS);
  EXPECT_NEAR(p50, 0.5, 0.005);
  uint64_t errors = 0;
  ASSERT_EQ(doc["errors"].get_uint64().get(errors), simdjson::SUCCESS);
  EXPECT_EQ(errors, 4u);
  uint64_t e503 = 0;
  ASSERT_EQ(doc["errors_by_status"]["503"].get_uint64().get(e503), simdjson::SUCCESS);
  EXPECT_EQ(e503, 3u);
  bool ok = true;
  ASSERT_EQ(doc["verify"]["ok"].get_bool().get(ok), simdjson::SUCCESS);
  EXPECT_FALSE(ok);
  uint64_t mismatches = 0;
  ASSERT_EQ(doc["verify"]["mismatches"].get_uint64().get(mismatches), simdjson::SUCCESS);
  EXPECT_EQ(mismatches, 1u);
  simdjson::dom::array timeline;
  ASSERT_EQ(doc["timeline"].get_array().get(timeline), simdjson::SUCCESS);
  EXPECT_EQ(timeline.size(), 3u);
  std::string_view label;
  ASSERT_EQ(doc["label"].get_string().get(label), simdjson::SUCCESS);
  EXPECT_EQ(label, "a \"quoted\" label");
}

TEST(ReportTest, SvgHasBothSeries) {
  const std::string svg = LatencySvg(SampleReport());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("stroke=\"#1f77b4\""), std::string::npos);
  EXPECT_NE(svg.find("stroke=\"#d62728\""), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  // Empty runs still give a valid picture.
  BenchReport empty;
  EXPECT_NE(LatencySvg(empty).find("</svg>"), std::string::npos);
}

TEST(ReportTest, SummaryMentionsVerification) {
  const std::string s = Summary(SampleReport());
  EXPECT_NE(s.find("verify      FAILED"), std::string::npos) << s;
  EXPECT_NE(s.find("abc.com"), std::string::npos);
}

TEST(ReportTest, Thousands) {
  EXPECT_EQ(Thousands(0), "0");
  EXPECT_EQ(Thousands(999), "999");
  EXPECT_EQ(Thousands(1000), "1,000");
  EXPECT_EQ(Thousands(1234567), "1,234,567");
}

}  // namespace
}  // namespace catchall::bench
