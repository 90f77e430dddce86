#include "background_error_listener.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace catchall {

namespace {

const char* Doing(rocksdb::BackgroundErrorReason reason) {
  switch (reason) {
    case rocksdb::BackgroundErrorReason::kFlush:
    case rocksdb::BackgroundErrorReason::kFlushNoWAL:
    case rocksdb::BackgroundErrorReason::kManifestWriteNoWAL: return "flushing memtables to disk";
    case rocksdb::BackgroundErrorReason::kCompaction: return "compacting";
    case rocksdb::BackgroundErrorReason::kWriteCallback:
    case rocksdb::BackgroundErrorReason::kMemTable: return "writing";
    case rocksdb::BackgroundErrorReason::kManifestWrite: return "writing the manifest";
  }
  return "in the background";
}

}  // namespace

void BackgroundErrorListener::OnBackgroundError(rocksdb::BackgroundErrorReason reason,
                                                rocksdb::Status* error) {
  if (error == nullptr || error->ok()) return;
  std::string what = fmt::format("RocksDB failed {}: {}", Doing(reason), error->ToString());
  if (error->severity() < rocksdb::Status::Severity::kHardError) {
    spdlog::warn("store: {} (RocksDB goes on writing)", what);
    return;
  }
  spdlog::error("store: {}; it takes no more writes", what);
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok()) {
    error_ = Status(error->IsNoSpace()      ? Code::kNoSpace
                    : error->IsCorruption() ? Code::kCorruption
                                            : Code::kIoError,
                    what);
  }
}

void BackgroundErrorListener::OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) {
  if (!info.new_bg_error.ok()) return;
  spdlog::info("store: RocksDB recovered from its background error");
  std::lock_guard<std::mutex> lock(mu_);
  error_ = Status::Ok();
}

Status BackgroundErrorListener::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

}  // namespace catchall
