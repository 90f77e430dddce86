// Env: what a catchall process reaches the machine through, in one seam:
// opening stores and reading the free space of a file system. Production
// uses Env::Default(); tests substitute a twin that injects faults, the way
// LevelDB's and RocksDB's tests swap their Env (engine/testing/).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/kv_store.h"
#include "engine/status.h"

namespace catchall {

class Env {
 public:
  virtual ~Env() = default;
  // The real machine: RocksDB stores on the local file system. Never deleted.
  static Env* Default();

  // Opens (creating if missing) a store; see KvStore::Open.
  virtual Status OpenStore(const KvStoreOptions& options, std::unique_ptr<KvStore>* store);
  // Bytes available to this process on the file system holding `path`.
  virtual Result<uint64_t> FreeBytes(const std::string& path);
};

}  // namespace catchall
