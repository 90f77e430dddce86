// SortByKey: sorts items by a string key each one names, in byte order (the
// order of RocksDB's bytewise comparator, in which the stores want their
// keys written and read).
//
// Why not std::sort with a string comparison: the keys it sorts (domains,
// id keys that start with their domain) live elsewhere in memory and share
// their first bytes, so every comparison is a cache miss and a call to
// memcmp. Here each item is paired with its key's first 8 bytes as one
// integer, and most comparisons end there; only items whose first 8 bytes
// match compare the whole keys. perf of the cluster aggregator's drain put
// its three sorts and their memcmp at ~6% of its CPU (docs/benchmarks.md).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace catchall {

// The first 8 bytes of `key` as an integer that orders like them. Bytes past
// the end count as 0: a shorter key never gets the larger prefix, and a
// key that ties with a longer one on all 8 bytes ("abc" and "abc\0") is
// ordered by the full comparison.
inline uint64_t KeyPrefix(std::string_view key) {
  unsigned char bytes[8] = {};
  if (!key.empty()) std::memcpy(bytes, key.data(), std::min(key.size(), sizeof(bytes)));
  uint64_t prefix = 0;
  for (unsigned char b : bytes) prefix = (prefix << 8) | b;
  return prefix;
}

// Sorts `items` so that key_of(items[i]) ascends; key_of(item) returns
// something convertible to std::string_view. Items with equal keys end in
// no particular order.
template <typename T, typename KeyOf>
void SortByKey(std::vector<T>* items, KeyOf key_of) {
  struct Tagged {
    uint64_t prefix;
    T item;
  };
  std::vector<Tagged> tagged;
  tagged.reserve(items->size());
  for (T& item : *items) tagged.push_back(Tagged{KeyPrefix(key_of(item)), std::move(item)});
  std::sort(tagged.begin(), tagged.end(), [&key_of](const Tagged& a, const Tagged& b) {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    return std::string_view(key_of(a.item)) < std::string_view(key_of(b.item));
  });
  for (size_t i = 0; i < tagged.size(); ++i) (*items)[i] = std::move(tagged[i].item);
}

}  // namespace catchall
