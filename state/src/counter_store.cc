#include "state/counter_store.h"

#include <fmt/format.h>

#include "engine/changelog.h"
#include "engine/partitioner.h"

namespace catchall {
namespace {
constexpr std::string_view kCountsColumn = "state.counts";
constexpr std::string_view kIdsColumn = "state.ids";
}  // namespace

std::vector<ColumnSpec> CounterStore::Columns(std::chrono::seconds id_window) {
  return {
      {std::string(kCountsColumn), ColumnKind::kCounters, {}},
      {std::string(CounterStore::kOffsetsColumn), ColumnKind::kPlain, {}},
      {std::string(kIdsColumn), ColumnKind::kExpiring,
       std::chrono::duration_cast<std::chrono::milliseconds>(id_window)},
  };
}

CounterStore::CounterStore(KvStore* store, std::string source)
    : store_(store),
      source_(std::move(source)),
      counts_(store->GetColumn(kCountsColumn)),
      offsets_(store->GetColumn(CounterStore::kOffsetsColumn)),
      ids_(store->GetColumn(kIdsColumn)),
      counts_table_(store, counts_) {}

Result<DomainCounts> CounterStore::Get(std::string_view domain) const {
  return counts_table_.Get(domain);
}

Status CounterStore::MultiGet(const std::vector<std::string>& domains,
                              std::vector<DomainCounts>* out) const {
  return counts_table_.MultiGet(domains, out);
}

std::string CounterStore::OffsetKey(int32_t partition) const {
  return fmt::format("{}/{}", source_, partition);
}

Result<int64_t> CounterStore::ReadOffset(const std::string& key, int64_t missing) const {
  std::string value;
  Status s = store_->Get(offsets_, key, &value);
  if (s.code() == Code::kNotFound) return missing;
  if (!s.ok()) return s;
  if (value.size() != 8) return Status::Corruption("stored offset has a bad size");
  return static_cast<int64_t>(DecodeFixed64(value.data()));
}

Result<StateCheckpoint> CounterStore::ReadCheckpoint(int32_t partition) const {
  StateCheckpoint c;
  std::string key = OffsetKey(partition);
  Result<int64_t> events = ReadOffset(key, 0);
  if (!events.ok()) return events.status();
  Result<int64_t> changelog = ReadOffset("changelog/" + key, -1);
  if (!changelog.ok()) return changelog.status();
  Result<int64_t> ids = ReadOffset("ids/" + key, -1);
  if (!ids.ok()) return ids.status();
  c.events_offset = *events;
  c.changelog_offset = *changelog;
  c.ids_offset = *ids;
  return c;
}

Status CounterStore::IdTimestamps(const std::vector<std::string_view>& id_keys,
                                  std::vector<std::optional<int64_t>>* out) const {
  std::vector<std::optional<std::string>> values;
  CATCHALL_RETURN_IF_ERROR(store_->MultiGet(ids_, id_keys, &values));
  out->assign(id_keys.size(), std::nullopt);
  for (size_t i = 0; i < values.size(); ++i) {
    if (!values[i]) continue;
    if (values[i]->size() < 8) return Status::Corruption("stored id has a bad size");
    (*out)[i] = static_cast<int64_t>(DecodeFixed64(values[i]->data()));
  }
  return Status::Ok();
}

void CounterStore::AddCounts(std::string_view domain, const DomainCounts& counts,
                             KvWriteBatch* batch) const {
  batch->Merge(counts_, domain, EncodeCounts(counts));
}

void CounterStore::PutCounts(std::string_view domain, const DomainCounts& counts,
                             KvWriteBatch* batch) const {
  batch->Put(counts_, domain, EncodeCounts(counts));
}

void CounterStore::PutId(std::string_view id_key, int64_t timestamp_ms, KvWriteBatch* batch) const {
  std::string v;
  PutFixed64(&v, static_cast<uint64_t>(timestamp_ms));
  batch->Put(ids_, id_key, v);
}

Result<size_t> CounterStore::PutIdsOf(const ConsumedRecord& record, KvWriteBatch* batch,
                                      int32_t partitions) const {
  // Checked whole before anything is staged: an id of a domain another
  // partition owns was written by something else, and taken, it made a
  // later request with that key a retry (a black-box probe).
  std::vector<std::pair<std::string, int64_t>> ids;
  std::string foreign;  // the first such domain
  Status read =
      ForEachIdInRecord(record, [&](std::string_view domain, std::string_view id, int64_t ts) {
        if (partitions > 0 && foreign.empty() &&
            PartitionForKey(domain, partitions) != record.partition) {
          foreign.assign(domain);
        }
        ids.emplace_back(IdKey(domain, id), ts);
      });
  if (!read.ok()) return read;
  if (!foreign.empty()) {
    return Status::Corruption(fmt::format(
        "ids record in partition {} holds an id of '{}', whose partition is {}", record.partition,
        foreign.substr(0, 300), PartitionForKey(foreign, partitions)));
  }
  for (const auto& [key, ts] : ids) PutId(key, ts, batch);
  return ids.size();
}

void CounterStore::PutCheckpoint(int32_t partition, const StateCheckpoint& checkpoint,
                                 KvWriteBatch* batch) const {
  auto put = [&](const std::string& key, int64_t offset) {
    std::string v;
    PutFixed64(&v, static_cast<uint64_t>(offset));
    batch->Put(offsets_, key, v);
  };
  std::string key = OffsetKey(partition);
  put(key, checkpoint.events_offset);
  if (checkpoint.changelog_offset >= 0) put("changelog/" + key, checkpoint.changelog_offset);
  if (checkpoint.ids_offset >= 0) put("ids/" + key, checkpoint.ids_offset);
}

Status CounterStore::CheckAgainstLog(const std::map<int32_t, int64_t>& committed,
                                     const std::map<int32_t, int64_t>& ends,
                                     const std::map<int32_t, int64_t>& starts) const {
  for (const auto& [partition, end] : ends) {
    Result<StateCheckpoint> checkpoint = ReadCheckpoint(partition);
    if (!checkpoint.ok()) return checkpoint.status();
    const int64_t counted = checkpoint->events_offset;
    auto group = committed.find(partition);
    // Ahead of the group's offset is fine: the state's checkpoint only
    // grows, with the offsets of whichever group committed last, and a
    // data dir run under another group name (kafka.group_id) leaves the
    // first group's offsets behind (a review). Behind it, never.
    if (group != committed.end() && group->second > counted) {
      return Status::Corruption(fmt::format(
          "partition {}'s counters reflect the events below offset {}, but the log records "
          "them counted up to offset {}; the two are written together, so the data dir's files "
          "were damaged or restored in part, and counting on would count events twice or never",
          partition, counted, group->second));
    }
    if (counted > end) {
      return Status::Corruption(fmt::format(
          "partition {}'s counters reflect the events below offset {}, but the log ends at "
          "offset {}; the log's files were damaged or restored in part",
          partition, counted, end));
    }
    // Retention deletes only counted events; a gap would be skipped without
    // a word (the reader starts at the log's start; a review).
    auto start = starts.find(partition);
    if (start != starts.end() && counted < start->second) {
      return Status::Corruption(fmt::format(
          "partition {}'s counters reflect the events below offset {}, but the log holds them "
          "only from offset {} on: the events in between are gone uncounted; the data dir's "
          "files were damaged or restored in part",
          partition, counted, start->second));
    }
  }
  return Status::Ok();
}

uint64_t CounterStore::ApproximateDomains() const { return store_->EstimateKeys(counts_); }

uint64_t CounterStore::ApproximateBytes() const {
  return store_->LiveBytes(counts_) + store_->LiveBytes(ids_);
}

}  // namespace catchall
