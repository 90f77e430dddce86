#include "state/kafka_aggregation.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "engine/domain_status.h"
#include "engine/partitioner.h"
#include "state/aggregator_probe.h"

namespace catchall {
namespace {

constexpr size_t kPollMax = 20000;
constexpr int kCommitRetries = 5;
constexpr size_t kRestoreBatch = 50000;
// A member that gets no partitions still becomes ready after this.
constexpr auto kReadyWithoutAssignment = std::chrono::seconds(15);

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

KafkaAggregation::KafkaAggregation(KafkaAggregationOptions options, KvStore* store,
                                   Metrics* metrics)
    : options_(std::move(options)),
      store_(store),
      counters_(store, options_.events_topic),
      probe_(metrics ? std::make_unique<AggregatorProbe>(*metrics, options_.worker) : nullptr) {}

KafkaAggregation::~KafkaAggregation() { Stop(); }

void KafkaAggregation::SetHealth(const Status& s) {
  std::lock_guard<std::mutex> lock(mu_);
  health_ = s;
}

Status KafkaAggregation::Health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

std::vector<int32_t> KafkaAggregation::owned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {owned_view_.begin(), owned_view_.end()};
}

Status KafkaAggregation::Connect() {
  // The producer first: initializing transactions fences a previous
  // incarnation of this aggregator and aborts its open transaction.
  CATCHALL_RETURN_IF_ERROR(
      KafkaTransactionalProducer::Create(options_.kafka, options_.transactional_id, &producer_));
  KafkaConsumerOptions consumer_options;
  consumer_options.kafka = options_.kafka;
  consumer_options.group_id = options_.group_id;
  consumer_options.topic = options_.events_topic;
  consumer_options.max_partition_fetch_kb = options_.max_partition_fetch_kb;
  return KafkaConsumer::Create(consumer_options, this, &consumer_);
}

Status KafkaAggregation::Start() {
  if (options_.transactional_id.empty()) {
    return Status::InvalidArgument("the aggregator needs a transactional id (kafka.instance_id)");
  }
  CATCHALL_RETURN_IF_ERROR(Connect());
  Result<int32_t> partitions = consumer_->PartitionCount();
  if (!partitions.ok()) {
    return Status(partitions.status().code(),
                  fmt::format("{} (run `catchall topics create`)", partitions.status().message()));
  }
  partitions_ = *partitions;
  std::string report;
  Status topics =
      CheckTopics(options_.kafka,
                  {{options_.status_topic, partitions_, 1, {{"cleanup.policy", "compact"}}},
                   {options_.dead_letter_topic, 0, 1, {}}},
                  &report);
  if (!topics.ok()) {
    return Status(topics.code(), fmt::format("{} (the changelog must have as many partitions as "
                                             "{}; run `catchall topics create`)",
                                             topics.message(), options_.events_topic));
  }
  aggregator_ =
      std::make_unique<Aggregator>(AggregatorOptions{partitions_, options_.id_window}, &counters_);
  started_ = last_commit_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void KafkaAggregation::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void KafkaAggregation::Run() {
  KafkaMessages messages;
  std::string reason;
  size_t outcomes[3] = {0, 0, 0};
  while (true) {
    bool stopping = stop_.load();
    if (!consumer_) {
      // Recovering from a fatal error: start over with fresh clients.
      Status s = Connect();
      if (!s.ok()) {
        SetHealth(s);
        spdlog::error("aggregate: cannot reconnect to Kafka: {}", s.ToString());
        consumer_.reset();
        producer_.reset();
        if (stopping) break;
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
    }
    if (stopping) {
      // librdkafka's destroy waits for every message handle to be released.
      messages.Clear();
      Status s = Commit();
      if (!s.ok()) spdlog::error("aggregate: final commit failed: {}", s.ToString());
      consumer_->Close();  // revokes partitions through OnRevoked
      consumer_.reset();
      producer_.reset();
      break;
    }
    messages.Clear();
    Status polled = consumer_->Poll(std::chrono::milliseconds(50), kPollMax, &messages);
    if (!polled.ok()) spdlog::warn("aggregate: {}", polled.ToString());
    bool failed = false;
    size_t stale = 0;
    for (const ConsumedRecord& r : messages.records()) {
      auto pos = position_.find(r.partition);
      if (pos == position_.end()) continue;  // not (or no longer) ours
      if (pos->second >= 0 && r.offset < pos->second) {
        ++stale;  // redelivered after a rebalance or seek: applied already
        continue;
      }
      pos->second = r.offset + 1;
      Result<ApplyOutcome> outcome = aggregator_->Apply(r, &reason);
      if (!outcome.ok()) {
        spdlog::error("aggregate: local state read failed: {}", outcome.status().ToString());
        failed = true;
        break;
      }
      if (*outcome == ApplyOutcome::kMalformed) {
        spdlog::warn("dead-lettering {}/{} offset {}: {}", options_.events_topic, r.partition,
                     r.offset, reason);
        dead_letters_.push_back(Aggregator::DeadLetter(options_.events_topic, r, reason));
      }
      ++outcomes[static_cast<int>(*outcome)];
    }
    if (stale > 0) spdlog::debug("aggregate: skipped {} records already applied", stale);
    if (probe_) {
      for (int k = 0; k < 3; ++k) {
        probe_->OnApplied(static_cast<ApplyOutcome>(k), outcomes[k]);
        outcomes[k] = 0;
      }
    }
    Status s;
    auto now = std::chrono::steady_clock::now();
    size_t pending = aggregator_->pending_records();
    if (failed) {
      s = Status::Internal("local state unreadable");
    } else if (must_reconnect_) {
      must_reconnect_ = false;
      s = Status::Aborted("positions could not be rewound");
    } else if (pending > 0 && (now - last_commit_ >= options_.commit_interval ||
                               pending >= options_.commit_max_records)) {
      s = Commit();
    }
    if (!s.ok()) {
      SetHealth(s);
      spdlog::error("aggregate: {}; dropping uncommitted work and rejoining the group",
                    s.ToString());
      aggregator_->Reset();
      dead_letters_.clear();
      committed_.clear();
      position_.clear();
      messages.Clear();
      // Without a producer, partitions revoked while closing are not
      // committed (their work was just dropped).
      producer_.reset();
      consumer_->Close();
      consumer_.reset();
      ready_.store(false);
      continue;
    }
    if (probe_ && now - last_gauges_ >= std::chrono::milliseconds(200)) {
      last_gauges_ = now;
      probe_->SetLag(consumer_->Lag(position_));
      // The workers of a process share one store, so one of them reports its
      // size: the other workers' gauges stay 0 and a sum over workers is right.
      if (options_.worker == 0) {
        probe_->SetDomains(counters_.ApproximateDomains(), counters_.ApproximateBytes());
      }
    }
    if (!assigned_once_ && now - started_ > kReadyWithoutAssignment) {
      assigned_once_ = true;
      ready_.store(true);
    }
  }
}

Status KafkaAggregation::Commit() {
  if (aggregator_->pending_records() == 0 && dead_letters_.empty()) {
    last_commit_ = std::chrono::steady_clock::now();
    return Status::Ok();
  }
  if (!producer_) return Status::Aborted("no producer");
  auto started = std::chrono::steady_clock::now();
  size_t records = aggregator_->pending_records();
  int64_t oldest = aggregator_->oldest_timestamp_ms();
  CounterDelta delta = aggregator_->TakeDelta();

  // New absolute counters: what the local state holds (as of the last
  // commit) plus the delta.
  std::vector<std::string> domains;
  domains.reserve(delta.counts.size());
  for (const auto& [domain, counts] : delta.counts) domains.push_back(domain);
  std::vector<DomainCounts> current;
  CATCHALL_RETURN_IF_ERROR(counters_.MultiGet(domains, &current));
  CounterDelta local;
  std::string value;
  CATCHALL_RETURN_IF_ERROR(producer_->Begin());
  for (size_t i = 0; i < domains.size(); ++i) {
    DomainCounts total = current[i];
    total += delta.counts[domains[i]];
    value.clear();
    AppendDomainStatusJson(domains[i], total, options_.catchall_threshold, &value);
    CATCHALL_RETURN_IF_ERROR(producer_->Produce(
        options_.status_topic, PartitionForKey(domains[i], partitions_), domains[i], value));
    local.absolute.emplace(domains[i], total);
  }
  // One checkpoint per advanced partition: a restore knows it has read
  // everything up to the committed offset only once it sees it.
  for (const auto& [p, offset] : delta.offsets) {
    value.clear();
    AppendChangelogCheckpointJson(p, offset, &value);
    CATCHALL_RETURN_IF_ERROR(
        producer_->Produce(options_.status_topic, p, kChangelogCheckpointKey, value));
  }
  for (const LogRecord& r : dead_letters_) {
    CATCHALL_RETURN_IF_ERROR(producer_->Produce(options_.dead_letter_topic, -1, r.key, r.value));
  }
  std::map<int32_t, int64_t> offsets(delta.offsets.begin(), delta.offsets.end());
  Status s = producer_->SendOffsets(consumer_.get(), options_.events_topic, offsets);
  if (s.ok()) {
    for (int attempt = 0; attempt < kCommitRetries; ++attempt) {
      s = producer_->Commit();
      if (s.ok() || (s.code() != Code::kUnavailable && s.code() != Code::kTimeout)) break;
    }
  }
  if (s.code() == Code::kAborted) {
    // The transaction is gone but the producer is fine: reprocess from the
    // last commit.
    spdlog::warn("aggregate: transaction aborted, reprocessing from the last commit: {}",
                 s.message());
    if (probe_) probe_->OnCommitFailed();
    Status a = producer_->Abort();
    if (!a.ok()) return a;
    dead_letters_.clear();
    for (const auto& [p, offset] : committed_) {
      CATCHALL_RETURN_IF_ERROR(consumer_->Seek(p, offset < 0 ? kOffsetBeginning : offset));
      position_[p] = offset < 0 ? -1 : offset;
    }
    last_commit_ = std::chrono::steady_clock::now();
    return Status::Ok();
  }
  CATCHALL_RETURN_IF_ERROR(s);

  // Committed in Kafka. Now the local cache, with its checkpoint.
  local.ids = std::move(delta.ids);
  local.offsets = delta.offsets;
  for (const auto& [p, last] : producer_->LastOffsets(options_.status_topic)) {
    local.changelog_offsets[p] = last + 1;
  }
  Status stored = counters_.Commit(local);
  if (!stored.ok()) {
    // The cache no longer matches Kafka; rejoining restores it.
    return Status::IoError(fmt::format("writing local state: {}", stored.message()));
  }
  for (const auto& [p, offset] : delta.offsets) committed_[p] = offset;
  dead_letters_.clear();
  SetHealth(Status::Ok());
  last_commit_ = std::chrono::steady_clock::now();
  if (probe_) {
    probe_->OnCommit(records, domains.size(), last_commit_ - started,
                     static_cast<double>(NowMs() - oldest) / 1000.0);
  }
  return Status::Ok();
}

Status KafkaAggregation::Restore(int32_t partition, int64_t committed) {
  int64_t target = committed < 0 ? 0 : committed;
  Result<int64_t> local_in = counters_.CommittedOffset(partition);
  Result<int64_t> local_changelog = counters_.ChangelogOffset(partition);
  if (!local_in.ok()) return local_in.status();
  if (!local_changelog.ok()) return local_changelog.status();
  if (*local_in == target && (*local_changelog >= 0 || target == 0)) {
    spdlog::info("aggregate: partition {} local state is current (offset {})", partition, target);
    return Status::Ok();
  }
  int64_t start = kOffsetBeginning;
  if (*local_in > target) {
    spdlog::warn(
        "aggregate: partition {} local state is ahead of the group's offset ({} > {}); the "
        "topics were recreated? restoring from the start of the changelog",
        partition, *local_in, target);
  } else if (*local_changelog >= 0) {
    start = *local_changelog;
  }
  spdlog::info("aggregate: restoring partition {} from {} offset {} (events offset {})", partition,
               options_.status_topic,
               start == kOffsetBeginning ? std::string("start") : std::to_string(start), target);
  if (probe_) probe_->SetRestoring(1);
  auto begun = std::chrono::steady_clock::now();
  std::unique_ptr<KafkaPartitionReader> reader;
  CATCHALL_RETURN_IF_ERROR(KafkaPartitionReader::Create(options_.kafka, options_.status_topic,
                                                        {{partition, start}}, &reader));
  KafkaMessages messages;
  CounterDelta batch;
  int64_t last = -1;
  size_t restored = 0;
  auto last_progress = std::chrono::steady_clock::now();
  // The restore is complete at the end of the partition AND once a
  // checkpoint shows the records up to the committed events offset. The end
  // alone is not enough: commit_transaction() returns before the broker has
  // written the commit markers, so right after a hand-over the last
  // transaction of the previous owner may not be readable yet.
  int64_t checkpoint = *local_in <= target && start != kOffsetBeginning ? *local_in : 0;
  bool at_end = false;
  while (!at_end || checkpoint < target) {
    messages.Clear();
    Status s = reader->Poll(std::chrono::milliseconds(200), kPollMax, &messages);
    if (!s.ok()) spdlog::warn("aggregate: restore of partition {}: {}", partition, s.ToString());
    if (!messages.records().empty()) at_end = false;
    for (const ConsumedRecord& r : messages.records()) {
      last = r.offset;
      ++restored;
      if (r.key == kChangelogCheckpointKey) {
        Result<int64_t> through = ParseChangelogCheckpointJson(r.value);
        if (through.ok()) checkpoint = std::max(checkpoint, *through);
        continue;
      }
      Result<DomainCounts> counts = ParseDomainStatusJson(r.value);
      if (!counts.ok()) {
        spdlog::warn("aggregate: skipping changelog record {}/{} offset {}: {}",
                     options_.status_topic, partition, r.offset, counts.status().message());
      } else {
        batch.absolute[std::string(r.key)] = *counts;
      }
    }
    for (int32_t p : messages.end_of_partition()) at_end |= (p == partition);
    if (!messages.records().empty()) last_progress = std::chrono::steady_clock::now();
    if (batch.absolute.size() >= kRestoreBatch) {
      CATCHALL_RETURN_IF_ERROR(counters_.Commit(batch));
      batch.Clear();
    }
    if (probe_) probe_->OnRestored(messages.records().size());
    if (stop_.load()) return Status::Aborted("stopping");
    if (std::chrono::steady_clock::now() - last_progress > std::chrono::seconds(60)) {
      return Status::Timeout(
          fmt::format("restoring partition {} made no progress for 60 s", partition));
    }
  }
  batch.offsets[partition] = target;
  batch.changelog_offsets[partition] = last >= 0 ? last + 1 : std::max<int64_t>(start, 0);
  CATCHALL_RETURN_IF_ERROR(counters_.Commit(batch));
  if (probe_) probe_->SetRestoring(0);
  spdlog::info("aggregate: partition {} restored: {} changelog records in {:.2f} s", partition,
               restored,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count());
  return Status::Ok();
}

std::map<int32_t, int64_t> KafkaAggregation::OnAssigned(const std::vector<int32_t>& partitions) {
  std::map<int32_t, int64_t> committed;
  // Without the committed offsets and restored state nothing may be
  // processed, so this waits (and retries) rather than guess.
  bool prepared = false;
  while (!stop_.load()) {
    committed.clear();
    Status s = consumer_->Committed(partitions, &committed);
    for (int32_t p : partitions) {
      if (!s.ok()) break;
      s = Restore(p, committed[p]);
    }
    if (s.ok()) {
      prepared = true;
      break;
    }
    SetHealth(s);
    spdlog::error("aggregate: preparing partitions failed, retrying: {}", s.ToString());
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (!prepared) {
    // Stopping before the state of these partitions was restored: they are
    // not taken on (their records are dropped), so nothing is ever computed
    // from a stale local state; the group hands them on after we leave.
    spdlog::info("aggregate: stopping; not taking on {} partition(s)", partitions.size());
    return committed;
  }
  for (int32_t p : partitions) {
    committed_[p] = committed[p];
    position_[p] = committed[p] < 0 ? -1 : committed[p];
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    owned_view_.insert(partitions.begin(), partitions.end());
    if (probe_) probe_->SetOwnedPartitions(owned_view_.size());
  }
  if (!partitions.empty()) {
    spdlog::info("aggregate: now owning {} more partition(s), {} in all", partitions.size(),
                 committed_.size());
  }
  assigned_once_ = true;
  ready_.store(true, std::memory_order_release);
  if (probe_) probe_->SetReady(true);
  return committed;
}

void KafkaAggregation::OnRevoked(const std::vector<int32_t>& partitions) {
  // Orderly hand-over: commit everything pending before letting go.
  if (producer_) {
    Status s = Commit();
    if (!s.ok()) {
      spdlog::error("aggregate: commit on revoke failed: {}", s.ToString());
      aggregator_->Reset();
      dead_letters_.clear();
    }
  }
  for (int32_t p : partitions) {
    committed_.erase(p);
    position_.erase(p);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (int32_t p : partitions) owned_view_.erase(p);
  if (probe_) probe_->SetOwnedPartitions(owned_view_.size());
  spdlog::info("aggregate: released {} partition(s)", partitions.size());
}

void KafkaAggregation::OnLost(const std::vector<int32_t>& partitions) {
  // Someone else may own them already: their work must not be committed.
  spdlog::warn("aggregate: lost {} partition(s); dropping uncommitted work", partitions.size());
  aggregator_->Reset();
  dead_letters_.clear();
  for (int32_t p : partitions) {
    committed_.erase(p);
    position_.erase(p);
  }
  for (const auto& [p, offset] : committed_) {
    position_[p] = offset < 0 ? -1 : offset;
    Status s = consumer_->Seek(p, offset < 0 ? kOffsetBeginning : offset);
    if (!s.ok()) {
      spdlog::error("aggregate: rewinding partition {}: {}", p, s.ToString());
      must_reconnect_ = true;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (int32_t p : partitions) owned_view_.erase(p);
  if (probe_) probe_->SetOwnedPartitions(owned_view_.size());
}

}  // namespace catchall
