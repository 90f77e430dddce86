#include "log_batch.h"

#include "engine/kv_store.h"

namespace catchall {
namespace {

constexpr char kBatchMagic = 1;
constexpr size_t kCountOffset = 9;  // after magic(1) + timestamp(8)

void PutFixed32(std::string* dst, uint32_t v) {
  char buf[4];
  for (int i = 0; i < 4; ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  dst->append(buf, 4);
}

uint32_t DecodeFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

void StartLogBatch(int64_t timestamp_ms, std::string* batch) {
  batch->clear();
  batch->push_back(kBatchMagic);
  PutFixed64(batch, static_cast<uint64_t>(timestamp_ms));
  PutFixed32(batch, 0);
}

void AppendLogBatchRecord(std::string_view key, std::string_view value, std::string* batch) {
  PutFixed32(batch, static_cast<uint32_t>(key.size()));
  batch->append(key);
  PutFixed32(batch, static_cast<uint32_t>(value.size()));
  batch->append(value);
}

void SetLogBatchCount(uint32_t count, std::string* batch) {
  std::string encoded;
  PutFixed32(&encoded, count);
  batch->replace(kCountOffset, 4, encoded);
}

Status DecodeLogBatchHeader(std::string_view batch, LogBatchHeader* header) {
  if (batch.size() < kLogBatchHeaderSize || batch[0] != kBatchMagic) {
    return Status::Corruption("local log batch has a bad header");
  }
  header->timestamp_ms = static_cast<int64_t>(DecodeFixed64(batch.data() + 1));
  header->count = DecodeFixed32(batch.data() + kCountOffset);
  return Status::Ok();
}

LogBatchReader::LogBatchReader(std::string_view batch) : batch_(batch) {
  status_ = DecodeLogBatchHeader(batch, &header_);
  if (status_.ok()) pos_ = kLogBatchHeaderSize;
}

bool LogBatchReader::Next(std::string_view* key, std::string_view* value) {
  if (!status_.ok() || read_ == header_.count) return false;
  // Each length is checked against what is left, so no sum can overflow.
  size_t pos = pos_;
  auto take = [this, &pos](std::string_view* out) {
    if (batch_.size() - pos < 4) return false;
    uint32_t size = DecodeFixed32(batch_.data() + pos);
    pos += 4;
    if (batch_.size() - pos < size) return false;
    *out = batch_.substr(pos, size);
    pos += size;
    return true;
  };
  if (!take(key) || !take(value)) {
    status_ = Status::Corruption("local log batch is truncated");
    return false;
  }
  pos_ = pos;
  ++read_;
  return true;
}

}  // namespace catchall
