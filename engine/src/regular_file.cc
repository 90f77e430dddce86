#include "regular_file.h"

#include <fmt/format.h>

#include <filesystem>
#include <system_error>

namespace catchall {

Status RequireRegularFile(std::string_view setting, const std::string& file) {
  std::error_code ec;
  // status() is stat(2): it does not open the file, so a FIFO cannot block it.
  std::filesystem::file_status st = std::filesystem::status(file, ec);
  if (ec || st.type() == std::filesystem::file_type::regular ||
      st.type() == std::filesystem::file_type::not_found) {
    return Status::Ok();
  }
  const char* kind = "not a regular file";
  switch (st.type()) {
    case std::filesystem::file_type::directory: kind = "a directory"; break;
    case std::filesystem::file_type::fifo: kind = "a FIFO"; break;
    case std::filesystem::file_type::socket: kind = "a socket"; break;
    case std::filesystem::file_type::block:
    case std::filesystem::file_type::character: kind = "a device"; break;
    default: break;
  }
  return Status::InvalidArgument(
      fmt::format("{}: '{}' is {}, not a regular file", setting, file, kind));
}

}  // namespace catchall
