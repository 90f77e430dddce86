// Remembers a RocksDB background error that stops writes: a flush or a
// compaction that met a full disk or an I/O error. RocksDB then refuses
// every write, but nothing of catchall's own had failed yet, so /readyz
// said 200 on a quiet node until the next write failed (a review,
// thirteenth session). The store's WriteHealth() reports it.
#pragma once

#include <rocksdb/listener.h>

#include <mutex>

#include "engine/status.h"

namespace catchall {

class BackgroundErrorListener final : public rocksdb::EventListener {
 public:
  // On a RocksDB thread. Soft errors (RocksDB goes on writing) are logged
  // only; hard ones and worse are kept until a recovery ends them.
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override;
  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override;

  // The error that stops writes (OK: none): NoSpace for a full disk,
  // IoError otherwise, saying what failed and why.
  Status error() const;

 private:
  mutable std::mutex mu_;
  Status error_;  // GUARDED_BY(mu_)
};

}  // namespace catchall
