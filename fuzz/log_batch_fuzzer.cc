// Fuzzes the local log's batch decoder (engine/src/log_batch.h) with
// arbitrary stored values, as LocalLog::Read, Open and retention decode them.
//
// Invariants: the decoder never reads outside the value (ASan), stops with
// Corruption or after exactly the header's count of records, and the records
// it returns encode back to the bytes they were decoded from.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "log_batch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace catchall;
  std::string_view value(reinterpret_cast<const char*>(data), size);

  LogBatchHeader header;
  Status header_status = DecodeLogBatchHeader(value, &header);

  LogBatchReader reader(value);
  FUZZ_CHECK(reader.status().ok() == header_status.ok(), header_status.ToString());
  std::string reencoded;
  StartLogBatch(reader.header().timestamp_ms, &reencoded);
  uint32_t records = 0;
  std::string_view key;
  std::string_view record_value;
  while (reader.Next(&key, &record_value)) {
    FUZZ_CHECK(key.data() >= value.data() && key.data() + key.size() <= value.data() + size,
               "key outside the batch");
    FUZZ_CHECK(record_value.data() >= value.data() &&
                   record_value.data() + record_value.size() <= value.data() + size,
               "value outside the batch");
    AppendLogBatchRecord(key, record_value, &reencoded);
    ++records;
  }
  if (!reader.status().ok()) {
    FUZZ_CHECK(reader.status().code() == Code::kCorruption, reader.status().ToString());
    FUZZ_CHECK(!reader.status().message().empty(), "corruption without a message");
    return 0;
  }
  FUZZ_CHECK(records == header.count, "fewer records than the header's count, and no error");
  SetLogBatchCount(records, &reencoded);
  FUZZ_CHECK(reader.consumed() <= size, "consumed past the end");
  FUZZ_CHECK(reencoded == value.substr(0, reader.consumed()),
             "the records do not encode back to their bytes");
  return 0;
}
