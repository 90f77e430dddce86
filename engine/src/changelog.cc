#include "engine/changelog.h"

#include <fmt/format.h>
#include <simdjson.h>

#include "engine/counts_table.h"
#include "engine/domain_status.h"
#include "engine/json_writer.h"

namespace catchall {

void AppendIdRecordJson(std::string_view id, int64_t timestamp_ms, std::string* out) {
  out->append(R"({"id":)");
  AppendJsonString(id, out);
  fmt::format_to(std::back_inserter(*out), R"(,"ts":{}}})", timestamp_ms);
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

std::string IdKey(std::string_view domain, std::string_view id) {
  std::string key;
  key.reserve(domain.size() + 1 + id.size());
  key.append(domain);
  key.push_back('\0');
  key.append(id);
  return key;
}

ChangelogEffect ChangelogApplier::Apply(const ConsumedRecord& record, KvWriteBatch* batch) const {
  ChangelogEffect effect;
  if (record.key == kChangelogCheckpointKey) {
    Result<int64_t> through = ParseChangelogCheckpointJson(record.value);
    if (!through.ok()) {
      effect.problem = through.status().message();
      return effect;
    }
    effect.kind = ChangelogEffect::kCheckpoint;
    effect.events_offset = *through;
    return effect;
  }
  if (record.value.empty()) {
    batch->Delete(counts_, record.key);
    effect.kind = ChangelogEffect::kDelete;
    return effect;
  }
  Result<DomainCounts> counts = ParseDomainStatusJson(record.value);
  if (!counts.ok()) {
    effect.problem = counts.status().message();
    return effect;
  }
  batch->Put(counts_, record.key, EncodeCounts(*counts));
  effect.kind = ChangelogEffect::kPut;
  return effect;
}

}  // namespace catchall
