#include "bench/report.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "bench/options.h"
#include "bench/target.h"

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
  for (int i = 1; i <= 1000; ++i) {
    r.totals.latency.Record(static_cast<uint64_t>(i) * 1000);  // 1 us..1 ms
  }
  for (int s = 1; s <= 3; ++s) {
    TimelinePoint p;
    p.t_s = s;
    p.length_s = 1;
    p.ops = p.requests = 1000;
    p.p50_ns = 500'000;
    p.p99_ns = uint64_t{990'000} * s;
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

TEST(ReportTest, ConfigRecordsTheQueryTarget) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view query;
  // Not given: reads go to --target.
  BenchReport r = SampleReport();
  const std::string json = ResultsJson(r);
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  ASSERT_EQ(doc["config"]["query_target"].get_string().get(query), simdjson::SUCCESS);
  EXPECT_EQ(query, "http://127.0.0.1:8080");
  EXPECT_EQ(Summary(r).find("reads ->"), std::string::npos);
  // A separate query node.
  r.options.query_target = "http://127.0.0.1:8081";
  const std::string split = ResultsJson(r);
  ASSERT_EQ(parser.parse(split).get(doc), simdjson::SUCCESS) << split;
  ASSERT_EQ(doc["config"]["query_target"].get_string().get(query), simdjson::SUCCESS);
  EXPECT_EQ(query, "http://127.0.0.1:8081");
  EXPECT_NE(Summary(r).find("reads -> http://127.0.0.1:8081"), std::string::npos) << Summary(r);
}

// --query-target's parsing and resolution (kept here: the test target's
// source list lives in benchmarks/CMakeLists.txt).
int Parse(std::vector<std::string> args, BenchOptions* o) {
  args.insert(args.begin(), "catchall-bench");
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (std::string& a : args) argv.push_back(a.data());
  return ParseOptions(static_cast<int>(argv.size()), argv.data(), o);
}

TEST(OptionsTest, QueryTargetDefaultsToTarget) {
  BenchOptions o;
  ASSERT_EQ(Parse({"--target", "http://127.0.0.1:8080"}, &o), -1);
  EXPECT_EQ(o.query_target, "http://127.0.0.1:8080");
  BenchOptions split;
  ASSERT_EQ(Parse({"--target", "http://127.0.0.1:8080", "--query-target", "http://127.0.0.1:9090",
                   "--mode", "get"},
                  &split),
            -1);
  EXPECT_EQ(split.target, "http://127.0.0.1:8080");
  EXPECT_EQ(split.query_target, "http://127.0.0.1:9090");
  EXPECT_EQ(split.mode, Mode::kGet);
}

TEST(OptionsTest, TlsTurnsHttpTargetsIntoHttps) {
  BenchOptions o;
  ASSERT_EQ(Parse({"--target", "http://127.0.0.1:8443", "--tls", "--insecure"}, &o), -1);
  EXPECT_EQ(o.target, "https://127.0.0.1:8443");
  EXPECT_EQ(o.query_target, "https://127.0.0.1:8443");
  EXPECT_TRUE(o.insecure);
  BenchOptions plain;
  ASSERT_EQ(Parse({"--target", "http://127.0.0.1:8080"}, &plain), -1);
  EXPECT_EQ(plain.target, "http://127.0.0.1:8080");
}

TEST(TargetsTest, HttpsUrlsSpeakTlsAndDefaultToPort443) {
  Targets t;
  std::string error;
  ASSERT_TRUE(ResolveTargets("https://127.0.0.1", "", &t, &error)) << error;
  EXPECT_TRUE(t.write.tls);
  EXPECT_EQ(t.write.port, 443);
  ASSERT_TRUE(ResolveTargets("http://127.0.0.1:8080", "https://127.0.0.1:8080", &t, &error))
      << error;
  EXPECT_FALSE(t.write.tls);
  EXPECT_TRUE(t.read.tls);
  EXPECT_TRUE(t.split);  // same address, other protocol
  EXPECT_FALSE(ResolveTargets("ftp://127.0.0.1", "", &t, &error));
  EXPECT_NE(error.find("https://"), std::string::npos) << error;
}

TEST(TargetsTest, SameUrlIsOneServer) {
  Targets t;
  std::string error;
  ASSERT_TRUE(ResolveTargets("http://127.0.0.1:8080/api", "", &t, &error)) << error;
  EXPECT_FALSE(t.split);
  EXPECT_EQ(t.read.port, 8080);
  EXPECT_EQ(t.read.base_path, "/api");
  ASSERT_TRUE(ResolveTargets("http://127.0.0.1:8080/api", "http://127.0.0.1:8080/api/", &t, &error))
      << error;
  EXPECT_FALSE(t.split);  // a trailing slash does not make another server
}

TEST(TargetsTest, QueryTargetSplitsReadsFromWrites) {
  Targets t;
  std::string error;
  ASSERT_TRUE(ResolveTargets("http://127.0.0.1:8080", "http://127.0.0.1:8081/q", &t, &error))
      << error;
  EXPECT_TRUE(t.split);
  EXPECT_EQ(t.write.port, 8080);
  EXPECT_EQ(t.write.host_header, "127.0.0.1:8080");
  EXPECT_EQ(t.write.base_path, "");
  EXPECT_EQ(t.read.port, 8081);
  EXPECT_EQ(t.read.host_header, "127.0.0.1:8081");
  EXPECT_EQ(t.read.base_path, "/q");
  EXPECT_EQ(t.read.endpoint.port(), 8081);
  // Same address and port, other path prefix: another server as far as
  // the requests are concerned.
  ASSERT_TRUE(ResolveTargets("http://127.0.0.1:8080", "http://127.0.0.1:8080/q", &t, &error));
  EXPECT_TRUE(t.split);
}

TEST(TargetsTest, BadQueryTargetNamesTheFlag) {
  Targets t;
  std::string error;
  EXPECT_FALSE(ResolveTargets("http://127.0.0.1:8080", "ftp://127.0.0.1:8081", &t, &error));
  EXPECT_NE(error.find("--query-target"), std::string::npos) << error;
  EXPECT_FALSE(ResolveTargets("127.0.0.1:8080", "", &t, &error));
  EXPECT_NE(error.find("--target"), std::string::npos) << error;
  EXPECT_FALSE(ResolveTargets("http://127.0.0.1:8080", "http://127.0.0.1:0", &t, &error));
  EXPECT_NE(error.find("bad port in --query-target"), std::string::npos) << error;
}

TEST(ReportTest, Thousands) {
  EXPECT_EQ(Thousands(0), "0");
  EXPECT_EQ(Thousands(999), "999");
  EXPECT_EQ(Thousands(1000), "1,000");
  EXPECT_EQ(Thousands(1234567), "1,234,567");
}

}  // namespace
}  // namespace catchall::bench
