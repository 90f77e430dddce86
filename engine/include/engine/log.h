// The log: catchall's durable, partitioned, offset-addressed record stream.
//
// Two backends implement it: Apache Kafka (cluster mode) and LocalLog
// (embedded mode, on a KvStore). Both route a record to partition
// murmur2(key) % partitions (partitioner.h) and give each record of a
// partition a dense, increasing offset, so the components above the log and
// their exactly-once reasoning (state + consumed offsets committed
// atomically) are the same in both modes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace catchall {

// Topic names of the product (see docs/architecture.md).
inline constexpr std::string_view kEventsTopic = "catchall.events";
inline constexpr std::string_view kStatusTopic = "catchall.domain-status";
inline constexpr std::string_view kDeadLetterTopic = "catchall.events.dlq";

// A record to append.
struct LogRecord {
  std::string key;
  std::string value;
};

// A record read back. The views are owned by whatever returned it.
struct ConsumedRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;  // when the log accepted it
  std::string_view key;
  std::string_view value;
};

// Appends records to one topic. Thread-safe.
class LogAppender {
 public:
  // Runs exactly once per accepted Append, on a thread of the log, when every
  // record of the call is durable (OK) or when any of them failed. It must
  // not block.
  using Callback = std::function<void(const Status&)>;

  virtual ~LogAppender() = default;

  // Enqueues `records`. Never blocks. Returns OK when accepted (then `done`
  // will run); returns Unavailable, without running `done`, when the log is
  // unreachable or its queue is full, so the caller can shed load at once.
  virtual Status Append(std::vector<LogRecord> records, Callback done) = 0;

  virtual int32_t partition_count() const = 0;

  // Ready to accept appends (broker reachable / store open), for /readyz.
  virtual Status Health() const = 0;

  // Waits until everything appended so far is durable or failed.
  virtual Status Flush(std::chrono::milliseconds timeout) = 0;
};

}  // namespace catchall
