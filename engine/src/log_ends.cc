#include "log_ends.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace catchall {
namespace {

constexpr std::string_view kHeader = "catchall local log ends v1";

std::string Errno(int err) { return std::generic_category().message(err); }

Status SyncPath(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Status::IoError(fmt::format("cannot open '{}': {}", path, Errno(errno)));
  const int synced = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (synced != 0) return Status::IoError(fmt::format("cannot sync '{}': {}", path, Errno(err)));
  return Status::Ok();
}

}  // namespace

Status WriteLogEnds(const std::string& file, const LogEnds& ends) {
  std::string text(kHeader);
  text += '\n';
  for (const auto& [where, end] : ends) {
    text += fmt::format("{} {} {}\n", where.first, where.second, end);
  }
  const std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      return Status::IoError(fmt::format("cannot write '{}': {}", tmp, Errno(errno)));
    }
  }
  CATCHALL_RETURN_IF_ERROR(SyncPath(tmp, O_RDONLY));
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec) return Status::IoError(fmt::format("cannot rename '{}': {}", tmp, ec.message()));
  return SyncPath(std::filesystem::path(file).parent_path().string(), O_RDONLY | O_DIRECTORY);
}

Result<std::optional<LogEnds>> ReadLogEnds(const std::string& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec) && !ec) return std::optional<LogEnds>();
  errno = 0;
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::IoError(fmt::format("cannot read '{}': {}", file, Errno(errno)));
  auto bad = [&](std::string_view why) {
    return Status::Corruption(fmt::format("'{}' does not read as the log's ends: {}", file, why));
  };
  std::string line;
  if (!std::getline(in, line) || line != kHeader) return bad("its first line is not the header");
  LogEnds ends;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string topic;
    int32_t partition = -1;
    int64_t end = -1;
    if (!(fields >> topic >> partition >> end) || partition < 0 || end < 0) {
      return bad(fmt::format("line '{}'", line.substr(0, 100)));
    }
    ends[{topic, partition}] = end;
  }
  return std::optional<LogEnds>(std::move(ends));
}

}  // namespace catchall
