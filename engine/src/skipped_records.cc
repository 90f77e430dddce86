#include "engine/skipped_records.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "engine/json_writer.h"
#include "engine/metrics.h"

namespace catchall {
namespace {

std::string_view ReaderName(SkippedRecords::Reader reader) {
  switch (reader) {
    case SkippedRecords::Reader::kRestore: return "restore";
    case SkippedRecords::Reader::kStandby: return "standby";
    case SkippedRecords::Reader::kQuery: return "query";
  }
  return "unknown";
}

}  // namespace

bool LogsNthWarning(uint64_t nth) {
  constexpr uint64_t kLoggedInFull = 10;
  return nth <= kLoggedInFull || nth % 1000 == 0;
}

SkippedRecords::SkippedRecords(Metrics* metrics, Reader reader) : reader_(reader) {
  if (metrics == nullptr) return;
  // One family for every reader: prometheus-cpp hands the same family back
  // to each registration with the same name, help and labels.
  counter_ = &prometheus::BuildCounter()
                  .Name("catchall_log_records_skipped_total")
                  .Help(
                      "Changelog and ids log records that did not decode and were skipped, by "
                      "reader (restore, standby, query)")
                  .Register(metrics->registry())
                  .Add({{"reader", std::string(ReaderName(reader))}});
}

void SkippedRecords::Skip(std::string_view topic, const ConsumedRecord& record,
                          std::string_view why) {
  uint64_t n = count_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (counter_) counter_->Increment();
  if (LogsNthWarning(n)) {
    spdlog::warn("{}: skipping {}/{} offset {} (skipped so far: {}): {}", ReaderName(reader_),
                 topic, record.partition, record.offset, n, QuotedForLog(why));
  }
}

}  // namespace catchall
