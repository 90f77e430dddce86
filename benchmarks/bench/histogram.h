// A log-linear latency histogram in the style of HdrHistogram.
//
// Values are nanoseconds. Values below 256 ns are counted exactly; above,
// each power of two is split into 128 equal sub-buckets, so a recorded value
// is known to within 1/128 (0.78%) of itself, and the value reported for a
// percentile (the middle of its bucket) is within 0.4% of the true sample.
// The range ends at 2^40 ns (about 18 minutes); larger values are clamped.
// Memory is fixed (about 34 KiB); Record() never allocates.
//
// Not thread-safe: each thread records into its own histogram and the
// reporter merges them (Add) under the owner's lock.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace catchall::bench {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 7;  // 128 per octave
  static constexpr uint64_t kSubBuckets = 1ull << kSubBucketBits;
  static constexpr uint64_t kLinearLimit = 2 * kSubBuckets;  // [0, 256) exact
  static constexpr int kMaxBits = 40;                        // 2^40 ns
  static constexpr uint64_t kMaxValue = (1ull << kMaxBits) - 1;
  static constexpr size_t kBucketCount =
      kLinearLimit + (kMaxBits - kSubBucketBits - 1) * kSubBuckets;

  Histogram() { Reset(); }

  void Record(uint64_t value_ns) { RecordN(value_ns, 1); }
  void RecordN(uint64_t value_ns, uint64_t n);

  // Adds every sample of `other`.
  void Add(const Histogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  // Exact smallest and largest recorded values (0 when empty).
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0;
  }

  // The value below which a fraction `q` (0..1) of the samples fall: the
  // middle of the bucket holding the ceil(q * count)-th sample, clamped to
  // [min, max]; the exact max for the last sample. 0 when empty.
  uint64_t Percentile(double q) const;

  // Bucket arithmetic, exposed for tests.
  static size_t IndexOf(uint64_t value);
  static uint64_t LowestOf(size_t index);
  static uint64_t WidthOf(size_t index);

 private:
  std::array<uint64_t, kBucketCount> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
  uint64_t sum_ = 0;  // saturates only after ~584 years of total latency
};

}  // namespace catchall::bench
