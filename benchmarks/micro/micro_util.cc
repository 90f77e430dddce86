#include "micro_util.h"

#include <fmt/format.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "engine/event.h"
#include "engine/partitioner.h"

namespace catchall::micro {

ScopedTempDir::ScopedTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/catchall-micro-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    std::fprintf(stderr, "mkdtemp failed: %s\n", templ.c_str());
    std::abort();
  }
  path_ = templ;
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string DomainName(uint64_t index) {
  static constexpr std::string_view kTlds[] = {".net", ".com", ".org", ".io", ".gov"};
  Rng rng(index * 0x2545f4914f6cdd1dULL + 17);
  std::string name;
  name.reserve(18);
  for (int i = 0; i < 14; ++i) name.push_back(static_cast<char>('a' + rng.Below(26)));
  name += kTlds[rng.Below(5)];
  return name;
}

std::string EventId(uint64_t salt, uint64_t index) {
  Rng rng(salt * 0x9e3779b97f4a7c15ULL + index);
  uint64_t a = rng.Next();
  uint64_t b = rng.Next();
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xffff,
                     b >> 48, b & 0xffffffffffffULL);
}

KvStoreOptions StoreOptions(std::string path, std::vector<ColumnSpec> columns) {
  KvStoreOptions options;
  options.path = std::move(path);
  options.columns = std::move(columns);
  return options;
}

void CheckOk(const Status& status, std::string_view what) {
  if (status.ok()) return;
  std::fprintf(stderr, "catchall-micro: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               status.ToString().c_str());
  std::abort();
}

RecordStream MakeEventStream(StreamShape shape, size_t count, uint64_t id_salt) {
  constexpr uint64_t kUniformDomains = 1'000'000;
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  RecordStream stream;
  stream.records.reserve(count);
  std::vector<int64_t> next_offset(kPartitions, 0);
  Rng rng(42);
  uint64_t burst_domain = 0;
  uint64_t burst_left = 0;
  uint64_t burst_size = 0;
  Event event;
  for (size_t i = 0; i < count; ++i) {
    bool bounce = false;
    if (shape == StreamShape::kBursts) {
      if (burst_left == 0) {
        ++burst_domain;
        burst_size = 1 + rng.Below(2500);
        burst_left = burst_size;
      }
      uint64_t j = burst_size - burst_left--;
      uint64_t b = burst_size * 35 / 100;
      bounce = burst_domain % 25 != 0 && b != 0 && j % b == 0;
      event.domain = DomainName(burst_domain);
    } else {
      event.domain = DomainName(rng.Below(kUniformDomains));
      bounce = rng.Below(100) == 0;
    }
    event.type = bounce ? EventType::kBounced : EventType::kDelivered;
    event.id = id_salt == 0 ? std::string() : EventId(id_salt, i);
    const std::string& key = stream.bytes.emplace_back(event.domain);
    std::string& value = stream.bytes.emplace_back();
    AppendEventJson(event, &value);
    int32_t partition = PartitionForKey(key, kPartitions);
    stream.records.push_back(
        ConsumedRecord{partition, next_offset[partition]++, now_ms, key, value});
  }
  return stream;
}

}  // namespace catchall::micro
