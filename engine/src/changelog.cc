#include "engine/changelog.h"

#include <fmt/format.h>
#include <simdjson.h>

#include "engine/counts_table.h"
#include "engine/domain.h"
#include "engine/domain_status.h"
#include "engine/json_writer.h"
#include "engine/partitioner.h"

namespace catchall {

void AppendIdRecordJson(std::string_view id, int64_t timestamp_ms, std::string* out) {
  out->append(R"({"id":)");
  AppendJsonString(id, out);
  out->append(R"(,"ts":)");
  AppendDecimal(timestamp_ms, out);
  out->push_back('}');
}

Result<IdRecord> ParseIdRecordJson(std::string_view json) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view id;
  int64_t ts = 0;
  if (parser.parse(json.data(), json.size()).get(root) || root["id"].get_string().get(id) ||
      root["ts"].get_int64().get(ts)) {
    return Status::Corruption("id record lacks a string 'id' and an integer 'ts'");
  }
  return IdRecord{std::string(id), ts};
}

void IdBatchJson::Add(std::string_view domain, std::string_view id, int64_t timestamp_ms) {
  json_.append(ids_ == 0 ? R"({"ids":[[)" : ",[");
  AppendJsonString(domain, &json_);
  json_.push_back(',');
  AppendJsonString(id, &json_);
  json_.push_back(',');
  AppendDecimal(timestamp_ms, &json_);
  json_.push_back(']');
  ++ids_;
}

std::string IdBatchJson::Take() {
  std::string out = ids_ == 0 ? std::string(R"({"ids":[]})") : std::move(json_) + "]}";
  json_.clear();
  ids_ = 0;
  return out;
}

namespace {

// One entry of a batch: ["domain","id",ts].
bool ReadBatchEntry(simdjson::dom::element entry, std::string_view* domain, std::string_view* id,
                    int64_t* ts) {
  simdjson::dom::array fields;
  if (entry.get_array().get(fields) || fields.size() != 3) return false;
  auto it = fields.begin();
  if ((*it).get_string().get(*domain)) return false;
  ++it;
  if ((*it).get_string().get(*id)) return false;
  ++it;
  return !(*it).get_int64().get(*ts);
}

}  // namespace

Status ForEachIdInRecord(
    const ConsumedRecord& record,
    const std::function<void(std::string_view domain, std::string_view id, int64_t ts)>& each) {
  if (record.key == kChangelogCheckpointKey) return Status::Ok();
  if (record.key != kIdsBatchKey) {
    Result<IdRecord> one = ParseIdRecordJson(record.value);
    if (!one.ok()) return one.status();
    each(record.key, one->id, one->timestamp_ms);
    return Status::Ok();
  }
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::array entries;
  if (parser.parse(record.value.data(), record.value.size()).get(root) ||
      root["ids"].get_array().get(entries)) {
    return Status::Corruption("ids batch lacks an 'ids' array");
  }
  std::string_view domain;
  std::string_view id;
  int64_t ts = 0;
  // Every entry is checked before the first is handed out: a record is
  // applied whole or not at all.
  for (simdjson::dom::element entry : entries) {
    if (!ReadBatchEntry(entry, &domain, &id, &ts)) {
      return Status::Corruption("an ids batch entry is not [\"domain\",\"id\",ts]");
    }
  }
  for (simdjson::dom::element entry : entries) {
    ReadBatchEntry(entry, &domain, &id, &ts);
    each(domain, id, ts);
  }
  return Status::Ok();
}

std::string IdKey(std::string_view domain, std::string_view id) {
  std::string key;
  key.reserve(domain.size() + 1 + id.size());
  key.append(domain);
  key.push_back('\0');
  key.append(id);
  return key;
}

ChangelogEffect DecodeChangelogRecord(const ConsumedRecord& record, DomainCounts* counts,
                                      int32_t partitions) {
  ChangelogEffect effect;
  if (record.key == kChangelogCheckpointKey) {
    Result<int64_t> through = ParseChangelogCheckpointJson(record.value, record.partition);
    if (!through.ok()) {
      effect.problem = through.status().message();
      return effect;
    }
    effect.kind = ChangelogEffect::kCheckpoint;
    effect.events_offset = *through;
    return effect;
  }
  if (partitions > 0) {
    int32_t expected = PartitionForKey(record.key, partitions);
    if (expected != record.partition) {
      effect.problem = fmt::format("record is in partition {} but its key belongs to partition {}",
                                   record.partition, expected);
      return effect;
    }
  }
  if (record.value.empty()) {
    effect.kind = ChangelogEffect::kDelete;
    return effect;
  }
  // Keys no lookup can reach (`UP.COM`, a 400 KB name) were stored by
  // query nodes (a black-box probe).
  if (!HasNormalizedDomainShape(record.key)) {
    effect.problem = fmt::format("record key {} is not a normalized domain",
                                 QuotedForLog(record.key.substr(0, 300)));
    return effect;
  }
  Result<DomainCounts> parsed = ParseDomainStatusJson(record.value, record.key);
  if (!parsed.ok()) {
    effect.problem = parsed.status().message();
    return effect;
  }
  *counts = *parsed;
  effect.kind = ChangelogEffect::kPut;
  return effect;
}

ChangelogEffect ChangelogApplier::Apply(const ConsumedRecord& record, KvWriteBatch* batch) const {
  DomainCounts counts;
  ChangelogEffect effect = DecodeChangelogRecord(record, &counts, partitions_);
  if (effect.kind == ChangelogEffect::kDelete) batch->Delete(counts_, record.key);
  if (effect.kind == ChangelogEffect::kPut) batch->Put(counts_, record.key, EncodeCounts(counts));
  return effect;
}

}  // namespace catchall
