#include "bench/workload.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

namespace catchall::bench {
namespace {

std::vector<GeneratedEvent> Drain(EventStream& s, size_t limit = SIZE_MAX) {
  std::vector<GeneratedEvent> out;
  GeneratedEvent e;
  while (out.size() < limit && s.Next(&e)) out.push_back(e);
  return out;
}

bool SameEvents(const std::vector<GeneratedEvent>& a, const std::vector<GeneratedEvent>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](const GeneratedEvent& x, const GeneratedEvent& y) {
                                              return x.domain == y.domain && x.type == y.type;
                                            });
}

TEST(ChallengeWorkloadTest, NamesAreFourteenLettersAndATld) {
  ChallengeWorkload w(1, 1000);
  std::set<std::string> tlds;
  bool upper = false, lower = false;
  for (uint32_t i = 0; i < 1000; ++i) {
    const std::string name = w.DomainName(i);
    const size_t dot = name.find('.');
    ASSERT_EQ(dot, 14u) << name;
    for (size_t k = 0; k < dot; ++k) {
      ASSERT_TRUE(std::isalpha(static_cast<unsigned char>(name[k]))) << name;
      upper |= std::isupper(static_cast<unsigned char>(name[k])) != 0;
      lower |= std::islower(static_cast<unsigned char>(name[k])) != 0;
    }
    tlds.insert(name.substr(dot));
    EXPECT_EQ(name, w.DomainName(i));  // a pure function of (seed, index)
  }
  EXPECT_TRUE(upper && lower);
  EXPECT_EQ(tlds, (std::set<std::string>{".net", ".com", ".org", ".io", ".gov"}));
  EXPECT_NE(ChallengeWorkload(2, 10).DomainName(0), w.DomainName(0));
}

TEST(ChallengeWorkloadTest, EventCountsAreUniformUpTo2499) {
  ChallengeWorkload w(5, 100000);
  uint32_t lo = UINT32_MAX, hi = 0;
  double sum = 0;
  for (uint32_t i = 0; i < 100000; ++i) {
    const uint32_t n = w.EventCount(i);
    lo = std::min(lo, n);
    hi = std::max(hi, n);
    sum += n;
  }
  EXPECT_EQ(lo, 0u);
  EXPECT_EQ(hi, 2499u);
  EXPECT_NEAR(sum / 100000, 1249.5, 10);
}

TEST(ChallengeWorkloadTest, BounceRuleIsExact) {
  // b = floor(0.35 * max); event j bounces when b != 0 and j % b == 0.
  for (uint32_t j = 0; j < 100; ++j) {
    EXPECT_EQ(ChallengeWorkload::IsBounce(1, 100, j), j == 0 || j == 35 || j == 70) << j;
  }
  EXPECT_FALSE(ChallengeWorkload::IsBounce(1, 2, 0));  // b == 0: never
  EXPECT_FALSE(ChallengeWorkload::IsBounce(1, 1, 0));
  for (uint32_t j = 0; j < 3; ++j) EXPECT_TRUE(ChallengeWorkload::IsBounce(1, 3, j));  // b == 1
  // Every 25th domain never bounces.
  for (uint32_t j = 0; j < 2000; ++j) {
    EXPECT_FALSE(ChallengeWorkload::IsBounce(0, 2000, j));
    EXPECT_FALSE(ChallengeWorkload::IsBounce(50, 2000, j));
  }
  EXPECT_TRUE(ChallengeWorkload::IsBounce(51, 2000, 700));  // b = 700
  // floor is taken of the double product, like the original: 0.35 * 180
  // is 62.999..., so b == 62.
  EXPECT_TRUE(ChallengeWorkload::IsBounce(1, 180, 62));
  EXPECT_FALSE(ChallengeWorkload::IsBounce(1, 180, 63));
}

TEST(ChallengeWorkloadTest, SameSeedSameStream) {
  ChallengeWorkload a(99, 5000), b(99, 5000), c(100, 5000);
  auto sa = a.NewStream(0, 1), sb = b.NewStream(0, 1), sc = c.NewStream(0, 1);
  const auto ea = Drain(*sa, 200000), eb = Drain(*sb, 200000), ec = Drain(*sc, 200000);
  EXPECT_TRUE(SameEvents(ea, eb));
  EXPECT_FALSE(SameEvents(ea, ec));
}

