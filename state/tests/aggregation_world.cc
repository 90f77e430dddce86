#include "aggregation_world.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "engine/changelog.h"
#include "engine/counts_table.h"
#include "engine/event.h"
#include "engine/partitioner.h"
#include "test_util.h"

namespace catchall::test {

using namespace std::chrono_literals;

std::string ModeName(Mode mode) { return mode == Mode::kEmbedded ? "Embedded" : "Cluster"; }

AggregationWorld::AggregationWorld(Mode mode, std::string dir, AggregationOptions options,
                                   int32_t log_partitions)
    : mode_(mode),
      log_partitions_(log_partitions),
      dir_(std::move(dir)),
      options_(std::move(options)) {
  // As the nodes configure it (app/embedded_node.cc, app/cluster_nodes.cc).
  options_.ready_when_caught_up = mode_ == Mode::kEmbedded;
  if (mode_ == Mode::kCluster) {
    options_.status_topic = std::string(kStatusTopic);
    options_.ids_topic = std::string(kIdsTopic);
    OpenClusterLog();
  }
}

AggregationWorld::~AggregationWorld() {
  while (!processes_.empty()) Stop(processes_.back().get());
  idle_log_.reset();
  idle_store_.reset();
  cluster_log_.reset();
  log_store_.reset();
}

KvStoreOptions AggregationWorld::StoreOptions(const std::string& path,
                                              std::vector<ColumnSpec> columns) const {
  return SmallStoreOptions(dir_ + "/" + path, std::move(columns));
}

LocalLogOptions AggregationWorld::LogOptions() const {
  LocalLogOptions o;
  o.topics = {{std::string(kEventsTopic), kWorldPartitions}, {std::string(kDeadLetterTopic), 1}};
  if (mode_ == Mode::kCluster) {
    o.topics.push_back({std::string(kStatusTopic), log_partitions_});
    o.topics.push_back({std::string(kIdsTopic), log_partitions_});
  }
  // A process killed by a test is noticed at once, not after 10 s.
  o.session_timeout = 200ms;
  return o;
}

void AggregationWorld::OpenClusterLog() {
  Status s = KvStore::Open(StoreOptions("log", LocalLog::Columns(LogOptions())), &log_store_);
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = LocalLog::Open(LogOptions(), log_store_.get(), nullptr, &cluster_log_);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

void AggregationWorld::OpenEmbedded(Process* p) {
  std::vector<ColumnSpec> columns = LocalLog::Columns(LogOptions());
  for (auto& c : CounterStore::Columns(24h)) columns.push_back(std::move(c));
  testing::FaultInjectionEnv env(&p->injector);
  Status s = env.OpenStore(StoreOptions("embedded", std::move(columns)), &p->store);
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = LocalLog::Open(LogOptions(), p->store.get(), nullptr, &p->log);
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = p->log->NewGroupLog(std::string(kWorldGroup), kEventsTopic, /*state_in_transaction=*/true,
                          &p->base_group);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

LocalLog* AggregationWorld::log() {
  if (mode_ == Mode::kCluster) return cluster_log_.get();
  for (auto& p : processes_) return p->log.get();
  if (!idle_log_) {
    std::vector<ColumnSpec> columns = LocalLog::Columns(LogOptions());
    for (auto& c : CounterStore::Columns(24h)) columns.push_back(std::move(c));
    Status s = KvStore::Open(StoreOptions("embedded", std::move(columns)), &idle_store_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    s = LocalLog::Open(LogOptions(), idle_store_.get(), nullptr, &idle_log_);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return idle_log_.get();
}

AggregationWorld::Process* AggregationWorld::Start(const std::string& machine) {
  auto p = std::make_unique<Process>();
  p->machine = machine;
  if (mode_ == Mode::kEmbedded) {
    EXPECT_TRUE(processes_.empty()) << "embedded mode runs one process at a time";
    idle_log_.reset();
    idle_store_.reset();
    OpenEmbedded(p.get());
  } else {
    testing::FaultInjectionEnv env(&p->injector);
    Status s =
        env.OpenStore(StoreOptions("state-" + machine, CounterStore::Columns(24h)), &p->store);
    EXPECT_TRUE(s.ok()) << s.ToString();
    s = cluster_log_->NewGroupLog(std::string(kWorldGroup), kEventsTopic,
                                  /*state_in_transaction=*/false, &p->base_group);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  p->counters = std::make_unique<CounterStore>(p->store.get(), std::string(kEventsTopic));
  p->group = std::make_unique<testing::FaultInjectionGroupLog>(p->base_group.get(), &p->injector);
  AggregationOptions options = options_;
  if (standbys_) {
    EXPECT_EQ(mode_, Mode::kCluster) << "standbys are a cluster mode feature";
    StandbyOptions standby;
    standby.begin_after = options_.ready_without_assignment;
    standby.retry_delay = options_.retry_delay;
    standby.partitions = kWorldPartitions;  // the events topic's, as the node sets it
    p->standby =
        std::make_unique<StandbyReplicas>(standby, p->group.get(), p->counters.get(), &p->metrics);
    options.ownership = p->standby.get();
  }
  p->loop =
      std::make_unique<AggregationLoop>(options, p->group.get(), p->counters.get(), &p->metrics);
  Status s = p->loop->Join();
  EXPECT_TRUE(s.ok()) << s.ToString();
  processes_.push_back(std::move(p));
  return processes_.back().get();
}

void AggregationWorld::Forget(Process* p) {
  p->loop.reset();
  p->standby.reset();
  p->group.reset();
  p->base_group.reset();
  p->counters.reset();
  p->log.reset();  // embedded: the process's log goes with it
  p->store.reset();
  for (auto it = processes_.begin(); it != processes_.end(); ++it) {
    if (it->get() == p) {
      processes_.erase(it);
      return;
    }
  }
}

void AggregationWorld::Kill(Process* p) {
  p->injector.CrashNow();
  Forget(p);
}

void AggregationWorld::Stop(Process* p) {
  p->loop->Stop();
  Forget(p);
}

void AggregationWorld::Append(std::vector<LogRecord> records, std::string_view topic) {
  std::promise<Status> done;
  std::future<Status> future = done.get_future();
  Status s = log()->Appender(topic)->Append(std::move(records),
                                            [&done](const Status& st) { done.set_value(st); });
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(future.wait_for(30s), std::future_status::ready);
  s = future.get();
  ASSERT_TRUE(s.ok()) << s.ToString();
}

void AggregationWorld::AppendEvent(const std::string& domain, bool bounced, const std::string& id) {
  Event event;
  event.domain = domain;
  event.type = bounced ? EventType::kBounced : EventType::kDelivered;
  event.id = id;
  LogRecord record{domain, {}};
  AppendEventJson(event, &record.value);
  if (id.empty() || !seen_ids_[IdKey(domain, id)]) {
    DomainCounts& c = expected_[domain];
    ++(bounced ? c.bounced : c.delivered);
    if (!id.empty()) seen_ids_[IdKey(domain, id)] = true;
  }
  Append({std::move(record)});
}

void AggregationWorld::AppendMalformed(const std::string& key, const std::string& value) {
  ++malformed_;
  Append({{key, value}});
}

void AggregationWorld::AppendTo(std::string_view topic, const std::string& key,
                                const std::string& value) {
  ASSERT_EQ(mode_, Mode::kCluster) << "embedded mode has no changelog or ids log";
  Append({{key, value}}, topic);
}

void AggregationWorld::AppendEvents(int n, int domains, uint32_t seed) {
  rng_.seed(seed);
  std::vector<LogRecord> records;
  for (int i = 0; i < n; ++i) {
    std::string domain = fmt::format("d{}.example", rng_() % static_cast<uint32_t>(domains));
    uint32_t roll = rng_() % 100;
    if (roll < 2) {  // a record any Kafka tool could have written by mistake
      ++malformed_;
      records.push_back({domain, "{\"domain\":\"" + domain + "\"}"});
      continue;
    }
    Event event;
    event.domain = domain;
    event.type = roll < 20 ? EventType::kBounced : EventType::kDelivered;
    if (roll % 2 == 0) {
      // Half the events carry an id; some of those retry an earlier one.
      event.id = "id-" + std::to_string(roll < 60 ? rng_() % 50 : rng_());
    }
    std::string key = IdKey(domain, event.id);
    if (event.id.empty() || !seen_ids_[key]) {
      DomainCounts& c = expected_[domain];
      ++(event.type == EventType::kBounced ? c.bounced : c.delivered);
      if (!event.id.empty()) seen_ids_[key] = true;
    }
    LogRecord record{domain, {}};
    AppendEventJson(event, &record.value);
    records.push_back(std::move(record));
  }
  Append(std::move(records));
}

void AggregationWorld::StepAll() {
  for (auto& p : processes_) {
    p->loop->Step();
    if (p->standby) p->standby->Step(0ms);
  }
}

bool AggregationWorld::RunUntil(const std::function<bool()>& done,
                                std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    StepAll();
  }
  return true;
}

bool AggregationWorld::CaughtUp() {
  std::map<int32_t, int64_t> committed = log()->Committed(kWorldGroup, kEventsTopic);
  for (int32_t p = 0; p < kWorldPartitions; ++p) {
    int64_t end = log()->EndOffset(kEventsTopic, p);
    if (end > 0 && committed[p] != end) return false;
  }
  return true;
}

bool AggregationWorld::RunUntilCaughtUp(std::chrono::milliseconds deadline) {
  return RunUntil([this] { return CaughtUp(); }, deadline);
}

std::map<std::string, DomainCounts> AggregationWorld::Visible() {
  std::map<std::string, DomainCounts> out;
  if (mode_ == Mode::kEmbedded) {
    EXPECT_FALSE(processes_.empty()) << "start a process to see its state";
    if (processes_.empty()) return out;
    for (const auto& [domain, want] : expected_) {
      Result<DomainCounts> got = processes_.front()->counters->Get(domain);
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      if (got.ok()) out[domain] = *got;
    }
    return out;
  }
  // A query node's view: the changelog applied to a fresh store.
  static int views = 0;
  std::unique_ptr<KvStore> view;
  Status s = KvStore::Open(
      StoreOptions("view-" + std::to_string(views++), {{"counts", ColumnKind::kPlain, {}}}), &view);
  EXPECT_TRUE(s.ok()) << s.ToString();
  Column counts = view->GetColumn("counts");
  ChangelogApplier applier(counts);
  std::unique_ptr<LogReader> reader;
  EXPECT_TRUE(cluster_log_->NewReader(kStatusTopic, &reader).ok());
  for (int32_t p = 0; p < kWorldPartitions; ++p) EXPECT_TRUE(reader->Seek(p, 0).ok());
  RecordBatch batch;
  KvWriteBatch writes;
  EXPECT_TRUE(reader->Poll(0ms, 100000000, &batch).ok());
  for (const ConsumedRecord& r : batch.records()) applier.Apply(r, &writes);
  EXPECT_TRUE(view->Write(&writes).ok());
  CountsTable table(view.get(), counts);
  for (const auto& [domain, want] : expected_) out[domain] = table.Get(domain).value();
  return out;
}

std::string AggregationWorld::Differences() {
  std::string diff;
  auto print = [](const DomainCounts& c) {
    return std::to_string(c.delivered) + "/" + std::to_string(c.bounced);
  };
  std::map<std::string, DomainCounts> visible = Visible();
  for (const auto& [domain, want] : expected_) {
    if (visible[domain] != want) {
      diff += domain + ": expected " + print(want) + ", visible " + print(visible[domain]) + "\n";
    }
  }
  if (mode_ == Mode::kCluster) {
    for (auto& p : processes_) {
      std::vector<int32_t> owned = p->loop->owned();
      for (const auto& [domain, want] : expected_) {
        int32_t partition = PartitionForKey(domain, kWorldPartitions);
        if (std::find(owned.begin(), owned.end(), partition) == owned.end()) continue;
        DomainCounts cached = p->counters->Get(domain).value();
        if (cached != want) {
          diff += domain + ": expected " + print(want) + ", process " + p->machine +
                  "'s state has " + print(cached) + "\n";
        }
      }
    }
  }
  return diff;
}

size_t AggregationWorld::DeadLetters() {
  std::unique_ptr<LogReader> reader;
  EXPECT_TRUE(log()->NewReader(kDeadLetterTopic, &reader).ok());
  EXPECT_TRUE(reader->Seek(0, 0).ok());
  RecordBatch batch;
  EXPECT_TRUE(reader->Poll(0ms, 1000000, &batch).ok());
  return batch.records().size();
}

}  // namespace catchall::test
