#include "commit_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string_view>
#include <utility>

#include "engine/changelog.h"
#include "engine/domain_status.h"
#include "engine/key_sort.h"
#include "engine/partitioner.h"

namespace catchall {
namespace {

// An ids batch record is sent once it reaches this size: well below the
// broker's and the producer's 1 MB message limits, with the longest entry
// (a 253-byte domain and a long id, escaped) on top.
constexpr size_t kMaxIdBatchBytes = 128 << 10;

using CountsEntry = CountsByDomain::value_type;

void PublishCounts(const std::vector<const CountsEntry*>& entries,
                   const std::vector<DomainCounts>& stored, const CounterStore& store,
                   const PublishOptions& publish, LogTransaction* txn, KvWriteBatch* state) {
  std::string value;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& [domain, delta] = *entries[i];
    DomainCounts total = stored[i];
    total += delta;
    value.clear();
    AppendDomainStatusJson(domain, total, publish.catchall_threshold, &value);
    txn->records.push_back(OutputRecord{
        publish.status_topic, PartitionForKey(domain, publish.partitions), domain, value});
    store.PutCounts(domain, total, state);
  }
}

}  // namespace

Status BuildCommit(const CounterDelta& delta, std::vector<OutputRecord> dead_letters,
                   const CounterStore& store, const PublishOptions* publish,
                   const std::function<StateCheckpoint(int32_t)>& resume, LogTransaction* txn,
                   KvWriteBatch* state) {
  txn->records = std::move(dead_letters);
  txn->offsets.clear();
  state->Clear();
  // In key order: RocksDB's memtable inserts a run of ascending keys
  // without searching its skip list from the top for each
  // (KvWriteBatch::MarkKeysAscending; perf showed the search at
  // ~8% of `catchall serve`'s CPU under single PUTs and at ~24% of a
  // cluster aggregator's under uniform traffic), and MultiGet reads
  // neighbouring keys together.
  // The delta's entries are sorted in place, by pointer: sorting copies of
  // the domains and finding each again in the delta was ~12% of a cluster
  // aggregator's CPU under uniform traffic (perf, drain benchmark).
  std::vector<const CountsEntry*> entries;
  entries.reserve(delta.counts.size());
  for (const CountsEntry& entry : delta.counts) entries.push_back(&entry);
  SortByKey(&entries, [](const CountsEntry* entry) -> std::string_view { return entry->first; });
  state->MarkKeysAscending();  // counters and ids below each go in key order
  if (publish) {
    // New absolute counters: what the state holds (as of the last commit)
    // plus the delta.
    std::vector<std::string_view> domains;
    domains.reserve(entries.size());
    for (const CountsEntry* entry : entries) domains.emplace_back(entry->first);
    std::vector<DomainCounts> stored;
    CATCHALL_RETURN_IF_ERROR(store.MultiGetViews(domains, &stored));
    PublishCounts(entries, stored, store, *publish, txn, state);
  } else {
    for (const auto* entry : entries) store.AddCounts(entry->first, entry->second, state);
  }
  std::vector<std::pair<std::string_view, int64_t>> ids(delta.ids.begin(), delta.ids.end());
  SortByKey(&ids, [](const auto& id) { return id.first; });
  // The new ids go to the ids log in batches, a few records per partition
  // rather than one per id: producing one record per id was ~12% of a
  // cluster aggregator's CPU under uniform traffic with ids (drain
  // benchmark), and each record costs the broker and every reader too.
  std::map<int32_t, IdBatchJson> batches;
  auto send = [&](int32_t partition, IdBatchJson* batch) {
    txn->records.push_back(
        OutputRecord{publish->ids_topic, partition, std::string(kIdsBatchKey), batch->Take()});
  };
  for (const auto& [key, ts] : ids) {
    store.PutId(key, ts, state);
    if (!publish) continue;
    size_t nul = key.find('\0');
    std::string_view domain(key.data(), nul);
    int32_t partition = PartitionForKey(domain, publish->partitions);
    if (!publish->ids_batches) {
      std::string one;
      AppendIdRecordJson(key.substr(nul + 1), ts, &one);
      txn->records.push_back(
          OutputRecord{publish->ids_topic, partition, std::string(domain), std::move(one)});
      continue;
    }
    IdBatchJson& batch = batches[partition];
    batch.Add(domain, key.substr(nul + 1), ts);
    if (batch.bytes() >= kMaxIdBatchBytes) send(partition, &batch);
  }
  if (publish) {  // batches fill only when publishing
    for (auto& [partition, batch] : batches) {
      if (batch.ids() > 0) send(partition, &batch);
    }
  }
  std::string value;
  for (const auto& [p, offset] : delta.offsets) {
    txn->offsets[p] = offset;
    StateCheckpoint checkpoint = resume(p);
    checkpoint.events_offset = offset;
    store.PutCheckpoint(p, checkpoint, state);
    if (!publish) continue;
    // A partition added to the events topic in place (operations.md, "A
    // partition is added") has none in the changelog or the ids log: every
    // transaction that checkpointed it there was aborted, and the
    // aggregator counted nothing more. Its records are all dead-lettered
    // (their keys belong to the partitions counted since the start), so
    // there is no state of it to checkpoint; its offsets still commit.
    if (p >= publish->partitions) continue;
    // One checkpoint per advanced partition in both logs: a restore knows it
    // has read everything up to the committed offset only once it sees it.
    value.clear();
    AppendChangelogCheckpointJson(p, offset, &value);
    txn->records.push_back(
        OutputRecord{publish->status_topic, p, std::string(kChangelogCheckpointKey), value});
    txn->records.push_back(
        OutputRecord{publish->ids_topic, p, std::string(kChangelogCheckpointKey), value});
  }
  return Status::Ok();
}

}  // namespace catchall
