// RocksInfoLog: RocksDB's info log (the LOG file in a store's directory),
// written so that a full disk cannot end the process.
//
// RocksDB's own info log writes through a WritableFileWriter, which
// remembers a failed write; in Debian's build (assertions on) the next line
// after one failure aborts in AssertFalseAndGetStatusForPrevError. On a
// full disk the next line comes at once: RocksDB logs the very ENOSPC that
// a write-ahead-log write met (ErrorHandler::SetBGError). Found by filling
// a tmpfs under single PUTs with storage.min_free_mb=0: exit 134 in every
// run. Here a line that cannot be written is dropped and counted, and the
// next one tries again, so the log resumes when space does.
//
// Lines at ERROR and above also go to catchall's own log (stderr), where an
// operator looks first.
#pragma once

#include <rocksdb/env.h>

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace catchall {

class RocksInfoLog final : public rocksdb::Logger {
 public:
  // Appends to `dir`/LOG (creating it). Once the file passes `max_bytes`
  // (0: never) it is renamed LOG.old.<microseconds since the epoch>, as
  // RocksDB names its own, a new LOG begins with RocksDB's header lines
  // (version, options) again, and only the newest `keep_files` - 1 old
  // files stay (RocksDB's keep_log_file_num: LOG and its old files).
  RocksInfoLog(std::string dir, size_t max_bytes, size_t keep_files, rocksdb::InfoLogLevel level);
  ~RocksInfoLog() override;

  void Logv(rocksdb::InfoLogLevel level, const char* format, va_list ap) override;
  // RocksDB's INFO lines without a level.
  void Logv(const char* format, va_list ap) override;
  // RocksDB's version and options, written at the top of every LOG.
  void LogHeader(const char* format, va_list ap) override;
  size_t GetLogFileSize() const override;

  // Lines that could not be written so far.
  uint64_t dropped_lines() const;

 private:
  rocksdb::Status CloseImpl() override;
  // Writes one formatted line, rolling first if due. Holds mu_.
  void WriteLine(const std::string& line);
  // Appends `line` whole or not at all; false (errno set) if it failed.
  bool Append(const std::string& line);  // Holds mu_.
  void Roll();                           // Holds mu_.
  void RemoveOldFiles();                 // Holds mu_.
  void OpenFile();                       // Holds mu_.
  void CloseFile();                      // Holds mu_.

  const std::string dir_;
  const std::string path_;
  const size_t max_bytes_;
  const size_t keep_files_;
  mutable std::mutex mu_;
  int fd_ = -1;                       // GUARDED_BY(mu_); -1 while it cannot be opened
  bool closed_file_ = false;          // GUARDED_BY(mu_): Close() was called
  size_t size_ = 0;                   // GUARDED_BY(mu_)
  std::vector<std::string> headers_;  // GUARDED_BY(mu_)
  uint64_t dropped_ = 0;              // GUARDED_BY(mu_)
  uint64_t dropped_since_ = 0;        // GUARDED_BY(mu_): of the failure going on
};

}  // namespace catchall
