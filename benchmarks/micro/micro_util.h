// Helpers shared by catchall's micro-benchmarks: scratch directories,
// reproducible domain names, and the records of the events topic the way an
// aggregator reads them. Everything here runs outside the timed loops.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "engine/kv_store.h"
#include "engine/log.h"
#include "engine/status.h"

namespace catchall::micro {

// Partitions of the events topic, as in the default configuration.
inline constexpr int32_t kPartitions = 8;

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on
// destruction.
class ScopedTempDir {
 public:
  ScopedTempDir();
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// SplitMix64: a small, seeded generator, so every run sees the same inputs.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n). REQUIRES: n > 0
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

// The normalized name of domain `index`: 14 lower-case letters and one of
// .com/.net/.org/.io/.gov (the challenge's shape), a pure function of index.
std::string DomainName(uint64_t index);

// A UUID-shaped event id (as producers usually send), a pure function of
// (salt, index).
std::string EventId(uint64_t salt, uint64_t index);

// KvStore options as the server opens its store (default block cache and
// write buffer, no fsync), at `path`.
KvStoreOptions StoreOptions(std::string path, std::vector<ColumnSpec> columns);

// For setup that cannot fail in a working build: prints `what` and the
// status and aborts when `status` is not OK.
void CheckOk(const Status& status, std::string_view what);

// How the domains of a stream are spread.
enum class StreamShape {
  // The challenge's shape: each domain gets a burst of 1..2500 events in a
  // row; about 0.2% of events are bounces (see benchmarks/bench/workload.h).
  kBursts,
  // Each event picks one of 1,000,000 domains uniformly; 1% bounces.
  kUniform,
};

// Records of the events topic as the aggregator reads them, each in the
// partition its key belongs to. Owns the bytes the records point into.
struct RecordStream {
  std::deque<std::string> bytes;
  std::vector<ConsumedRecord> records;
};

// `count` records of `shape`. With `id_salt` != 0 event i carries the id
// EventId(id_salt, i): streams made with different salts share no id.
RecordStream MakeEventStream(StreamShape shape, size_t count, uint64_t id_salt);

}  // namespace catchall::micro
