// StatusMaterializer over a real changelog in the embedded log (LocalLog) and
// a real RocksDB store: what a query node serves after reading the records
// of one poll, which it applies in key order rather than in log order.
#include "query/status_materializer.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/domain_status.h"
#include "engine/kv_store.h"
#include "engine/local_log.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "fault_injection.h"
#include "support/metrics.h"
#include "support/temp_dir.h"
#include "support/threads.h"

namespace catchall {
namespace {

constexpr std::string_view kTopic = "catchall.domain-status";

std::string NumberedDomain(uint64_t i) {
  std::string domain = "d";
  domain.append(std::to_string(i)).append(".example");
  return domain;
}

class StatusMaterializerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_options_.topics = {LocalTopicSpec{std::string(kTopic), 3}};
    std::vector<ColumnSpec> columns = LocalLog::Columns(log_options_);
    for (ColumnSpec& c : StatusMaterializer::Columns()) columns.push_back(std::move(c));
    KvStoreOptions options;
    options.path = dir_.path() + "/store";
    options.columns = std::move(columns);
    options.block_cache_bytes = 8 << 20;
    options.write_buffer_bytes = 4 << 20;
    ASSERT_TRUE(KvStore::Open(options, &store_).ok());
    ASSERT_TRUE(LocalLog::Open(log_options_, store_.get(), nullptr, &log_).ok());
  }

  // Appends (domain, counts) changelog records in this order, as one append
  // and so in one poll of the materializer, and waits until they are durable.
  void Publish(const std::vector<std::pair<std::string, DomainCounts>>& updates) {
    std::vector<LogRecord> records;
    for (const auto& [domain, counts] : updates) {
      LogRecord& r = records.emplace_back();
      r.key = domain;
      if (counts.delivered != kDeleted) AppendDomainStatusJson(domain, counts, 1000, &r.value);
    }
    PublishRaw(std::move(records));
  }

