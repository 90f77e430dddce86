// Fuzzes the changelog record decoders (engine/domain_status.h,
// engine/changelog.h) that query nodes and restoring aggregators run on
// every record of the catchall.domain-status and catchall.ids topics, which
// any Kafka client can write to.
//
// Invariants: a record value decodes or is Corruption with a message; never
// anything else. And what the aggregator writes decodes back to the same
// numbers: AppendDomainStatusJson -> ParseDomainStatusJson gives the counts
// back, AppendChangelogCheckpointJson -> ParseChangelogCheckpointJson the
// offset, AppendIdRecordJson -> ParseIdRecordJson the id and its time, and
// an IdBatchJson -> ForEachIdInRecord every id's time in order (the numbers
// come from the input's first bytes). A batch record that does not decode
// hands out no id at all.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "engine/changelog.h"
#include "engine/domain_status.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace catchall;
  std::string_view value(reinterpret_cast<const char*>(data), size);

  Result<DomainCounts> counts = ParseDomainStatusJson(value, value.substr(0, value.size() / 4));
  if (!counts.ok()) {
    FUZZ_CHECK(counts.status().code() == Code::kCorruption, counts.status().ToString());
    FUZZ_CHECK(!counts.status().message().empty(), value);
  }
  Result<int64_t> offset = ParseChangelogCheckpointJson(value, 0);
  if (!offset.ok()) {
    FUZZ_CHECK(offset.status().code() == Code::kCorruption, offset.status().ToString());
    FUZZ_CHECK(!offset.status().message().empty(), value);
  }

  Result<IdRecord> id = ParseIdRecordJson(value);
  if (!id.ok()) {
    FUZZ_CHECK(id.status().code() == Code::kCorruption, id.status().ToString());
  }
  // An ids batch record (any value under the batch key) is read whole or
  // refused whole.
  size_t handed_out = 0;
  Status ids =
      ForEachIdInRecord(ConsumedRecord{0, 0, 0, kIdsBatchKey, value},
                        [&](std::string_view, std::string_view, int64_t) { ++handed_out; });
  FUZZ_CHECK(ids.ok() || (ids.code() == Code::kCorruption && handed_out == 0), ids.ToString());
  // The applier either applies a record or says why it skipped it.
  ChangelogApplier applier{Column()};
  KvWriteBatch batch;
  ConsumedRecord consumed{0, 0, 0, value.substr(0, value.size() / 4),
                          value.substr(value.size() / 4)};
  ChangelogEffect effect = applier.Apply(consumed, &batch);
  FUZZ_CHECK(effect.kind != ChangelogEffect::kSkipped || !effect.problem.empty(), value);
  FUZZ_CHECK(effect.kind == ChangelogEffect::kSkipped ||
                 effect.kind == ChangelogEffect::kCheckpoint || batch.Count() == 1,
             value);

  FuzzedDataProvider numbers(data, size);
  DomainCounts written;
  written.delivered = numbers.ConsumeIntegral<uint64_t>();
  written.bounced = numbers.ConsumeIntegral<uint64_t>();
  uint64_t threshold = numbers.ConsumeIntegral<uint64_t>();
  std::string record;
  AppendDomainStatusJson("example.com", written, threshold, &record);
  Result<DomainCounts> read = ParseDomainStatusJson(record, "example.com");
  constexpr uint64_t kMaxCount = std::numeric_limits<int64_t>::max();
  if (written.delivered > kMaxCount || written.bounced > kMaxCount) {
    FUZZ_CHECK(!read.ok(), record);  // past 2^63 - 1: not an aggregator's
  } else {
    FUZZ_CHECK(read.ok() && *read == written, record);
  }

  auto partition = numbers.ConsumeIntegral<int32_t>();
  auto events_offset = numbers.ConsumeIntegral<int64_t>();
  std::string checkpoint;
  AppendChangelogCheckpointJson(partition, events_offset, &checkpoint);
  Result<int64_t> through = ParseChangelogCheckpointJson(checkpoint, partition);
  FUZZ_CHECK(through.ok() && *through == events_offset, checkpoint);
  if (partition != 0) {
    FUZZ_CHECK(!ParseChangelogCheckpointJson(checkpoint, 0).ok(), checkpoint);
  }

  std::string id_text = numbers.ConsumeRandomLengthString(64);
  auto ts = numbers.ConsumeIntegral<int64_t>();
  std::string id_record;
  AppendIdRecordJson(id_text, ts, &id_record);
  Result<IdRecord> id_read = ParseIdRecordJson(id_record);
  // Ids that are not valid UTF-8 are written with U+FFFD (json_writer.h), so
  // only the time and a valid id must come back exactly.
  FUZZ_CHECK(id_read.ok() && id_read->timestamp_ms == ts, id_record);

  IdBatchJson ids_batch;
  std::vector<int64_t> times;
  while (numbers.remaining_bytes() > 0 && times.size() < 16) {
    times.push_back(numbers.ConsumeIntegral<int64_t>());
    ids_batch.Add("example.com", numbers.ConsumeRandomLengthString(32), times.back());
  }
  std::string batch_record = ids_batch.Take();
  std::vector<int64_t> times_read;
  Status batch_read = ForEachIdInRecord(ConsumedRecord{0, 0, 0, kIdsBatchKey, batch_record},
                                        [&](std::string_view domain, std::string_view, int64_t t) {
                                          FUZZ_CHECK(domain == "example.com", batch_record);
                                          times_read.push_back(t);
                                        });
  FUZZ_CHECK(batch_read.ok() && times_read == times, batch_record);
  return 0;
}
