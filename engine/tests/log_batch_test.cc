#include "log_batch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace catchall {
namespace {

using Records = std::vector<std::pair<std::string, std::string>>;

std::string Encode(int64_t timestamp_ms, const Records& records) {
  std::string batch;
  StartLogBatch(timestamp_ms, &batch);
  for (const auto& [k, v] : records) AppendLogBatchRecord(k, v, &batch);
  SetLogBatchCount(static_cast<uint32_t>(records.size()), &batch);
  return batch;
}

// Every record of `batch`; *status gets the reader's final status.
Records Decode(std::string_view batch, Status* status) {
  Records out;
  LogBatchReader reader(batch);
  std::string_view key;
  std::string_view value;
  while (reader.Next(&key, &value)) out.emplace_back(key, value);
  *status = reader.status();
  return out;
}

TEST(LogBatchTest, RoundTripsRecordsAndHeader) {
  Records records = {
      {"a.com", R"({"domain":"a.com"})"}, {"", ""}, {"b.org", std::string(300, 'x')}};
  std::string batch = Encode(1234567890123, records);
  LogBatchHeader header;
  ASSERT_TRUE(DecodeLogBatchHeader(batch, &header).ok());
  EXPECT_EQ(header.timestamp_ms, 1234567890123);
  EXPECT_EQ(header.count, 3u);
  Status s;
  EXPECT_EQ(Decode(batch, &s), records);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(LogBatchTest, EmptyBatchHasNoRecords) {
  std::string batch = Encode(7, {});
  EXPECT_EQ(batch.size(), kLogBatchHeaderSize);
  Status s;
  EXPECT_TRUE(Decode(batch, &s).empty());
  EXPECT_TRUE(s.ok());
}

TEST(LogBatchTest, BadHeaderIsCorruption) {
  for (const std::string& bad :
       {std::string(), std::string("\x01", 1), std::string(12, '\x01'), std::string(13, '\x02')}) {
    LogBatchHeader header;
    EXPECT_EQ(DecodeLogBatchHeader(bad, &header).code(), Code::kCorruption);
    Status s;
    EXPECT_TRUE(Decode(bad, &s).empty());
    EXPECT_EQ(s.code(), Code::kCorruption);
  }
}

TEST(LogBatchTest, TruncationAnywhereIsCorruptionAfterTheWholeRecords) {
  std::string batch = Encode(1, {{"k1", "v1"}, {"k2", "v2"}});
  // Header 13, then each record is 4 + 2 + 4 + 2 = 12 bytes.
  for (size_t size = kLogBatchHeaderSize; size < batch.size(); ++size) {
    Status s;
    Records got = Decode(std::string_view(batch).substr(0, size), &s);
    EXPECT_EQ(s.code(), Code::kCorruption) << "size " << size;
    EXPECT_EQ(got.size(), (size - kLogBatchHeaderSize) / 12) << "size " << size;
  }
}

TEST(LogBatchTest, LengthsPastTheEndAreCorruptionNotOverreads) {
  // A key length of 0xFFFFFFFF, and a value length that overshoots by one.
  std::string huge_key = Encode(1, {});
  SetLogBatchCount(1, &huge_key);
  huge_key += std::string("\xff\xff\xff\xff", 4) + "abc";
  std::string long_value = Encode(1, {{"k", "vv"}});
  long_value[long_value.size() - 6] = 3;  // value_size 2 -> 3
  for (const std::string& batch : {huge_key, long_value}) {
    Status s;
    EXPECT_TRUE(Decode(batch, &s).empty());
    EXPECT_EQ(s.code(), Code::kCorruption);
  }
}

TEST(LogBatchTest, CountBeyondTheRecordsIsCorruption) {
  std::string batch = Encode(1, {{"k", "v"}});
  SetLogBatchCount(1000000, &batch);
  Status s;
  EXPECT_EQ(Decode(batch, &s).size(), 1u);
  EXPECT_EQ(s.code(), Code::kCorruption);
}

TEST(LogBatchTest, ReaderReportsTheBytesOfTheRecordsItReturned) {
  std::string batch = Encode(1, {{"k", "v"}}) + "trailing";
  LogBatchReader reader(batch);
  std::string_view key;
  std::string_view value;
  ASSERT_TRUE(reader.Next(&key, &value));
  EXPECT_FALSE(reader.Next(&key, &value));
  EXPECT_TRUE(reader.status().ok());
  EXPECT_EQ(reader.consumed(), batch.size() - 8);
}

}  // namespace
}  // namespace catchall