  // Appends records as they are, as any Kafka tool could, and waits.
  void PublishRaw(std::vector<LogRecord> records) {
    std::promise<Status> done;
    ASSERT_TRUE(log_->Appender(kTopic)
                    ->Append(std::move(records), [&](const Status& s) { done.set_value(s); })
                    .ok());
    Status s = done.get_future().get();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // A materializer started on the changelog, once it has read to its end.
  // `metrics` may be null.
  std::unique_ptr<StatusMaterializer> StartedMaterializer(Metrics* metrics = nullptr,
                                                          MaterializerOptions options = {},
                                                          KvStore* store = nullptr) {
    std::unique_ptr<LogReader> reader;
    EXPECT_TRUE(log_->NewReader(kTopic, &reader).ok());
    auto m = std::make_unique<StatusMaterializer>(std::move(reader), std::string(kTopic),
                                                  store ? store : store_.get(), metrics,
                                                  std::function<Status()>(), options);
    EXPECT_TRUE(m->Start().ok());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!m->ready() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(m->ready()) << "the materializer did not catch up within 10 s";
    return m;
  }

  DomainCounts CountsOf(const StatusMaterializer& m, std::string_view domain) {
    Result<DomainCounts> counts = m.Get(domain);
    EXPECT_TRUE(counts.ok()) << counts.status().ToString();
    return counts.ok() ? *counts : DomainCounts{};
  }

  // What the store itself holds for `domain` (not the in-memory table).
  std::optional<DomainCounts> Stored(std::string_view domain) {
    std::string value;
    Status s = store_->Get(store_->GetColumn("query.counts"), domain, &value);
    if (s.code() == Code::kNotFound) return std::nullopt;
    EXPECT_TRUE(s.ok()) << s.ToString();
    return DecodeCounts(value);
  }

  // Waits up to 10 s for `done`.
  static bool Eventually(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  // A `delivered` value that Publish turns into a tombstone (empty value).
  static constexpr uint64_t kDeleted = ~uint64_t{0};

  testing::TempDir dir_;
  LocalLogOptions log_options_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<LocalLog> log_;
};

TEST_F(StatusMaterializerTest, TheLastRecordOfADomainInOnePollWins) {
  // Keys out of order, and each domain updated several times in the poll:
  // applied in key order, a domain's records must keep their log order.
  Publish({{"zeta.example", {1, 0}},
           {"alpha.example", {7, 0}},
           {"zeta.example", {2, 0}},
           {"mid.example", {3, 1}},
           {"alpha.example", {4, 0}},
           {"zeta.example", {9, 2}},
           {"gone.example", {5, 0}},
           {"gone.example", {kDeleted, 0}}});
  std::unique_ptr<StatusMaterializer> m = StartedMaterializer();
  EXPECT_EQ(CountsOf(*m, "zeta.example").delivered, 9u);
  EXPECT_EQ(CountsOf(*m, "zeta.example").bounced, 2u);
  EXPECT_EQ(CountsOf(*m, "alpha.example").delivered, 4u);
  EXPECT_EQ(CountsOf(*m, "mid.example").bounced, 1u);
  EXPECT_EQ(CountsOf(*m, "gone.example").delivered, 0u);
}

// Large enough that no sort falls back to an insertion sort (stable by
// accident for 16 elements or fewer): 40 domains, each updated 25 times
// with rising counts, interleaved, in one poll.
TEST_F(StatusMaterializerTest, ManyUpdatesOfManyDomainsInOnePollEndAtTheLastOfEach) {
  constexpr uint64_t kDomains = 40;
  constexpr uint64_t kRounds = 25;
  std::vector<std::pair<std::string, DomainCounts>> updates;
  for (uint64_t round = 1; round <= kRounds; ++round) {
    for (uint64_t d = 0; d < kDomains; ++d) {
      // Domains in an order unlike their key order, changing each round.
      uint64_t domain = (d * 7 + round) % kDomains;
      updates.push_back({NumberedDomain(domain), {round * 100 + domain, 0}});
    }
  }
  Publish(updates);
  std::unique_ptr<StatusMaterializer> m = StartedMaterializer();
  for (uint64_t d = 0; d < kDomains; ++d) {
    EXPECT_EQ(CountsOf(*m, NumberedDomain(d)).delivered, kRounds * 100 + d) << "domain " << d;
  }
}

TEST_F(StatusMaterializerTest, ARestartResumesAfterTheLastRecordApplied) {
  Publish({{"b.example", {1, 0}}, {"a.example", {2, 0}}, {"c.example", {3, 0}}});
  StartedMaterializer()->Stop();
  // Published while no materializer runs: the next one reads these from
  // the offsets the first one stored, and keeps what the first one applied.
  Publish({{"a.example", {6, 0}}, {"a.example", {8, 0}}});
  Metrics metrics;
  std::unique_ptr<StatusMaterializer> m = StartedMaterializer(&metrics);
  // Re-reading from the start would land the same counts: only the number
  // of records the second one applied tells a resume from a re-read.
  testing::Exposition applied(metrics.Serialize());
  EXPECT_EQ(applied.Sum("catchall_query_changelog_records_total"), 2)
      << applied.Describe("catchall_query_changelog_records_total");
  EXPECT_EQ(CountsOf(*m, "a.example").delivered, 8u);
  EXPECT_EQ(CountsOf(*m, "b.example").delivered, 1u);
  EXPECT_EQ(CountsOf(*m, "c.example").delivered, 3u);
}

// A record that does not decode is skipped whole and counted; the records
// around it, in the same poll, still land.
TEST_F(StatusMaterializerTest, ARecordThatDoesNotDecodeIsSkippedAndCounted) {
  Publish({{"a.example", {1, 0}}});
  PublishRaw({{"a.example", R"({"domain":"a.example","delivered":"lots"})"},
              {"b.example", "not json"},
              {"c.example", ""}});  // a tombstone: decodes
  Publish({{"b.example", {4, 2}}});
  Metrics metrics;
  std::unique_ptr<StatusMaterializer> m = StartedMaterializer(&metrics);
  EXPECT_EQ(CountsOf(*m, "a.example").delivered, 1u) << "the bad update was half applied";
  EXPECT_EQ(CountsOf(*m, "b.example"), (DomainCounts{4, 2}));
  testing::Exposition exposition(metrics.Serialize());
  EXPECT_EQ(exposition.Sum("catchall_log_records_skipped_total"), 2)
      << exposition.Describe("catchall_log_records_skipped_total");
  EXPECT_EQ(exposition.Sum("catchall_query_changelog_records_total"), 5);
}

// Checkpoints move what changed from memory to the store, with the offsets
// it reflects: the store alone then answers, and a restart reads on from
// the last checkpoint.
TEST_F(StatusMaterializerTest, CheckpointsMoveWhatChangedToTheStoreAndARestartResumesThere) {
  constexpr uint64_t kDomains = 100;
  std::vector<std::pair<std::string, DomainCounts>> updates;
  for (uint64_t d = 0; d < kDomains; ++d) updates.push_back({NumberedDomain(d), {d, 1}});
  Publish(updates);
  Metrics metrics;
  Metrics again;  // the restarted one's (declared before it: it outlives it)
  MaterializerOptions small;
  small.checkpoint_domains = 10;
  std::unique_ptr<StatusMaterializer> m = StartedMaterializer(&metrics, small);
  ASSERT_TRUE(Eventually([&] {
    return testing::Exposition(metrics.Serialize()).Sum("catchall_query_checkpoints_total") >= 1;
  })) << "no checkpoint was written";
  ASSERT_TRUE(Eventually([&] { return Stored(NumberedDomain(kDomains - 1)).has_value(); }));
  for (uint64_t d = 0; d < kDomains; ++d) {
    EXPECT_EQ(Stored(NumberedDomain(d)), (DomainCounts{d, 1})) << "domain " << d;
  }
  // Updates after the checkpoint: served from memory at once, in the store
  // after the last checkpoint, which Stop writes.
  Publish({{NumberedDomain(3), {300, 3}}, {NumberedDomain(4), {kDeleted, 0}}});
  ASSERT_TRUE(Eventually([&] { return CountsOf(*m, NumberedDomain(3)).delivered == 300; }));
  EXPECT_EQ(CountsOf(*m, NumberedDomain(4)), DomainCounts{});
  m->Stop();
  EXPECT_EQ(Stored(NumberedDomain(3)), (DomainCounts{300, 3}));
  EXPECT_EQ(Stored(NumberedDomain(4)), std::nullopt);
  m = StartedMaterializer(&again);
  EXPECT_EQ(testing::Exposition(again.Serialize()).Sum("catchall_query_changelog_records_total"), 0)
      << "the restart re-read records the checkpoint held";
  EXPECT_EQ(CountsOf(*m, NumberedDomain(3)), (DomainCounts{300, 3}));
  EXPECT_EQ(CountsOf(*m, NumberedDomain(99)), (DomainCounts{99, 1}));
}

// The checkpoint thread is named, and runs at nice 19 when asked to (what
// storage.compaction_low_priority asks in a query node), else at the
// process's own priority.
TEST_F(StatusMaterializerTest, TheCheckpointThreadYieldsTheCoresWhenAskedTo) {
  using testing::NiceOfThreads;
  MaterializerOptions low;
  low.checkpoint_low_priority = true;
  std::unique_ptr<StatusMaterializer> m = StartedMaterializer(nullptr, low);
  ASSERT_TRUE(Eventually([] { return !NiceOfThreads(kCheckpointThreadName).empty(); }))
      << "no thread named " << kCheckpointThreadName;
  ASSERT_TRUE(Eventually([] {
    return NiceOfThreads(kCheckpointThreadName) == std::vector<int>{19};
  })) << "nice "
      << ::testing::PrintToString(NiceOfThreads(kCheckpointThreadName));
  m.reset();
  EXPECT_TRUE(NiceOfThreads(kCheckpointThreadName).empty()) << "the thread outlived its owner";
  m = StartedMaterializer(nullptr, MaterializerOptions{});
  ASSERT_TRUE(Eventually([] { return !NiceOfThreads(kCheckpointThreadName).empty(); }));
  EXPECT_EQ(NiceOfThreads(kCheckpointThreadName), std::vector<int>{::getpriority(PRIO_PROCESS, 0)});
}

// Between checkpoints the in-memory table answers first: an update or a
// deletion the store does not hold yet is what a lookup sees.
TEST_F(StatusMaterializerTest, LookupsSeeChangesTheStoreDoesNotHoldYet) {
  Publish({{"a.example", {1, 0}}, {"b.example", {2, 0}}, {"c.example", {3, 0}}});
  StartedMaterializer()->Stop();  // the last checkpoint puts them in the store
  Publish({{"a.example", {kDeleted, 0}}, {"b.example", {20, 2}}});
  std::unique_ptr<StatusMaterializer> m = StartedMaterializer();  // no checkpoint for 10 s
  EXPECT_EQ(Stored("a.example"), (DomainCounts{1, 0}));
  EXPECT_EQ(Stored("b.example"), (DomainCounts{2, 0}));
  EXPECT_EQ(CountsOf(*m, "a.example"), DomainCounts{});
  EXPECT_EQ(CountsOf(*m, "b.example"), (DomainCounts{20, 2}));
  std::vector<DomainCounts> many;
  ASSERT_TRUE(m->MultiGet({"c.example", "a.example", "new.example", "b.example"}, &many).ok());
  EXPECT_EQ(many, (std::vector<DomainCounts>{{3, 0}, {}, {}, {20, 2}}));
}

// A checkpoint that cannot be written (a full disk) pauses the reading and
// says why in Health(); lookups keep answering with what was read, from
// memory. The write is tried again, and once it lands all carries on.
TEST_F(StatusMaterializerTest, AFailedCheckpointPausesReadingUntilItIsWritten) {
  testing::FaultInjector injector;
  testing::FaultInjectionKvStore faulty(store_.get(), &injector);
  injector.Arm(testing::FaultPoint::kStoreWrite, 1, testing::FaultTiming::kBefore,
               testing::FaultEffect::kError, Status(Code::kNoSpace, "injected: disk full"));
  Publish({{"a.example", {1, 0}}, {"b.example", {2, 0}}});
  Metrics metrics;
  MaterializerOptions small;
  small.checkpoint_domains = 1;
  std::unique_ptr<StatusMaterializer> m = StartedMaterializer(&metrics, small, &faulty);
  ASSERT_TRUE(Eventually([&] { return !m->Health().ok(); })) << "the failure was not reported";
  EXPECT_EQ(m->Health().code(), Code::kNoSpace) << m->Health().ToString();
  EXPECT_EQ(CountsOf(*m, "a.example"), (DomainCounts{1, 0}));
  EXPECT_EQ(CountsOf(*m, "b.example"), (DomainCounts{2, 0}));
  // Tried again a second later: written, and the reading resumes.
  ASSERT_TRUE(Eventually([&] { return Stored("a.example").has_value(); }));
  EXPECT_EQ(Stored("b.example"), (DomainCounts{2, 0}));
  Publish({{"a.example", {5, 0}}});
  ASSERT_TRUE(Eventually([&] { return CountsOf(*m, "a.example").delivered == 5; }));
  EXPECT_TRUE(m->Health().ok()) << m->Health().ToString();
  EXPECT_GE(testing::Exposition(metrics.Serialize()).Sum("catchall_query_checkpoints_total"), 1);
}

// catchall_query_unsaved_domains counted the active table only: while a
// checkpoint failed (a full disk), the domains it held, in memory only,
// were not in it (found by a review, thirteenth session).
TEST_F(StatusMaterializerTest, DomainsOfAFailingCheckpointCountAsUnsaved) {
  testing::FaultInjector injector;
  testing::FaultInjectionKvStore faulty(store_.get(), &injector);
  injector.ArmRepeated(testing::FaultPoint::kStoreWrite, 1, 3, testing::FaultTiming::kBefore,
                       Status(Code::kNoSpace, "injected: disk full"));
  std::vector<std::pair<std::string, DomainCounts>> domains;
  for (int i = 0; i < 50; ++i) domains.push_back({"d" + std::to_string(i) + ".example", {1, 0}});
  Publish(domains);
  Metrics metrics;
  MaterializerOptions small;
  small.checkpoint_domains = 1;
  std::unique_ptr<StatusMaterializer> m = StartedMaterializer(&metrics, small, &faulty);
  ASSERT_TRUE(Eventually([&] { return !m->Health().ok(); })) << "the failure was not reported";
  auto unsaved = [&] {
    return testing::Exposition(metrics.Serialize()).Sum("catchall_query_unsaved_domains");
  };
  EXPECT_TRUE(Eventually([&] { return unsaved() == 50; })) << unsaved();
  EXPECT_FALSE(m->Health().ok()) << "checked while the checkpoint still failed";
  // Every failed try counts, and none after the one that succeeded.
  auto failures = [&] {
    return testing::Exposition(metrics.Serialize()).Sum("catchall_query_checkpoint_failures_total");
  };
  EXPECT_TRUE(Eventually([&] { return failures() >= 1; })) << failures();
  // Written at last: nothing is in memory only.
  ASSERT_TRUE(Eventually([&] { return Stored("d49.example").has_value(); }));
  EXPECT_TRUE(Eventually([&] { return unsaved() == 0; })) << unsaved();
  EXPECT_EQ(failures(), 3) << "the injector refused three writes";
}

}  // namespace
}  // namespace catchall
