#include "state/aggregator.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/byte_order_mark.h"
#include "engine/changelog.h"
#include "engine/json_writer.h"
#include "engine/key_sort.h"
#include "engine/partitioner.h"

namespace catchall {

Aggregator::Aggregator(AggregatorOptions options, const CounterStore* store)
    : options_(options), store_(store) {}

Result<ApplyOutcome> Aggregator::Apply(const ConsumedRecord& record, std::string* reason) {
  std::vector<Applied> outcomes;
  CATCHALL_RETURN_IF_ERROR(ApplyAll({&record}, &outcomes));
  *reason = std::move(outcomes[0].reason);
  return outcomes[0].outcome;
}

Status Aggregator::ApplyAll(const std::vector<const ConsumedRecord*>& records,
                            std::vector<Applied>* outcomes) {
  outcomes->resize(records.size());
  keyed_.clear();
  for (size_t i = 0; i < records.size(); ++i) {
    Applied& out = (*outcomes)[i];
    out.outcome = ApplyOutcome::kCounted;
    out.reason.clear();
    Keyed keyed;
    if (Classify(*records[i], &out, &keyed)) {
      keyed.index = i;
      keyed_.push_back(std::move(keyed));
    }
  }
  // The ids not in the delta, looked up together in key order: one Get per
  // event was ~7% of a cluster aggregator's CPU under uniform traffic with
  // ids (perf, drain benchmark). An id that comes twice in `records` is
  // looked up once; its second event finds the first in the delta.
  order_.clear();
  for (size_t k = 0; k < keyed_.size(); ++k) {
    if (!delta_.ids.contains(keyed_[k].id_key)) order_.emplace_back(keyed_[k].id_key, k);
  }
  SortByKey(&order_, [](const auto& entry) { return entry.first; });
  lookups_.clear();
  for (const auto& [key, k] : order_) {
    if (lookups_.empty() || lookups_.back() != key) lookups_.push_back(key);
    keyed_[k].lookup = lookups_.size() - 1;
  }
  stored_.clear();
  if (!lookups_.empty()) CATCHALL_RETURN_IF_ERROR(store_->IdTimestamps(lookups_, &stored_));
  // Each event's stored time, before ApplyKeyed moves keys (lookups_ views them).
  for (Keyed& k : keyed_) {
    if (k.lookup != kNoLookup) k.stored = stored_[k.lookup];
  }
  auto next = keyed_.begin();
  for (size_t i = 0; i < records.size(); ++i) {
    if (next != keyed_.end() && next->index == i) {
      (*outcomes)[i].outcome = ApplyKeyed(*records[i], &*next);
      ++next;
    }
    Advance(*records[i]);
  }
  return Status::Ok();
}

void Aggregator::Advance(const ConsumedRecord& record) {
  delta_.offsets[record.partition] = record.offset + 1;
  if (pending_records_ == 0 || record.timestamp_ms < oldest_ms_) oldest_ms_ = record.timestamp_ms;
  ++pending_records_;
}

bool Aggregator::Classify(const ConsumedRecord& record, Applied* out, Keyed* keyed) {
  auto malformed = [&](std::string reason) {
    out->outcome = ApplyOutcome::kMalformed;
    out->reason = std::move(reason);
    return false;
  };
  // A byte-order mark, as the HTTP bodies may start with (a replay from a
  // file that has one put it on the first record, which was dead-lettered:
  // a probe).
  Result<RawEvent> raw = parser_.ParseObject(WithoutByteOrderMark(record.value));
  if (!raw.ok()) {
    return malformed(fmt::format("value is not an event object: {}", raw.status().message()));
  }
  // Fast path for the common case, a domain that is already in this delta:
  // its name was fully validated (normalized, equal to its key) when it
  // entered, so a later event with the same key and domain only needs the
  // checks that can differ per record. Events with ids take the full path.
  if (raw->domain && raw->type && !raw->id && (!raw->ts || *raw->ts >= 0) && !raw->ts_too_large &&
      *raw->domain == record.key) {
    std::optional<EventType> type = ParseEventType(*raw->type);
    auto known = type ? delta_.counts.find(record.key) : delta_.counts.end();
    if (known != delta_.counts.end() &&
        PartitionForKey(record.key, options_.partitions) == record.partition) {
      ++(*type == EventType::kBounced ? known->second.bounced : known->second.delivered);
      return false;
    }
  }
  Result<Event> event = ValidateEvent(*raw);
  if (!event.ok()) return malformed(fmt::format("invalid event: {}", event.status().message()));
  if (*raw->domain != event->domain) {
    return malformed(fmt::format("domain '{}' is not normalized (it should be '{}')",
                                 raw->domain->substr(0, 300), event->domain));
  }
  if (record.key != event->domain) {
    return malformed(fmt::format("record key '{}' is not the event's domain '{}'",
                                 record.key.substr(0, 300), event->domain));
  }
  int32_t expected = PartitionForKey(record.key, options_.partitions);
  if (expected != record.partition) {
    return malformed(fmt::format(
        "record is in partition {} but its key belongs to partition {} of {}; produce with "
        "Kafka's default (murmur2) partitioner",
        record.partition, expected, options_.partitions));
  }
  // A window of 0 turns deduplication off (as documented): an id is then
  // neither looked up nor remembered. Taken through the id path, events
  // with the same id in one commit were still dropped as duplicates of
  // each other, acknowledged and never counted (a black-box probe).
  if (!event->id.empty() && options_.id_window.count() > 0) {
    keyed->id_key = IdKey(event->domain, event->id);
    keyed->domain = std::move(event->domain);
    keyed->type = event->type;
    return true;
  }
  DomainCounts& counts = delta_.counts[event->domain];
  ++(event->type == EventType::kBounced ? counts.bounced : counts.delivered);
  return false;
}

ApplyOutcome Aggregator::ApplyKeyed(const ConsumedRecord& record, Keyed* keyed) {
  int64_t window_start =
      record.timestamp_ms -
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.id_window).count();
  auto pending = delta_.ids.find(keyed->id_key);
  std::optional<int64_t> seen = pending != delta_.ids.end() ? pending->second : keyed->stored;
  if (seen && *seen >= window_start) return ApplyOutcome::kDuplicate;
  delta_.ids[std::move(keyed->id_key)] = record.timestamp_ms;
  DomainCounts& counts = delta_.counts[keyed->domain];
  ++(keyed->type == EventType::kBounced ? counts.bounced : counts.delivered);
  return ApplyOutcome::kCounted;
}

