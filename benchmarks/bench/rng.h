// Small, fast, seedable random numbers for workload generation.
//
// SplitMix64 is both a hash (Mix) used to derive independent streams from
// (seed, index) pairs, and a sequential generator. Its quality is ample for
// load generation and it is identical on every platform, so a seed always
// reproduces the same workload.
#pragma once

#include <cstdint>

namespace catchall::bench {

// A bijective 64-bit finalizer (the SplitMix64 / Murmur3 avalanche).
constexpr uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Combines a seed and a stream id into an independent stream seed.
constexpr uint64_t StreamSeed(uint64_t seed, uint64_t stream) {
  return Mix64(seed * 0x9e3779b97f4a7c15ull + Mix64(stream + 0x632be59bd9b4e019ull));
}

__extension__ using Uint128 = unsigned __int128;

class SplitMix64 {
 public:
  explicit constexpr SplitMix64(uint64_t seed) : state_(seed) {}

  constexpr uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ull;
    return Mix64(state_);
  }

  // Uniform in [0, n) (Lemire's multiply-shift; bias < n / 2^64).
  constexpr uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<Uint128>(Next()) * n) >> 64);
  }

  // Uniform in [0, 1).
  constexpr double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

}  // namespace catchall::bench
