#include "engine/domain_status.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <limits>

#include "engine/json_writer.h"

namespace catchall {

std::string_view CatchAllStatusName(CatchAllStatus status) {
  switch (status) {
    case CatchAllStatus::kCatchAll: return "catch-all";
    case CatchAllStatus::kNotCatchAll: return "not catch-all";
    case CatchAllStatus::kUnknown: return "unknown";
  }
  return "unknown";
}

void AppendDomainStatusJson(std::string_view domain, const DomainCounts& counts, uint64_t threshold,
                            std::string* out) {
  // Plain appends, not fmt::format_to: this runs once per changed domain in
  // every aggregator commit and once per GET, and fmt's runtime format
  // parsing and buffered back-inserter took ~2% of a draining aggregator
  // (perf) and most of this function's 320 ns (catchall-micro
  // --benchmark_filter=ClassifyAndJson). `domain` is normalized (LDH only),
  // so it needs no escaping.
  out->append(R"({"domain":")");
  out->append(domain);
  out->append(R"(","status":")");
  out->append(CatchAllStatusName(Classify(counts, threshold)));
  out->append(R"(","delivered":)");
  AppendDecimal(counts.delivered, out);
  out->append(R"(,"bounced":)");
  AppendDecimal(counts.bounced, out);
  out->push_back('}');
}

void AppendChangelogCheckpointJson(int32_t partition, int64_t events_offset, std::string* out) {
  fmt::format_to(std::back_inserter(*out),
                 R"({{"checkpoint":true,"partition":{},"events_offset":{}}})", partition,
                 events_offset);
}

Result<int64_t> ParseChangelogCheckpointJson(std::string_view json, int32_t partition) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  int64_t offset = 0;
  if (parser.parse(json.data(), json.size()).get(root) ||
      root["events_offset"].get_int64().get(offset)) {
    return Status::Corruption("changelog checkpoint record lacks an integer 'events_offset'");
  }
  // A checkpoint copied or written into another partition would vouch for
  // that partition's records: a restore ended at it and lost the events
  // committed after (a black-box probe, seventeenth session).
  int64_t named = 0;
  if (root["partition"].get_int64().get(named)) {
    return Status::Corruption("changelog checkpoint record lacks an integer 'partition'");
  }
  if (named != partition) {
    return Status::Corruption(fmt::format(
        "changelog checkpoint record names partition {} but is in partition {}", named, partition));
  }
  return offset;
}

namespace {

// One counter of a status record, or why it is not one: the skip reason
// names the field and what is wrong with it (a negative count was said
// to be missing).
Status ReadCount(simdjson::dom::element root, const char* field, uint64_t* out) {
  simdjson::dom::element value;
  if (root[field].get(value)) {
    return Status::Corruption(fmt::format("status record lacks '{}'", field));
  }
  if (!value.get_uint64().get(*out)) return Status::Ok();
  int64_t negative = 0;
  if (!value.get_int64().get(negative)) {
    return Status::Corruption(
        fmt::format("status record's '{}' is negative ({})", field, negative));
  }
  return Status::Corruption(
      fmt::format("status record's '{}' is not a non-negative integer", field));
}

}  // namespace

Result<DomainCounts> ParseDomainStatusJson(std::string_view json, std::string_view domain) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(json.data(), json.size()).get(root)) {
    return Status::Corruption(
        fmt::format("status record is not JSON: {}", simdjson::error_message(error)));
  }
  if (!root.is_object()) return Status::Corruption("status record is not a JSON object");
  DomainCounts c;
  uint64_t delivered = 0;
  uint64_t bounced = 0;
  if (Status s = ReadCount(root, "delivered", &delivered); !s.ok()) return s;
  if (Status s = ReadCount(root, "bounced", &bounced); !s.ok()) return s;
  // No count gets near 2^63 (1.4 million years at 200,000 events/s); one
  // past it was written by something else, and counting on from it
  // wrapped to 0 at 2^64 (a black-box probe) or broke readers that parse
  // counts as signed 64-bit numbers.
  constexpr uint64_t kMaxCount = std::numeric_limits<int64_t>::max();
  if (delivered > kMaxCount || bounced > kMaxCount) {
    return Status::Corruption(
        fmt::format("status record's counts {} and {} are past {}", delivered, bounced, kMaxCount));
  }
  // A record written by something else under the wrong key would set
  // that key's counts for good: a restore takes it as the domain's state
  // and counts on from it (a black-box probe).
  std::string_view named;
  if (root["domain"].get_string().get(named)) {
    return Status::Corruption("status record lacks a string 'domain'");
  }
  if (named != domain) {
    return Status::Corruption(fmt::format("status record of domain '{}' is under the key '{}'",
                                          named.substr(0, 300), domain.substr(0, 300)));
  }
  c.delivered = delivered;
  c.bounced = bounced;
  return c;
}

}  // namespace catchall
