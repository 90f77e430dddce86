#include "rocks_info_log.h"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <system_error>
#include <utility>

namespace catchall {
namespace {

const char* LevelName(rocksdb::InfoLogLevel level) {
  switch (level) {
    case rocksdb::InfoLogLevel::DEBUG_LEVEL: return "DEBUG";
    case rocksdb::InfoLogLevel::INFO_LEVEL: return "INFO";
    case rocksdb::InfoLogLevel::WARN_LEVEL: return "WARN";
    case rocksdb::InfoLogLevel::ERROR_LEVEL: return "ERROR";
    case rocksdb::InfoLogLevel::FATAL_LEVEL: return "FATAL";
    default: return "HEADER";
  }
}

int64_t MicrosSinceEpoch() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "2026/12/06-10:35:08.123456 7f3a2b1c0640 ", as RocksDB's own lines begin.
std::string LinePrefix() {
  const int64_t micros = MicrosSinceEpoch();
  const time_t seconds = static_cast<time_t>(micros / 1'000'000);
  struct tm t {};
  localtime_r(&seconds, &t);
  char buf[64];
  const int n = std::snprintf(buf, sizeof(buf), "%04d/%02d/%02d-%02d:%02d:%02d.%06lld %zx ",
                              t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
                              t.tm_sec, static_cast<long long>(micros % 1'000'000),
                              static_cast<size_t>(pthread_self()));
  return std::string(buf, static_cast<size_t>(std::max(n, 0)));
}

// The formatted message, whatever its length.
std::string Format(const char* format, va_list ap) {
  char small[512];
  va_list copy;
  va_copy(copy, ap);
  const int n = std::vsnprintf(small, sizeof(small), format, copy);
  va_end(copy);
  if (n < 0) return "(unformattable RocksDB log line)";
  if (static_cast<size_t>(n) < sizeof(small)) return std::string(small, static_cast<size_t>(n));
  std::string big(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(big.data(), big.size(), format, ap);
  big.resize(static_cast<size_t>(n));
  return big;
}

}  // namespace

RocksInfoLog::RocksInfoLog(std::string dir, size_t max_bytes, rocksdb::InfoLogLevel level)
    : rocksdb::Logger(level), dir_(std::move(dir)), path_(dir_ + "/LOG"), max_bytes_(max_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  OpenFile();
}

RocksInfoLog::~RocksInfoLog() {
  if (!closed_) {
    closed_ = true;
    CloseImpl().PermitUncheckedError();
  }
}

rocksdb::Status RocksInfoLog::CloseImpl() {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return rocksdb::Status::OK();
}

void RocksInfoLog::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

void RocksInfoLog::Logv(rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  if (level < GetInfoLogLevel()) return;
  std::string message = Format(format, ap);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL && level != rocksdb::InfoLogLevel::HEADER_LEVEL) {
    spdlog::error("rocksdb ({}): {}", dir_, message);
  }
  std::string line = LinePrefix();
  if (level != rocksdb::InfoLogLevel::INFO_LEVEL && level != rocksdb::InfoLogLevel::HEADER_LEVEL) {
    line += '[';
    line += LevelName(level);
    line += "] ";
  }
  line += message;
  line += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  WriteLine(line);
}

size_t RocksInfoLog::GetLogFileSize() const {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

uint64_t RocksInfoLog::dropped_lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

void RocksInfoLog::OpenFile() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  size_ = 0;
  struct stat st {};
  if (fd_ >= 0 && ::fstat(fd_, &st) == 0) size_ = static_cast<size_t>(st.st_size);
}

void RocksInfoLog::Roll() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  const std::string old = path_ + ".old." + std::to_string(MicrosSinceEpoch());
  // A failed rename leaves the file where it is; it is appended to again.
  ::rename(path_.c_str(), old.c_str());
  OpenFile();
}

void RocksInfoLog::WriteLine(const std::string& line) {
  if (fd_ >= 0 && max_bytes_ > 0 && size_ + line.size() > max_bytes_) Roll();
  if (fd_ < 0) OpenFile();
  int error = fd_ < 0 ? errno : 0;
  size_t done = 0;
  while (error == 0 && done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      error = n < 0 ? errno : ENOSPC;
    }
  }
  size_ += done;
  if (error != 0) {
    // Opened again for the next line: what failed may be the file itself
    // (removed, or replaced by the operator), not only the space.
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (dropped_since_ == 0) {
      spdlog::warn("RocksDB's info log {}: cannot write ({}); its lines are dropped until it can",
                   path_, std::error_code(error, std::generic_category()).message());
    }
    ++dropped_;
    ++dropped_since_;
    return;
  }
  if (dropped_since_ > 0) {
    spdlog::info("RocksDB's info log {}: writing again; {} lines were dropped", path_,
                 dropped_since_);
    dropped_since_ = 0;
  }
}

}  // namespace catchall
