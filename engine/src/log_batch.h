// The local log's batch format: the value stored under (partition, base
// offset) in a topic's column (see local_log.h).
//
//   magic 0x01 | timestamp_ms fixed64 | count fixed32
//   count x { key_size fixed32 | key | value_size fixed32 | value }
//
// Integers are little-endian. Encoding and decoding are pure functions of
// their arguments, so the decoder is unit-tested and fuzzed (fuzz/) without a
// store. Private to engine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace catchall {

inline constexpr size_t kLogBatchHeaderSize = 13;

struct LogBatchHeader {
  int64_t timestamp_ms = 0;  // when the log accepted the batch
  uint32_t count = 0;        // records in the batch
};

// Replaces *batch with the header of an empty batch stamped `timestamp_ms`.
void StartLogBatch(int64_t timestamp_ms, std::string* batch);
// Appends one record. Does not change the header's count (SetLogBatchCount).
void AppendLogBatchRecord(std::string_view key, std::string_view value, std::string* batch);
// REQUIRES: *batch starts with a header (StartLogBatch).
void SetLogBatchCount(uint32_t count, std::string* batch);

// Corruption when `batch` does not start with a valid header.
Status DecodeLogBatchHeader(std::string_view batch, LogBatchHeader* header);

// Walks the records of one encoded batch. Never reads outside `batch`:
// lengths that point past its end are Corruption. Bytes after the last
// record are not examined.
//
//   LogBatchReader reader(value);
//   std::string_view key, value;
//   while (reader.Next(&key, &value)) ...;
//   CATCHALL_RETURN_IF_ERROR(reader.status());
class LogBatchReader {
 public:
  // `batch` must outlive the reader and the views it returns.
  explicit LogBatchReader(std::string_view batch);

  // The next record, as views into the batch; false after the last one or
  // on corruption (then status() says what is wrong).
  bool Next(std::string_view* key, std::string_view* value);

  // Corruption if the header or a record did not decode, else OK.
  const Status& status() const { return status_; }
  const LogBatchHeader& header() const { return header_; }
  // Bytes of `batch` decoded so far (header and the records returned).
  size_t consumed() const { return pos_; }

 private:
  std::string_view batch_;
  LogBatchHeader header_;
  Status status_;
  size_t pos_ = 0;
  uint32_t read_ = 0;
};

}  // namespace catchall
