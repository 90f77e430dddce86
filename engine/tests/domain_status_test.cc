#include "engine/domain_status.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "test_util.h"

namespace catchall {
namespace {

constexpr uint64_t kT = kDefaultCatchAllThreshold;

TEST(ClassifyTest, DefaultThresholdIsOneThousand) { EXPECT_EQ(kDefaultCatchAllThreshold, 1000u); }

TEST(ClassifyTest, CatchAllOnlyAboveTheThreshold) {
  EXPECT_EQ(Classify({999, 0}, kT), CatchAllStatus::kUnknown);
  EXPECT_EQ(Classify({1000, 0}, kT), CatchAllStatus::kUnknown);
  EXPECT_EQ(Classify({1001, 0}, kT), CatchAllStatus::kCatchAll);
  EXPECT_EQ(Classify({std::numeric_limits<uint64_t>::max(), 0}, kT), CatchAllStatus::kCatchAll);
}

TEST(ClassifyTest, AnyBounceMeansNotCatchAll) {
  EXPECT_EQ(Classify({1001, 1}, kT), CatchAllStatus::kNotCatchAll);
  EXPECT_EQ(Classify({1000000, 1}, kT), CatchAllStatus::kNotCatchAll);
  EXPECT_EQ(Classify({0, 1}, kT), CatchAllStatus::kNotCatchAll);
  EXPECT_EQ(Classify({5, 7}, kT), CatchAllStatus::kNotCatchAll);
}

TEST(ClassifyTest, NeverSeenIsUnknown) {
  EXPECT_EQ(Classify({0, 0}, kT), CatchAllStatus::kUnknown);
}

TEST(ClassifyTest, CustomThreshold) {
  EXPECT_EQ(Classify({10, 0}, 10), CatchAllStatus::kUnknown);
  EXPECT_EQ(Classify({11, 0}, 10), CatchAllStatus::kCatchAll);
  EXPECT_EQ(Classify({11, 1}, 10), CatchAllStatus::kNotCatchAll);
  EXPECT_EQ(Classify({1, 0}, 0), CatchAllStatus::kCatchAll);
  EXPECT_EQ(Classify({0, 0}, 0), CatchAllStatus::kUnknown);
  EXPECT_EQ(Classify({1001, 0}, 5000), CatchAllStatus::kUnknown);
}

TEST(CatchAllStatusNameTest, UsesTheApiSpelling) {
  EXPECT_EQ(CatchAllStatusName(CatchAllStatus::kUnknown), "unknown");
  EXPECT_EQ(CatchAllStatusName(CatchAllStatus::kCatchAll), "catch-all");
  EXPECT_EQ(CatchAllStatusName(CatchAllStatus::kNotCatchAll), "not catch-all");
}

TEST(DomainCountsTest, AddsAndCompares) {
  DomainCounts a{3, 1};
  a += DomainCounts{10, 2};
  EXPECT_EQ(a, (DomainCounts{13, 3}));
  EXPECT_FALSE(a == (DomainCounts{13, 4}));
  EXPECT_EQ(DomainCounts{}, (DomainCounts{0, 0}));
}

std::string StatusJson(std::string_view domain, DomainCounts counts, uint64_t threshold = kT) {
  std::string out;
  AppendDomainStatusJson(domain, counts, threshold, &out);
  return out;
}

TEST(AppendDomainStatusJsonTest, WritesDomainStatusAndCounts) {
  EXPECT_EQ(StatusJson("example.com", {1001, 0}),
            R"({"domain":"example.com","status":"catch-all","delivered":1001,"bounced":0})");
  EXPECT_EQ(StatusJson("example.com", {5, 2}),
            R"({"domain":"example.com","status":"not catch-all","delivered":5,"bounced":2})");
  EXPECT_EQ(StatusJson("never.seen", {}),
            R"({"domain":"never.seen","status":"unknown","delivered":0,"bounced":0})");
  EXPECT_EQ(StatusJson("a.com", {11, 0}, 10),
            R"({"domain":"a.com","status":"catch-all","delivered":11,"bounced":0})");
}

TEST(AppendDomainStatusJsonTest, AppendsAndIsValidJson) {
  std::string out = "[";
  AppendDomainStatusJson("xn--bcher-kva.de", {std::numeric_limits<uint64_t>::max(), 0}, kT, &out);
  out += "]";
  EXPECT_TRUE(test::IsValidJson(out)) << out;
  EXPECT_NE(out.find("\"delivered\":18446744073709551615"), std::string::npos) << out;
  std::string one = StatusJson("xn--bcher-kva.de", {1, 1});
  EXPECT_EQ(test::JsonStringField(one, "domain"), "xn--bcher-kva.de");
  EXPECT_EQ(test::JsonStringField(one, "status"), "not catch-all");
  EXPECT_EQ(test::JsonIntField(one, "delivered"), 1);
  EXPECT_EQ(test::JsonIntField(one, "bounced"), 1);
}

}  // namespace
}  // namespace catchall
