#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace catchall::bench {

size_t Histogram::IndexOf(uint64_t value) {
  if (value < kLinearLimit) return static_cast<size_t>(value);
  if (value > kMaxValue) value = kMaxValue;
  const int msb = 63 - std::countl_zero(value);  // >= kSubBucketBits + 1
  const int shift = msb - kSubBucketBits;        // >= 1
  return static_cast<size_t>(kLinearLimit + static_cast<uint64_t>(shift - 1) * kSubBuckets +
                             ((value >> shift) - kSubBuckets));
}

uint64_t Histogram::LowestOf(size_t index) {
  if (index < kLinearLimit) return index;
  const uint64_t rel = index - kLinearLimit;
  const int shift = static_cast<int>(rel / kSubBuckets) + 1;
  return (kSubBuckets + rel % kSubBuckets) << shift;
}

uint64_t Histogram::WidthOf(size_t index) {
  if (index < kLinearLimit) return 1;
  return 1ull << ((index - kLinearLimit) / kSubBuckets + 1);
}

void Histogram::RecordN(uint64_t value, uint64_t n) {
  if (n == 0) return;
  counts_[IndexOf(value)] += n;
  if (count_ == 0 || value < min_) min_ = value;
  if (value > max_) max_ = value;
  count_ += n;
  sum_ += value * n;
}

void Histogram::Add(const Histogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  if (count_ == 0 || other.min_ < min_) min_ = other.min_;
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void Histogram::Reset() {
  counts_.fill(0);
  count_ = min_ = max_ = sum_ = 0;
}

uint64_t Histogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  if (rank == count_) return max_;  // the largest sample is known exactly
  uint64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t mid = LowestOf(i) + WidthOf(i) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace catchall::bench