// One pass over every domain emits exactly each domain's burst, in order.
TEST(ChallengeWorkloadTest, StreamEmitsEachBurstExactlyInOrder) {
  const uint32_t n = 3000;
  ChallengeWorkload w(11, n, /*loop=*/false);
  auto stream = w.NewStream(0, 1);
  std::vector<uint32_t> next(n, 0);
  std::vector<DomainCounts> counts(n);
  GeneratedEvent e;
  size_t open = 0, max_open = 0;
  uint64_t total = 0;
  while (stream->Next(&e)) {
    ASSERT_LT(e.domain, n);
    const uint32_t events = w.EventCount(e.domain);
    const uint32_t j = next[e.domain]++;
    ASSERT_LT(j, events);
    ASSERT_EQ(e.type == EventType::kBounced, ChallengeWorkload::IsBounce(e.domain, events, j));
    (e.type == EventType::kBounced ? counts[e.domain].bounced : counts[e.domain].delivered)++;
    if (j == 0) max_open = std::max(max_open, ++open);
    if (j + 1 == events) --open;
    ++total;
  }
  uint64_t expected_total = 0;
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_EQ(counts[i], w.PassCounts(i)) << i;
    expected_total += w.EventCount(i);
  }
  EXPECT_EQ(total, expected_total);
  EXPECT_EQ(max_open, ChallengeWorkload::kInterleave);  // ~20 bursts interleaved
  EXPECT_EQ(stream->passes(), 0u);
}

TEST(ChallengeWorkloadTest, ShardsTogetherProduceTheWholeWorkload) {
  const uint32_t n = 1000;
  ChallengeWorkload w(3, n, /*loop=*/false);
  std::vector<DomainCounts> counts(n);
  for (uint32_t shard = 0; shard < 4; ++shard) {
    auto s = w.NewStream(shard, 4);
    GeneratedEvent e;
    while (s->Next(&e)) {
      ASSERT_EQ(e.domain % 4, shard);
      (e.type == EventType::kBounced ? counts[e.domain].bounced : counts[e.domain].delivered)++;
    }
  }
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(counts[i], w.PassCounts(i)) << i;
}

TEST(ChallengeWorkloadTest, EveryTwentyFifthDomainNeverBounces) {
  ChallengeWorkload w(8, 20000);
  for (uint32_t i = 0; i < 20000; i += 25) EXPECT_EQ(w.PassCounts(i).bounced, 0u) << i;
}

// About 0.2% of events are bounces and 2.4% of domains end catch-all.
TEST(ChallengeWorkloadTest, BounceAndCatchAllProportions) {
  const uint32_t n = 20000;
  ChallengeWorkload w(2024, n);
  uint64_t events = 0, bounces = 0, catch_all = 0, not_catch_all = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const DomainCounts c = w.PassCounts(i);
    events += c.delivered + c.bounced;
    bounces += c.bounced;
    const std::string_view status = ExpectedStatus(c, 1000);
    catch_all += status == "catch-all";
    not_catch_all += status == "not catch-all";
  }
  const double bounce_share = static_cast<double>(bounces) / static_cast<double>(events);
  const double catch_all_share = static_cast<double>(catch_all) / n;
  EXPECT_GT(bounce_share, 0.0018);
  EXPECT_LT(bounce_share, 0.0028);
  EXPECT_GT(catch_all_share, 0.020);
  EXPECT_LT(catch_all_share, 0.028);
  EXPECT_GT(not_catch_all, n * 9 / 10);  // nearly every other domain bounced
}

TEST(ChallengeWorkloadTest, LoopingStreamStartsOver) {
  ChallengeWorkload w(4, 10, /*loop=*/true);
  uint64_t one_pass = 0;
  for (uint32_t i = 0; i < 10; ++i) one_pass += w.EventCount(i);
  auto s = w.NewStream(0, 1);
  const auto events = Drain(*s, one_pass * 2 + 1);
  EXPECT_EQ(events.size(), one_pass * 2 + 1);
  EXPECT_EQ(s->passes(), 2u);
}

TEST(ChallengeWorkloadTest, WrittenDomainStaysBelowTheFrontier) {
  ChallengeWorkload w(4, 1'000'000);
  auto s = w.NewStream(0, 1);
  Drain(*s, 5000);
  SplitMix64 rng(1);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(s->WrittenDomain(rng), 1000u);
}

