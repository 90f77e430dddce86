#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "bench/rng.h"

namespace catchall::bench {
namespace {

// The nearest-rank percentile of sorted samples (what Histogram estimates).
uint64_t Exact(const std::vector<uint64_t>& sorted, double q) {
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

TEST(HistogramTest, EmptyHistogramReportsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 0; v < Histogram::kLinearLimit; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(0.5), 127u);
  EXPECT_EQ(h.Percentile(1.0), 255u);
  EXPECT_EQ(h.Percentile(0.0), 0u);
}

TEST(HistogramTest, BucketsTileTheRangeWithBoundedWidth) {
  for (size_t i = 0; i + 1 < Histogram::kBucketCount; ++i) {
    EXPECT_EQ(Histogram::LowestOf(i) + Histogram::WidthOf(i), Histogram::LowestOf(i + 1)) << i;
    EXPECT_EQ(Histogram::IndexOf(Histogram::LowestOf(i)), i);
    EXPECT_EQ(Histogram::IndexOf(Histogram::LowestOf(i) + Histogram::WidthOf(i) - 1), i);
    if (i >= Histogram::kLinearLimit) {
      // Relative width of a bucket: at most 1/128 of its lowest value.
      EXPECT_LE(
          static_cast<double>(Histogram::WidthOf(i)) / static_cast<double>(Histogram::LowestOf(i)),
          1.0 / 128 + 1e-12);
    }
  }
  const size_t last = Histogram::kBucketCount - 1;
  EXPECT_EQ(Histogram::LowestOf(last) + Histogram::WidthOf(last) - 1, Histogram::kMaxValue);
  EXPECT_EQ(Histogram::IndexOf(Histogram::kMaxValue), last);
  EXPECT_EQ(Histogram::IndexOf(UINT64_MAX), last);  // clamped
}

// Log-uniform samples from 1 us to 60 s: every percentile within 1%.
TEST(HistogramTest, PercentilesWithinOnePercentFromOneMicrosecondToSixtySeconds) {
  SplitMix64 rng(42);
  Histogram h;
  std::vector<uint64_t> samples;
  const double lo = std::log(1e3), hi = std::log(60e9);
  for (int i = 0; i < 200000; ++i) {
    const auto v = static_cast<uint64_t>(std::exp(lo + (hi - lo) * rng.Unit()));
    samples.push_back(v);
    h.Record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double q : {0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999}) {
    const double exact = static_cast<double>(Exact(samples, q));
    const double got = static_cast<double>(h.Percentile(q));
    EXPECT_NEAR(got, exact, exact * 0.01) << "q=" << q;
  }
  EXPECT_EQ(h.max(), samples.back());
  EXPECT_EQ(h.min(), samples.front());
  EXPECT_EQ(h.Percentile(1.0), samples.back());
  EXPECT_EQ(h.count(), samples.size());
}

// A latency-like distribution: tight body, long tail.
TEST(HistogramTest, PercentilesOfSkewedDistribution) {
  SplitMix64 rng(7);
  Histogram h;
  std::vector<uint64_t> samples;
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = 200'000 + rng.Below(100'000);                     // 0.2-0.3 ms
    if (rng.Unit() < 0.01) v = 5'000'000 + rng.Below(50'000'000);  // 1%: 5-55 ms
    samples.push_back(v);
    h.Record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double q : {0.5, 0.95, 0.99, 0.995, 0.999}) {
    const double exact = static_cast<double>(Exact(samples, q));
    EXPECT_NEAR(static_cast<double>(h.Percentile(q)), exact, exact * 0.01) << q;
  }
}

TEST(HistogramTest, SingleValueIsReportedExactly) {
  Histogram h;
  h.RecordN(123'456'789, 10);
  EXPECT_EQ(h.Percentile(0.5), 123'456'789u);  // clamped to [min, max]
  EXPECT_EQ(h.count(), 10u);
  EXPECT_DOUBLE_EQ(h.mean(), 123'456'789.0);
}

TEST(HistogramTest, AddEqualsRecordingEverythingInOne) {
  SplitMix64 rng(3);
  Histogram a, b, all;
  for (int i = 0; i < 10000; ++i) {
    const uint64_t v = rng.Below(1'000'000'000);
    (i % 3 ? a : b).Record(v);
    all.Record(v);
  }
  a.Add(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double q : {0.1, 0.5, 0.9, 0.99}) EXPECT_EQ(a.Percentile(q), all.Percentile(q));
  a.Reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.Percentile(0.5), 0u);
}

TEST(HistogramTest, HugeValuesAreClampedButMaxIsExact) {
  Histogram h;
  h.Record(uint64_t{1} << 50);
  EXPECT_EQ(h.max(), uint64_t{1} << 50);
  EXPECT_EQ(h.count(), 1u);
}

}  // namespace
}  // namespace catchall::bench
