// Event JSON: parsing topic record values and request bodies, validating
// events, and writing topic record values.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "engine/event.h"
#include "engine/event_parser.h"
#include "micro_util.h"

namespace catchall::micro {
namespace {

constexpr size_t kBatchItems = 1000;
constexpr size_t kMaxBatchItems = 100000;  // the server's default limit

// A topic record value, as ingest writes it.
std::string RecordValue() {
  Event event;
  event.domain = DomainName(1);
  event.type = EventType::kDelivered;
  std::string out;
  AppendEventJson(event, &out);
  return out;
}

// A request body of `items` events as clients send them (mixed case, 1% with
// an id and a timestamp), as NDJSON or as a JSON array.
std::string BatchBody(size_t items, BatchFormat format) {
  std::string body = format == BatchFormat::kJsonArray ? "[" : "";
  Rng rng(7);
  for (size_t i = 0; i < items; ++i) {
    std::string domain = DomainName(rng.Below(1'000'000));
    domain[0] = static_cast<char>(domain[0] - 'a' + 'A');
    if (format == BatchFormat::kJsonArray && i > 0) body += ",";
    body += R"({"domain":")" + domain + R"(","type":")";
    body += rng.Below(100) == 0 ? "bounced" : "delivered";
    body += '"';
    if (i % 100 == 0) body += R"(,"id":"msg-)" + std::to_string(i) + R"(","ts":1700000000000)";
    body += '}';
    if (format == BatchFormat::kNdjson) body += '\n';
  }
  if (format == BatchFormat::kJsonArray) body += "]";
  return body;
}

void BM_ParseObject(benchmark::State& state) {
  const std::string value = RecordValue();
  EventParser parser;
  for (auto _ : state) {
    Result<RawEvent> raw = parser.ParseObject(value);
    benchmark::DoNotOptimize(raw);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(value.size()));
  state.SetLabel(value);
}
BENCHMARK(BM_ParseObject);

void BM_ParseBatch(benchmark::State& state, BatchFormat format) {
  const std::string body = BatchBody(kBatchItems, format);
  EventParser parser;
  size_t items = 0;
  size_t bad = 0;
  EventParser::ItemCallback on_item = [&](size_t, const Result<RawEvent>& item) {
    ++items;
    if (!item.ok()) ++bad;
    benchmark::DoNotOptimize(item);
  };
  for (auto _ : state) {
    Status s = parser.ParseBatch(body, format, kMaxBatchItems, on_item);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  if (bad != 0 || items != static_cast<size_t>(state.iterations()) * kBatchItems) {
    state.SkipWithError("the parser refused items of a valid batch");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kBatchItems));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK_CAPTURE(BM_ParseBatch, ndjson_1000, BatchFormat::kNdjson);
BENCHMARK_CAPTURE(BM_ParseBatch, array_1000, BatchFormat::kJsonArray);

// Parse + ValidateEvent + AppendEventJson per item: the CPU work of one ingest
// request before its records go to the log.
void BM_IngestBatchCpu(benchmark::State& state) {
  const std::string body = BatchBody(kBatchItems, BatchFormat::kNdjson);
  EventParser parser;
  std::vector<std::string> values(kBatchItems);
  size_t bad = 0;
  EventParser::ItemCallback on_item = [&](size_t index, const Result<RawEvent>& item) {
    Result<Event> event = item.ok() ? ValidateEvent(*item) : Result<Event>(item.status());
    if (!event.ok()) {
      ++bad;
      return;
    }
    values[index].clear();
    AppendEventJson(*event, &values[index]);
  };
  for (auto _ : state) {
    Status s = parser.ParseBatch(body, BatchFormat::kNdjson, kMaxBatchItems, on_item);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(values.data());
  }
  if (bad != 0) state.SkipWithError("valid events were refused");
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kBatchItems));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_IngestBatchCpu);

void BM_ValidateEvent(benchmark::State& state, const std::string& domain, const std::string& id) {
  const std::string type = "delivered";
  RawEvent raw;
  raw.domain = domain;
  raw.type = type;
  if (!id.empty()) raw.id = id;
  if (!ValidateEvent(raw).ok()) {
    state.SkipWithError("event unexpectedly refused");
    return;
  }
  for (auto _ : state) {
    Result<Event> event = ValidateEvent(raw);
    benchmark::DoNotOptimize(event);
  }
}
BENCHMARK_CAPTURE(BM_ValidateEvent, lower, DomainName(1), std::string());
BENCHMARK_CAPTURE(BM_ValidateEvent, mixed_case, std::string("ExAmPlE.CoM"), std::string());
BENCHMARK_CAPTURE(BM_ValidateEvent, lower_with_id, DomainName(1),
                  std::string("3f2b8c1e-7d4a-4e9b-a1c2-5d6e7f8a9b0c"));

void BM_AppendEventJson(benchmark::State& state, bool with_id) {
  Event event;
  event.domain = DomainName(1);
  event.type = EventType::kDelivered;
  if (with_id) {
    event.id = "3f2b8c1e-7d4a-4e9b-a1c2-5d6e7f8a9b0c";
    event.ts = 1700000000000;
  }
  std::string out;
  for (auto _ : state) {
    out.clear();
    AppendEventJson(event, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetLabel(out);
}
BENCHMARK_CAPTURE(BM_AppendEventJson, plain, false);
BENCHMARK_CAPTURE(BM_AppendEventJson, id_and_ts, true);

}  // namespace
}  // namespace catchall::micro
