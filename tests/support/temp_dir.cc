#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

namespace catchall::testing {
namespace {
std::atomic<int> counter{0};
}  // namespace

TempDir::TempDir() {
  std::string base = ::testing::TempDir();
  path_ = base + "catchall-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace catchall::testing