TEST(ChallengeWorkloadTest, ScalesToTenMillionDomainsWithoutMaterializing) {
  ChallengeWorkload w(6, 10'000'000);
  EXPECT_GE(w.DomainName(9'999'999).size(), 17u);
  auto s = w.NewStream(0, 1);
  EXPECT_EQ(Drain(*s, 1000).size(), 1000u);
}

TEST(UniformWorkloadTest, NamesAreDistinctLowerCaseAndSeeded) {
  UniformWorkload w(1, 100000), other(2, 100000);
  std::set<std::string> names;
  for (uint32_t i = 0; i < 100000; ++i) {
    const std::string name = w.DomainName(i);
    ASSERT_TRUE(names.insert(name).second) << name;
    std::string lower;
    AppendLower(name, &lower);
    ASSERT_EQ(lower, name);
    ASSERT_EQ(name.rfind("d" + std::to_string(i) + "-", 0), 0u) << name;
    ASSERT_EQ(name.substr(name.size() - 4), ".com");
  }
  EXPECT_NE(w.DomainName(7), other.DomainName(7));
  EXPECT_FALSE(w.NamesMayCollide());
}

// benchmarks/query/gen_changelog.py writes changelog records under these
// names so that `--mode get --workload uniform` finds them; its test
// (tests/scripts/gen_changelog_test.sh) checks the same three names.
TEST(UniformWorkloadTest, NamesAreTheOnesTheQueryBenchmarkWrites) {
  EXPECT_EQ(UniformWorkload(42, 10).DomainName(0), "d0-372cf1d6.com");
  EXPECT_EQ(UniformWorkload(42, 10).DomainName(1), "d1-2b8769fb.com");
  EXPECT_EQ(UniformWorkload(1, 10'000'000).DomainName(123), "d123-5401e835.com");
}

TEST(UniformWorkloadTest, EventsAreUniformWithTheBounceProbability) {
  const uint32_t n = 100;
  UniformWorkload w(9, n, 0.002);
  auto s = w.NewStream(0, 1);
  std::vector<uint64_t> per_domain(n, 0);
  uint64_t bounces = 0;
  const int total = 1'000'000;
  GeneratedEvent e;
  for (int i = 0; i < total; ++i) {
    ASSERT_TRUE(s->Next(&e));
    ASSERT_LT(e.domain, n);
    ++per_domain[e.domain];
    bounces += e.type == EventType::kBounced;
  }
  for (uint64_t c : per_domain) {
    EXPECT_NEAR(static_cast<double>(c), static_cast<double>(total) / n, 500);  // ~5 sigma
  }
  EXPECT_NEAR(static_cast<double>(bounces), total * 0.002, 250);
}

TEST(UniformWorkloadTest, DeterministicPerSeedAndShard) {
  UniformWorkload a(5, 1000), b(5, 1000);
  auto s0 = a.NewStream(0, 2), t0 = b.NewStream(0, 2), s1 = a.NewStream(1, 2);
  const auto e0 = Drain(*s0, 10000), f0 = Drain(*t0, 10000), e1 = Drain(*s1, 10000);
  EXPECT_TRUE(SameEvents(e0, f0));
  EXPECT_FALSE(SameEvents(e0, e1));
}

TEST(UniformWorkloadTest, BounceProbabilityExtremes) {
  UniformWorkload never(1, 10, 0.0), always(1, 10, 1.0);
  auto n = never.NewStream(0, 1), a = always.NewStream(0, 1);
  GeneratedEvent e;
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(n->Next(&e));
    ASSERT_EQ(e.type, EventType::kDelivered);
    ASSERT_TRUE(a->Next(&e));
    ASSERT_EQ(e.type, EventType::kBounced);
  }
}

TEST(ExpectedStatusTest, FollowsTheRules) {
  EXPECT_EQ(ExpectedStatus({0, 0}, 1000), "unknown");
  EXPECT_EQ(ExpectedStatus({1000, 0}, 1000), "unknown");
  EXPECT_EQ(ExpectedStatus({1001, 0}, 1000), "catch-all");
  EXPECT_EQ(ExpectedStatus({5000, 1}, 1000), "not catch-all");
  EXPECT_EQ(ExpectedStatus({0, 1}, 1000), "not catch-all");
}

}  // namespace
}  // namespace catchall::bench
