#include "engine/env.h"

#include <fmt/format.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <system_error>

namespace catchall {

Env* Env::Default() {
  static Env* env = new Env();  // NOLINT: intentionally never destroyed
  return env;
}

Status Env::OpenStore(const KvStoreOptions& options, std::unique_ptr<KvStore>* store) {
  return KvStore::Open(options, store);
}

Result<uint64_t> Env::FreeBytes(const std::string& path) {
  struct statvfs fs {};
  if (statvfs(path.c_str(), &fs) != 0) {
    return Status::IoError(
        fmt::format("statvfs({}): {}", path, std::system_category().message(errno)));
  }
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

}  // namespace catchall