CounterDelta Aggregator::TakeDelta() {
  CounterDelta out = std::move(delta_);
  delta_ = CounterDelta();
  // The next interval will likely touch as many domains: growing the maps
  // from empty again cost ~18% of Apply (rehashing) in the profile.
  delta_.counts.reserve(out.counts.size());
  delta_.ids.reserve(out.ids.size());
  pending_records_ = 0;
  return out;
}

LogRecord Aggregator::DeadLetter(std::string_view topic, const ConsumedRecord& r,
                                 std::string_view reason) {
  auto cut = [](std::string_view bytes, size_t limit) { return bytes.substr(0, limit); };
  const bool truncated = r.key.size() > kDeadLetterCopyBytes ||
                         r.value.size() > kDeadLetterCopyBytes ||
                         reason.size() > kDeadLetterCopyBytes;
  LogRecord out;
  out.key = std::string(cut(r.key, kDeadLetterCopyBytes));
  out.value = R"({"topic":)";
  AppendJsonString(topic, &out.value);
  out.value += fmt::format(R"(,"partition":{},"offset":{},"reason":)", r.partition, r.offset);
  AppendJsonString(cut(reason, kDeadLetterCopyBytes), &out.value);
  out.value += R"(,"key":)";
  AppendJsonString(cut(r.key, kDeadLetterCopyBytes), &out.value);
  out.value += R"(,"value":)";
  AppendJsonString(cut(r.value, kDeadLetterCopyBytes), &out.value);
  // The strings above have U+FFFD for bytes that are not UTF-8 (JSON
  // cannot carry them); the exact bytes come too, so that a dead letter
  // can be read, fixed and replayed as it was (a black-box probe).
  // Whether the whole is UTF-8: a copy cut inside a character is not, yet
  // says nothing the string field does not (validating ~1 MB at most is
  // a fraction of a millisecond, once per dead letter).
  if (!IsValidUtf8(r.key)) {
    out.value += R"(,"key_base64":)";
    AppendJsonBase64(cut(r.key, kDeadLetterCopyBytes), &out.value);
  }
  if (!IsValidUtf8(r.value)) {
    out.value += R"(,"value_base64":)";
    AppendJsonBase64(cut(r.value, kDeadLetterCopyBytes), &out.value);
  }
  if (truncated) {
    out.value += fmt::format(R"(,"truncated":true,"key_bytes":{},"value_bytes":{})", r.key.size(),
                             r.value.size());
  }
  out.value += '}';
  return out;
}

void Aggregator::Reset() {
  delta_.Clear();
  pending_records_ = 0;
}

}  // namespace catchall
