#include "state/embedded_aggregation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/event.h"
#include "engine/metrics.h"
#include "engine/partitioner.h"
#include "test_util.h"

namespace catchall {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr int32_t kPartitions = 4;

LogRecord EventRecord(std::string_view domain, EventType type, std::string_view id = {}) {
  Event event;
  event.domain = std::string(domain);
  event.type = type;
  event.id = std::string(id);
  LogRecord record;
  record.key = event.domain;
  AppendEventJson(event, &record.value);
  return record;
}

// Polls `condition` until it holds or a generous deadline passes.
template <typename F>
bool WaitUntil(F condition, std::chrono::milliseconds deadline = 30s) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// A LocalLog and a CounterStore over one KvStore, as in embedded mode, and
// the aggregation between them.
class EmbeddedAggregationTest : public ::testing::Test {
 protected:
  EmbeddedAggregationTest() { Open(); }
  ~EmbeddedAggregationTest() override { CloseAll(); }

  void Open() {
    LocalLogOptions log_options;
    log_options.topics = {{std::string(kEventsTopic), kPartitions},
                          {std::string(kDeadLetterTopic), 1}};
    std::vector<ColumnSpec> columns = LocalLog::Columns(log_options);
    for (auto& c : CounterStore::Columns(24h)) columns.push_back(std::move(c));
    Status s =
        KvStore::Open(test::SmallStoreOptions(dir_.path() + "/db", std::move(columns)), &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = LocalLog::Open(log_options, store_.get(), nullptr, &log_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    counters_ = std::make_unique<CounterStore>(store_.get(), std::string(kEventsTopic));
  }

  void MakeAggregation(Metrics* metrics = nullptr) {
    EmbeddedAggregationOptions options;
    options.commit_interval = 10ms;
    aggregation_ =
        std::make_unique<EmbeddedAggregation>(options, log_.get(), counters_.get(), metrics);
  }

  void StartAggregation(Metrics* metrics = nullptr) {
    MakeAggregation(metrics);
    Status s = aggregation_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Stops everything and closes the store, like a clean shutdown.
  void CloseAll() {
    if (aggregation_) aggregation_->Stop();
    aggregation_.reset();
    if (log_) log_->Close();
    log_.reset();
    counters_.reset();
    if (store_) {
      EXPECT_TRUE(store_->Flush().ok());
    }
    store_.reset();
  }

  // Appends through the log's appender and waits until it is durable.
  void Append(std::vector<LogRecord> records, std::string_view topic = kEventsTopic) {
    std::promise<Status> done;
    std::future<Status> future = done.get_future();
    Status s = log_->Appender(topic)->Append(std::move(records),
                                             [&done](const Status& st) { done.set_value(st); });
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(future.wait_for(30s), std::future_status::ready);
    Status written = future.get();
    ASSERT_TRUE(written.ok()) << written.ToString();
  }

  void AppendEvents(std::string_view domain, EventType type, int n) {
    std::vector<LogRecord> records;
    records.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) records.push_back(EventRecord(domain, type));
    Append(std::move(records));
  }

  // True once every partition's committed offset is the log's end.
  bool CaughtUp() {
    for (int32_t p = 0; p < kPartitions; ++p) {
      Result<int64_t> committed = counters_->CommittedOffset(p);
      if (!committed.ok() || *committed != log_->EndOffset(kEventsTopic, p)) return false;
    }
    return true;
  }

  void WaitCaughtUp() {
    ASSERT_TRUE(WaitUntil([&] { return CaughtUp(); })) << "never caught up";
  }

  DomainCounts Get(std::string_view domain) {
    Result<DomainCounts> r = counters_->Get(domain);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : DomainCounts{999999, 999999};
  }

  test::ScopedTempDir dir_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<LocalLog> log_;
  std::unique_ptr<CounterStore> counters_;
  std::unique_ptr<EmbeddedAggregation> aggregation_;
};

TEST_F(EmbeddedAggregationTest, AppendedEventsBecomeVisibleAfterACommit) {
  StartAggregation();
  AppendEvents("a.com", EventType::kDelivered, 5);
  AppendEvents("b.com", EventType::kBounced, 2);
  Append({EventRecord("a.com", EventType::kBounced), EventRecord("c.com", EventType::kDelivered)});
  EXPECT_TRUE(WaitUntil([&] {
    return Get("a.com") == DomainCounts{5, 1};
  })) << "a.com: "
      << ::testing::PrintToString(Get("a.com"));
  WaitCaughtUp();
  EXPECT_EQ(Get("a.com"), (DomainCounts{5, 1}));
  EXPECT_EQ(Get("b.com"), (DomainCounts{0, 2}));
  EXPECT_EQ(Get("c.com"), (DomainCounts{1, 0}));
  EXPECT_TRUE(aggregation_->Health().ok());
}

TEST_F(EmbeddedAggregationTest, EventsWithTheSameIdAreCountedOnce) {
  StartAggregation();
  Append({EventRecord("a.com", EventType::kDelivered, "id-1")});
  Append({EventRecord("a.com", EventType::kDelivered, "id-1"),
          EventRecord("a.com", EventType::kDelivered, "id-2")});
  WaitCaughtUp();
  EXPECT_EQ(Get("a.com"), (DomainCounts{2, 0}));
}

TEST_F(EmbeddedAggregationTest, RestartResumesWithoutDoubleCounting) {
  StartAggregation();
  AppendEvents("a.com", EventType::kDelivered, 4);
  Append({EventRecord("b.com", EventType::kBounced, "once")});
  AppendEvents("c.com", EventType::kDelivered, 1);
  WaitCaughtUp();
  EXPECT_EQ(Get("a.com"), (DomainCounts{4, 0}));

  CloseAll();
  Open();
  // Events logged while the aggregation is down, then while it runs; one of
  // them is a retry of an event counted before the restart.
  AppendEvents("a.com", EventType::kDelivered, 2);
  Append({EventRecord("b.com", EventType::kBounced, "once")});
  StartAggregation();
  AppendEvents("c.com", EventType::kBounced, 3);
  WaitCaughtUp();
  EXPECT_EQ(Get("a.com"), (DomainCounts{6, 0}));
  EXPECT_EQ(Get("b.com"), (DomainCounts{0, 1}));
  EXPECT_EQ(Get("c.com"), (DomainCounts{1, 3}));
}

TEST_F(EmbeddedAggregationTest, StartResumesFromTheCommittedOffsets) {
  // Ten domains, domain i with i+1 events, spread over the partitions.
  uint64_t expected[10];
  for (int i = 0; i < 10; ++i) {
    AppendEvents("d" + std::to_string(i) + ".com", EventType::kDelivered, i + 1);
    expected[i] = static_cast<uint64_t>(i) + 1;
  }
  // A previous run counted the first records of each partition and committed
  // them with their offsets, then stopped.
  {
    Aggregator previous(AggregatorOptions{kPartitions, 24h}, counters_.get());
    std::string reason;
    for (int32_t p = 0; p < kPartitions; ++p) {
      LocalReadResult read;
      ASSERT_TRUE(log_->Read(kEventsTopic, p, 0, 3, &read).ok());
      for (size_t i = 0; i < read.records.size() && i < 3; ++i) {
        Result<ApplyOutcome> outcome = previous.Apply(read.records[i], &reason);
        ASSERT_TRUE(outcome.ok());
        ASSERT_EQ(*outcome, ApplyOutcome::kCounted) << reason;
      }
    }
    ASSERT_FALSE(previous.delta().offsets.empty());
    ASSERT_TRUE(counters_->Commit(previous.TakeDelta()).ok());
  }
  StartAggregation();
  WaitCaughtUp();
  for (int i = 0; i < 10; ++i) {
    std::string domain = "d" + std::to_string(i) + ".com";
    EXPECT_EQ(Get(domain), (DomainCounts{expected[i], 0})) << domain;
  }
}

TEST_F(EmbeddedAggregationTest, MalformedRecordIsDeadLetteredAndLaterEventsStillCount) {
  Metrics metrics;
  StartAggregation(&metrics);
  Append({LogRecord{"a.com", "not json"}});
  Append({LogRecord{"B.com", R"({"domain":"B.com","type":"delivered"})"}});
  AppendEvents("a.com", EventType::kDelivered, 2);
  WaitCaughtUp();
  EXPECT_EQ(Get("a.com"), (DomainCounts{2, 0}));
  EXPECT_EQ(Get("b.com"), (DomainCounts{0, 0}));

  LocalReadResult dead;
  ASSERT_TRUE(log_->Read(kDeadLetterTopic, 0, 0, 100, &dead).ok());
  ASSERT_EQ(dead.records.size(), 2u);
  const ConsumedRecord& first = dead.records[0];
  EXPECT_EQ(first.key, "a.com");
  simdjson::dom::parser parser;
  simdjson::padded_string padded(first.value);
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(padded).get(root), simdjson::SUCCESS) << first.value;
  std::string_view s;
  int64_t n = -1;
  EXPECT_EQ(root["topic"].get_string().get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, kEventsTopic);
  EXPECT_EQ(root["partition"].get_int64().get(n), simdjson::SUCCESS);
  EXPECT_EQ(n, PartitionForKey("a.com", kPartitions));
  EXPECT_EQ(root["offset"].get_int64().get(n), simdjson::SUCCESS);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(root["reason"].get_string().get(s), simdjson::SUCCESS);
  EXPECT_THAT(std::string(s), HasSubstr("not an event object"));
  EXPECT_EQ(root["value"].get_string().get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "not json");
  EXPECT_EQ(dead.records[1].key, "B.com");
  EXPECT_THAT(std::string(dead.records[1].value), HasSubstr("not normalized"));

  std::string text = metrics.Serialize();
  EXPECT_THAT(text, HasSubstr("catchall_aggregate_records_total{outcome=\"dead_lettered\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("catchall_aggregate_records_total{outcome=\"counted\"} 2\n"));
}

TEST_F(EmbeddedAggregationTest, ReadyOnlyOnceTheBacklogIsCommitted) {
  for (int i = 0; i < 20; ++i) {
    Append({EventRecord("a.com", EventType::kDelivered), EventRecord("b.com", EventType::kBounced),
            EventRecord("c" + std::to_string(i) + ".com", EventType::kDelivered)});
  }
  MakeAggregation();
  EXPECT_FALSE(aggregation_->ready());
  ASSERT_TRUE(aggregation_->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return aggregation_->ready(); })) << "never became ready";
  // Ready means the whole backlog is visible.
  EXPECT_EQ(Get("a.com"), (DomainCounts{20, 0}));
  EXPECT_EQ(Get("b.com"), (DomainCounts{0, 20}));
  EXPECT_EQ(Get("c19.com"), (DomainCounts{1, 0}));
}

TEST_F(EmbeddedAggregationTest, ReadyAtOnceOnAnEmptyLog) {
  StartAggregation();
  EXPECT_TRUE(WaitUntil([&] { return aggregation_->ready(); }));
}

TEST_F(EmbeddedAggregationTest, StartFailsWithoutTheEventsTopic) {
  EmbeddedAggregationOptions options;
  options.topic = "no.such.topic";
  EmbeddedAggregation aggregation(options, log_.get(), counters_.get(), nullptr);
  Status s = aggregation.Start();
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
}

}  // namespace
}  // namespace catchall
