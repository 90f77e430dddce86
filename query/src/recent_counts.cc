#include "recent_counts.h"

#include <algorithm>
#include <cstdint>
#include <mutex>

#include "engine/key_sort.h"

namespace catchall {

RecentCounts::RecentCounts(size_t expected_domains)
    // A shard's share varies by a few hundred around the mean (binomial);
    // 1/8 more covers it at every size that matters.
    : per_shard_(expected_domains / kShards + expected_domains / kShards / 8) {
  for (Shard& shard : shards_) shard.active = NewActiveTable();
}

RecentCounts::Table RecentCounts::NewActiveTable() const {
  Table table;
  table.map.reserve(per_shard_);
  return table;
}

size_t RecentCounts::shard_capacity() const {
  size_t least = SIZE_MAX;
  for (const Shard& shard : shards_) {
    std::shared_lock lock(shard.mu);
    // absl's tables grow when 7/8 of their slots are taken.
    size_t slots = shard.active.map.capacity();
    least = std::min(least, slots - slots / 8);
  }
  return least;
}

RecentCounts::Shard& RecentCounts::ShardOf(std::string_view domain) const {
  return shards_[std::hash<std::string_view>{}(domain) % kShards];
}

void RecentCounts::Set(std::string_view domain, Value value) {
  Shard& shard = ShardOf(domain);
  std::unique_lock lock(shard.mu);
  auto it = shard.active.map.find(domain);
  if (it != shard.active.map.end()) {
    it->second = value;
    return;
  }
  // A new domain: its name is copied into the table's arena, which the
  // key points to.
  auto* copy = static_cast<char*>(shard.active.names->allocate(domain.size(), 1));
  std::copy(domain.begin(), domain.end(), copy);
  shard.active.map.emplace(std::string_view(copy, domain.size()), value);
  size_.fetch_add(1, std::memory_order_relaxed);
}

void RecentCounts::Put(std::string_view domain, const DomainCounts& counts) { Set(domain, counts); }

void RecentCounts::Prefetch(std::string_view domain) const {
  ShardOf(domain).active.map.prefetch(domain);
}

void RecentCounts::Delete(std::string_view domain) { Set(domain, std::nullopt); }

bool RecentCounts::Find(std::string_view domain, Value* value) const {
  Shard& shard = ShardOf(domain);
  std::shared_lock lock(shard.mu);
  // The active table is newer than the frozen one.
  for (const Table* table : {&shard.active, &shard.frozen}) {
    auto it = table->map.find(domain);
    if (it != table->map.end()) {
      *value = it->second;
      return true;
    }
  }
  return false;
}

void RecentCounts::Freeze() {
  for (Shard& shard : shards_) {
    Table fresh = NewActiveTable();  // allocated before the lock is taken
    std::unique_lock lock(shard.mu);
    shard.frozen = std::move(shard.active);
    shard.active = std::move(fresh);
  }
  frozen_size_.store(size_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  size_.store(0, std::memory_order_relaxed);
  frozen_.store(true, std::memory_order_release);
}

RecentCounts::SortedEntries RecentCounts::SortedFrozen() const {
  size_t n = 0;
  for (const Shard& shard : shards_) n += shard.frozen.map.size();
  SortedEntries entries;
  entries.reserve(n);
  // Only Release changes the frozen tables, and not meanwhile.
  for (const Shard& shard : shards_) {
    for (const auto& [domain, value] : shard.frozen.map) entries.emplace_back(domain, &value);
  }
  SortByKey(&entries, [](const auto& entry) { return entry.first; });
  return entries;
}

void RecentCounts::Release() {
  for (Shard& shard : shards_) {
    Table dropped;
    {
      std::unique_lock lock(shard.mu);
      std::swap(dropped, shard.frozen);
    }
    // Freed outside the lock: lookups need not wait for it.
  }
  frozen_size_.store(0, std::memory_order_relaxed);
  frozen_.store(false, std::memory_order_release);
}

}  // namespace catchall
