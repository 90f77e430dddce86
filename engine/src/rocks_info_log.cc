#include "rocks_info_log.h"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

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

RocksInfoLog::RocksInfoLog(std::string dir, size_t max_bytes, size_t keep_files,
                           rocksdb::InfoLogLevel level)
    : rocksdb::Logger(level),
      dir_(std::move(dir)),
      path_(dir_ + "/LOG"),
      max_bytes_(max_bytes),
      keep_files_(std::max<size_t>(keep_files, 1)) {
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
  CloseFile();
  closed_file_ = true;
  return rocksdb::Status::OK();
}

void RocksInfoLog::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

void RocksInfoLog::LogHeader(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::HEADER_LEVEL, format, ap);
}

void RocksInfoLog::Logv(rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  const bool header = level == rocksdb::InfoLogLevel::HEADER_LEVEL;
  if (level < GetInfoLogLevel() && !header) return;
  std::string message = Format(format, ap);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL && !header) {
    spdlog::error("rocksdb ({}): {}", dir_, message);
  }
  std::string line = LinePrefix();
  if (level != rocksdb::InfoLogLevel::INFO_LEVEL && !header) {
    line += '[';
    line += LevelName(level);
    line += "] ";
  }
  line += message;
  line += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  // RocksDB writes its header at open only; a rolled LOG gets it again.
  // Bounded: the options of a store with many columns run to ~1,300 lines.
  constexpr size_t kMaxHeaderLines = 8192;
  if (header && headers_.size() < kMaxHeaderLines) headers_.push_back(line);
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

void RocksInfoLog::RemoveOldFiles() {
  // RocksDB trims its own rolled logs as it rolls them; it purges files of
  // these names too, but only at open and every 6 hours.
  std::vector<std::pair<uint64_t, std::filesystem::path>> old;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    constexpr std::string_view kPrefix = "LOG.old.";
    if (name.rfind(kPrefix, 0) != 0) continue;
    uint64_t stamp = 0;
    const char* first = name.data() + kPrefix.size();
    const char* last = name.data() + name.size();
    if (std::from_chars(first, last, stamp).ptr != last) continue;
    old.emplace_back(stamp, entry.path());
  }
  if (old.size() < keep_files_) return;
  std::sort(old.begin(), old.end());
  for (size_t i = 0; i + (keep_files_ - 1) < old.size(); ++i) {
    std::filesystem::remove(old[i].second, ec);
  }
}

void RocksInfoLog::CloseFile() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void RocksInfoLog::Roll() {
  CloseFile();
  const std::string old = path_ + ".old." + std::to_string(MicrosSinceEpoch());
  // A failed rename leaves the file where it is; it is appended to again.
  if (::rename(path_.c_str(), old.c_str()) == 0) RemoveOldFiles();
  OpenFile();
  for (const std::string& header : headers_) {
    if (!Append(header)) break;
  }
}

bool RocksInfoLog::Append(const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      const int error = n < 0 ? errno : ENOSPC;
      // No half line for the next one to be glued to.
      if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) size_ += done;
      errno = error;
      return false;
    }
  }
  size_ += done;
  return true;
}

void RocksInfoLog::WriteLine(const std::string& line) {
  if (closed_file_) return;
  if (fd_ >= 0 && max_bytes_ > 0 && size_ > 0 && size_ + line.size() > max_bytes_) Roll();
  if (fd_ < 0) OpenFile();
  int error = 0;
  if (fd_ < 0 || !Append(line)) error = errno;
  if (error != 0) {
    // Opened again for the next line: what failed may be the file itself
    // (removed, or replaced by the operator), not only the space.
    CloseFile();
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
