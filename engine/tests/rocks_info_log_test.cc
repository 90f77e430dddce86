#include "rocks_info_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdarg>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/temp_dir.h"

namespace catchall {
namespace {

using Level = rocksdb::InfoLogLevel;

void Log(RocksInfoLog& log, Level level, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  log.Logv(level, format, ap);
  va_end(ap);
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int OldFiles(const std::string& dir) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("LOG.old.", 0) == 0) ++n;
  }
  return n;
}

TEST(RocksInfoLogTest, LinesLandInTheLogWithTheirLevelAndNothingBelowIt) {
  testing::TempDir dir;
  RocksInfoLog log(dir.path(), 0, 3, Level::INFO_LEVEL);
  Log(log, Level::INFO_LEVEL, "flushed %d bytes", 42);
  Log(log, Level::WARN_LEVEL, "stalling writes: %s", "L0 files");
  Log(log, Level::DEBUG_LEVEL, "not shown");
  Log(log, Level::ERROR_LEVEL, "ends with its own newline\n");
  const std::string text = Read(dir.path() + "/LOG");
  EXPECT_NE(text.find(" flushed 42 bytes\n"), std::string::npos) << text;
  EXPECT_NE(text.find(" [WARN] stalling writes: L0 files\n"), std::string::npos) << text;
  EXPECT_NE(text.find(" [ERROR] ends with its own newline\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("not shown"), std::string::npos) << text;
  EXPECT_EQ(log.GetLogFileSize(), text.size());
  EXPECT_EQ(log.dropped_lines(), 0u);
}

TEST(RocksInfoLogTest, ALongLineIsWrittenWhole) {
  testing::TempDir dir;
  RocksInfoLog log(dir.path(), 0, 3, Level::INFO_LEVEL);
  const std::string long_text(5000, 'x');
  Log(log, Level::INFO_LEVEL, "%s|end", long_text.c_str());
  EXPECT_NE(Read(dir.path() + "/LOG").find(long_text + "|end\n"), std::string::npos);
}

void Header(RocksInfoLog& log, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  log.LogHeader(format, ap);
  va_end(ap);
}

TEST(RocksInfoLogTest, PastItsLimitTheLogRollsKeepsTheNewestOldFilesAndRepeatsItsHeader) {
  testing::TempDir dir;
  // Another log's old files, older than any this one rolls.
  std::ofstream(dir.path() + "/LOG.old.1000") << "old\n";
  std::ofstream(dir.path() + "/LOG.old.1001") << "old\n";
  RocksInfoLog log(dir.path(), 1000, 3, Level::WARN_LEVEL);
  Header(log, "RocksDB version: %s", "7.8.3");
  for (int i = 0; i < 60; ++i) {
    Log(log, Level::WARN_LEVEL, "line %d of the log", i);
    // Never more than LOG and the two newest old files.
    ASSERT_LE(OldFiles(dir.path()), 2) << "after line " << i;
  }
  EXPECT_EQ(OldFiles(dir.path()), 2);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/LOG.old.1000"));
  const std::string text = Read(dir.path() + "/LOG");
  EXPECT_LE(text.size(), 1000u);
  // The rolled LOG begins with RocksDB's header again.
  EXPECT_NE(text.substr(0, text.find('\n')).find("RocksDB version: 7.8.3"), std::string::npos)
      << text;
  EXPECT_NE(text.find("line 59 of the log\n"), std::string::npos) << text;
  EXPECT_EQ(log.dropped_lines(), 0u);
}

TEST(RocksInfoLogTest, AfterCloseNothingIsWrittenOrOpened) {
  testing::TempDir dir;
  RocksInfoLog log(dir.path(), 0, 3, Level::INFO_LEVEL);
  Log(log, Level::INFO_LEVEL, "before");
  ASSERT_TRUE(log.Close().ok());
  Log(log, Level::INFO_LEVEL, "after");
  EXPECT_EQ(Read(dir.path() + "/LOG").find("after"), std::string::npos);
}

TEST(RocksInfoLogTest, ALineThatCannotBeWrittenIsDroppedAndTheLogResumesWhenItCan) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/LOG";
  // /dev/full fails every write with ENOSPC, as a full disk does.
  std::filesystem::create_symlink("/dev/full", path);
  RocksInfoLog log(dir.path(), 0, 3, Level::INFO_LEVEL);
  Log(log, Level::INFO_LEVEL, "lost %d", 1);
  Log(log, Level::ERROR_LEVEL, "lost %d", 2);
  EXPECT_EQ(log.dropped_lines(), 2u);
  // Space returns (here: a file that takes writes).
  std::filesystem::remove(path);
  Log(log, Level::INFO_LEVEL, "kept %d", 3);
  EXPECT_EQ(log.dropped_lines(), 2u);
  const std::string text = Read(path);
  EXPECT_NE(text.find("kept 3\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("lost"), std::string::npos) << text;
}

}  // namespace
}  // namespace catchall
