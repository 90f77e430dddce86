#include "engine/disk_monitor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "engine/local_log.h"
#include "engine/metrics.h"
#include "fault_injection.h"
#include "test_util.h"

namespace catchall {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr uint64_t kMb = 1 << 20;

class DiskMonitorTest : public ::testing::Test {
 protected:
  testing::FaultInjector injector_;
  testing::FaultInjectionEnv env_{&injector_};
  test::ScopedTempDir dir_;
};

TEST_F(DiskMonitorTest, LowBelowTheThresholdAndBackAboveIt) {
  env_.SetFreeBytes(100 * kMb);
  Metrics metrics;
  DiskMonitor monitor(&env_, dir_.path(), 50 * kMb, &metrics);
  EXPECT_TRUE(monitor.Check().ok());
  EXPECT_THAT(metrics.Serialize(), HasSubstr("catchall_storage_low_space 0\n"));
  env_.SetFreeBytes(49 * kMb);
  monitor.Sample();
  Status low = monitor.Check();
  EXPECT_EQ(low.code(), Code::kNoSpace);
  EXPECT_THAT(low.message(), HasSubstr("49 MB free"));
  EXPECT_THAT(low.message(), HasSubstr("storage.min_free_mb is 50 MB"));
  env_.SetFreeBytes(60 * kMb);
  monitor.Sample();
  EXPECT_TRUE(monitor.Check().ok());
}

// A probe deleted a running serve's data dir: it went on acknowledging
// writes, all lost. Once the dir that was there is gone, writes are refused
// and stay refused (the store's files went with it).
TEST_F(DiskMonitorTest, ADataDirDeletedWhileRunningRefusesWritesForGood) {
  const std::string data = dir_.path() + "/data";
  DiskMonitor before(&env_, data, 0, nullptr);
  EXPECT_TRUE(before.Check().ok()) << "a dir not made yet is not gone";
  std::filesystem::create_directories(data);
  DiskMonitor monitor(&env_, data, 0, nullptr);
  EXPECT_TRUE(monitor.Admit(1).ok());
  std::filesystem::remove_all(data);
  monitor.Sample();
  Status gone = monitor.Check();
  EXPECT_EQ(gone.code(), Code::kIoError);
  EXPECT_THAT(gone.message(), HasSubstr("was deleted while running"));
  EXPECT_EQ(monitor.Admit(1).code(), Code::kIoError);
  std::filesystem::create_directories(data);  // an empty dir in its place
  monitor.Sample();
  EXPECT_EQ(monitor.Check().code(), Code::kIoError) << "the store's files are still gone";
}

// A data dir reached through a symbolic link that is re-pointed (removed,
// then made again) is not deleted: the directory the store uses is there.
TEST_F(DiskMonitorTest, ADataDirSymlinkRepointedIsNotGone) {
  const std::string real = dir_.path() + "/real";
  const std::string link = dir_.path() + "/link";
  std::filesystem::create_directories(real);
  std::filesystem::create_directory_symlink(real, link);
  DiskMonitor monitor(&env_, link, 0, nullptr);
  std::filesystem::remove(link);
  monitor.Sample();  // the path names nothing for a moment
  std::filesystem::create_directory_symlink(real, link);
  monitor.Sample();
  EXPECT_TRUE(monitor.Check().ok()) << monitor.Check().ToString();
}

TEST_F(DiskMonitorTest, AdmitCountsBytesUntilTheNextSample) {
  env_.SetFreeBytes(100 * kMb);
  DiskMonitor monitor(&env_, dir_.path(), 50 * kMb, nullptr);
  EXPECT_TRUE(monitor.Admit(30 * kMb).ok());
  EXPECT_TRUE(monitor.Admit(20 * kMb).ok());  // exactly down to the threshold
  EXPECT_EQ(monitor.Admit(1).code(), Code::kNoSpace) << "would go below the threshold";
  EXPECT_TRUE(monitor.Check().ok()) << "the refused write did not count";
  monitor.Sample();  // the disk is measured again (the writes went elsewhere)
  EXPECT_TRUE(monitor.Admit(1 * kMb).ok());
}

TEST_F(DiskMonitorTest, AFullDiskIsLowWhateverTheThreshold) {
  env_.SetFreeBytes(0);
  Metrics metrics;
  DiskMonitor monitor(&env_, dir_.path(), 0, &metrics);
  EXPECT_EQ(monitor.Check().code(), Code::kNoSpace) << "storage.min_free_mb = 0, nothing free";
  EXPECT_EQ(monitor.Admit(1).code(), Code::kNoSpace);
  EXPECT_THAT(metrics.Serialize(), HasSubstr("catchall_storage_low_space 1\n"));
  env_.SetFreeBytes(1 * kMb);
  monitor.Sample();
  EXPECT_TRUE(monitor.Check().ok());
  EXPECT_THAT(metrics.Serialize(), HasSubstr("catchall_storage_low_space 0\n"));
}

TEST_F(DiskMonitorTest, AWriteTooLargeForTheMarginSaysWhatIsFreeAndWhatItNeeds) {
  env_.SetFreeBytes(100 * kMb);
  DiskMonitor monitor(&env_, dir_.path(), 40 * kMb, nullptr);
  ASSERT_TRUE(monitor.Admit(10 * kMb).ok());
  Status refused = monitor.Admit(60 * kMb);
  EXPECT_EQ(refused.code(), Code::kNoSpace);
  // The space as it is (90 MB after the first write), not as it would be.
  EXPECT_THAT(refused.message(), HasSubstr("has 90.0 MB free"));
  EXPECT_THAT(refused.message(), HasSubstr("this write of 60.0 MB would leave 30.0 MB"));
  EXPECT_THAT(refused.message(), HasSubstr("storage.min_free_mb (40 MB)"));
  EXPECT_TRUE(monitor.Check().ok()) << "the disk is not low: smaller writes still go through";
  EXPECT_TRUE(monitor.Admit(1 * kMb).ok());
}

// Found by a probe: a 35 KB batch on a disk with 20 KB free and the margin
// off was refused as "0 MB free and this write of 1 MB would leave less
// than storage.min_free_mb (0 MB)".
TEST_F(DiskMonitorTest, AWriteLargerThanWhatIsFreeSaysSoInKilobytes) {
  env_.SetFreeBytes(20 << 10);
  DiskMonitor monitor(&env_, dir_.path(), 0, nullptr);
  Status refused = monitor.Admit(35 << 10);
  EXPECT_EQ(refused.code(), Code::kNoSpace);
  EXPECT_THAT(refused.message(), HasSubstr("has 20 KB free, less than this write's 35 KB"));
  EXPECT_THAT(refused.message(), Not(HasSubstr("min_free_mb")));
}

// A refused write must leave the count as it found it even when a sample
// resets the count between the write's reservation and its refusal: an undo
// after the reset would wrap the count below zero, and the next refused write
// of the same size would wrap it back to zero and be let through.
TEST_F(DiskMonitorTest, ARefusalRacingASampleNeitherAdmitsNorBlocksLaterWrites) {
  env_.SetFreeBytes(100 * kMb);
  DiskMonitor monitor(&env_, dir_.path(), 50 * kMb, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<int> wrongly_admitted{0};
  std::thread writer([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      // 60 MB of 100 free never fits above a 50 MB margin.
      if (monitor.Admit(60 * kMb).ok()) wrongly_admitted.fetch_add(1);
    }
  });
  for (int i = 0; i < 200000; ++i) monitor.Sample();
  stop = true;
  writer.join();
  EXPECT_EQ(wrongly_admitted.load(), 0);
  EXPECT_EQ(monitor.Admit(60 * kMb).code(), Code::kNoSpace);
  EXPECT_TRUE(monitor.Admit(1 * kMb).ok()) << "a small write fits the margin";
}

TEST_F(DiskMonitorTest, TheThreadSamplesByItself) {
  env_.SetFreeBytes(100 * kMb);
  DiskMonitor monitor(&env_, dir_.path(), 50 * kMb, nullptr);
  monitor.Start(5ms);
  env_.SetFreeBytes(10 * kMb);
  auto until = std::chrono::steady_clock::now() + 30s;
  while (monitor.Check().ok() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(monitor.Check().code(), Code::kNoSpace);
}

TEST_F(DiskMonitorTest, ALocalLogRefusesAppendsWhileTheDiskIsLow) {
  env_.SetFreeBytes(100 * kMb);
  DiskMonitor monitor(&env_, dir_.path(), 50 * kMb, nullptr);
  LocalLogOptions options;
  options.topics = {{"t", 1}};
  options.disk = &monitor;
  KvStoreOptions kv;
  kv.path = dir_.path() + "/db";
  kv.columns = LocalLog::Columns(options);
  kv.block_cache_bytes = 8 << 20;
  kv.write_buffer_bytes = 4 << 20;
  std::unique_ptr<KvStore> store;
  ASSERT_TRUE(KvStore::Open(kv, &store).ok());
  std::unique_ptr<LocalLog> log;
  ASSERT_TRUE(LocalLog::Open(options, store.get(), nullptr, &log).ok());
  auto append = [&] {
    std::promise<Status> done;
    Status s =
        log->Appender("t")->Append({{"k", "v"}}, [&](const Status& st) { done.set_value(st); });
    return s.ok() ? done.get_future().get() : s;
  };
  EXPECT_TRUE(append().ok());
  env_.SetFreeBytes(10 * kMb);
  monitor.Sample();
  EXPECT_EQ(append().code(), Code::kNoSpace);
  EXPECT_EQ(log->Appender("t")->Health().code(), Code::kNoSpace) << "/readyz says why";
  env_.SetFreeBytes(100 * kMb);
  monitor.Sample();
  EXPECT_TRUE(append().ok()) << "appends resume by themselves";
  EXPECT_TRUE(log->Appender("t")->Health().ok());
}

}  // namespace
}  // namespace catchall
