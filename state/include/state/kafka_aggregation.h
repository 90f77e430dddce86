// KafkaAggregation: the aggregator of cluster mode (`catchall aggregate`).
//
// A member of the aggregators' consumer group on the events topic. For the
// partitions it owns it folds events into deltas and, every commit interval,
// commits in ONE Kafka transaction (exactly-once v2, like Kafka Streams):
//   - the absolute counters of every changed domain to the compacted
//     changelog (catchall.domain-status), same partition as the input,
//   - malformed records to the dead-letter topic,
//   - the consumed offsets (send_offsets_to_transaction).
// Only after the transaction commits does it write the same counters and
// offsets to its local store, which is therefore a checkpointed cache of the
// changelog: when it gets a partition whose local checkpoint is behind the
// group's committed offset (crash after commit, partition moved here), it
// restores the partition from the changelog before processing it.
// A crash, restart or rebalance thus never loses or double-counts an event.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/kafka.h"
#include "engine/kv_store.h"
#include "engine/status.h"
#include "state/aggregator.h"
#include "state/counter_store.h"

namespace catchall {

class Metrics;
class AggregatorProbe;

struct KafkaAggregationOptions {
  KafkaOptions kafka;
  std::string events_topic{kEventsTopic};
  std::string status_topic{kStatusTopic};
  std::string dead_letter_topic{kDeadLetterTopic};
  std::string group_id = "catchall-aggregators";
  std::string transactional_id;  // stable per aggregator instance
  std::chrono::milliseconds commit_interval{100};
  size_t commit_max_records = 500000;
  std::chrono::seconds id_window{std::chrono::hours(24)};
  uint64_t catchall_threshold = 1000;
  // Index of this worker when a process runs several (metrics label).
  int worker = 0;
  // See KafkaConsumerOptions.
  int max_partition_fetch_kb = 10240;
};

class KafkaAggregation : public RebalanceListener {
 public:
  // `store` must have CounterStore's columns and outlive this.
  KafkaAggregation(KafkaAggregationOptions options, KvStore* store, Metrics* metrics);
  ~KafkaAggregation() override;

  // Checks the topics, joins the group and starts consuming.
  Status Start();
  // Commits what is pending, leaves the group, stops.
  void Stop();
  // Asks the worker to stop without waiting (Stop() then joins); lets a
  // process stop all its workers at once instead of handing partitions from
  // one to the next.
  void RequestStop() { stop_.store(true); }

  // True once the member has its first assignment and every owned partition
  // is restored.
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  Status Health() const;
  // Partitions owned now (for tests and logs).
  std::vector<int32_t> owned() const;

  // RebalanceListener (called on the consuming thread).
  std::map<int32_t, int64_t> OnAssigned(const std::vector<int32_t>& partitions) override;
  void OnRevoked(const std::vector<int32_t>& partitions) override;
  void OnLost(const std::vector<int32_t>& partitions) override;

 private:
  void Run();
  // Creates producer and consumer (again, after a fatal error).
  Status Connect();
  // The exactly-once step. Non-OK means the caller must reconnect.
  Status Commit();
  // Brings the local state of `partition` to the group's committed offset.
  Status Restore(int32_t partition, int64_t committed);
  void SetHealth(const Status& s);

  KafkaAggregationOptions options_;
  KvStore* store_;
  CounterStore counters_;
  std::unique_ptr<AggregatorProbe> probe_;
  std::unique_ptr<Aggregator> aggregator_;
  std::unique_ptr<KafkaTransactionalProducer> producer_;
  std::unique_ptr<KafkaConsumer> consumer_;
  int32_t partitions_ = 0;
  std::map<int32_t, int64_t> committed_;  // owned partition -> next offset committed
  // Owned partition -> next offset expected from the consumer (-1: any).
  // A record below it was already applied and is not applied again.
  std::map<int32_t, int64_t> position_;
  std::vector<LogRecord> dead_letters_;
  std::chrono::steady_clock::time_point last_commit_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_gauges_;
  bool assigned_once_ = false;
  // Set when positions could not be rewound: only a fresh consumer is safe.
  bool must_reconnect_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  mutable std::mutex mu_;
  Status health_;                 // GUARDED_BY(mu_)
  std::set<int32_t> owned_view_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace catchall
