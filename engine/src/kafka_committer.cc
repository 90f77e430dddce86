// KafkaCommitter (a LogCommitter: one Kafka transaction per commit) and
// KafkaGroupLog, which makes a group member's consumer and committer.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>

#include "engine/kafka.h"
#include "kafka_common.h"

namespace catchall {
namespace {

// Retriable commit errors (a coordinator moving, a timeout) are retried
// this often before the outcome counts as unknown.
constexpr int kCommitRetries = 5;

// A transactional producer (exactly-once v2: the consumer's group metadata
// fences zombies). Single-threaded, like the consumer it is bound to.
class KafkaCommitter final : public LogCommitter {
 public:
  ~KafkaCommitter() override {
    for (auto& [name, rkt] : topics_) rd_kafka_topic_destroy(rkt);
    if (rk_) rd_kafka_destroy(rk_);
  }

  // `consumer` is the librdkafka handle of the member's consumer, which
  // must outlive this committer.
  Status Init(const KafkaOptions& options, const std::string& transactional_id,
              std::string input_topic, rd_kafka_t* consumer,
              std::shared_ptr<kafka_internal::BrokerReachability> reachability) {
    reachability_ = std::move(reachability);
    timeout_ms_ = static_cast<int>(options.timeout.count());
    input_topic_ = std::move(input_topic);
    consumer_ = consumer;
    std::map<std::string, std::string> role = {
        {"transactional.id", transactional_id},   {"transaction.timeout.ms", "60000"},
        {"message.timeout.ms", "55000"},          {"queue.buffering.max.messages", "1000000"},
        {"queue.buffering.max.kbytes", "524288"},
    };
    rd_kafka_conf_t* conf = nullptr;
    CATCHALL_RETURN_IF_ERROR(
        kafka_internal::MakeConf(options, kafka_internal::ClientKind::kProducer, role, &conf));
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaCommitter::OnDelivery);
    // A commit blocks while no broker answers; this callback, run when the
    // producer serves its queue (during the commit), says so meanwhile (the
    // consumer's polls say when one answers again).
    rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t*, int err, const char* reason, void* opaque) {
      static_cast<KafkaCommitter*>(opaque)->reachability_->OnError(err, reason);
    });
    char err[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument(fmt::format("cannot create Kafka producer: {}", err));
    }
    // Fences any earlier producer with the same transactional id and aborts
    // its open transaction.
    return kafka_internal::FromTxnError(rd_kafka_init_transactions(rk_, 4 * timeout_ms_),
                                        "initializing transactions");
  }

  bool state_in_transaction() const override { return false; }

  Status Commit(LogTransaction* txn) override {
    if (txn->state) return Status::InvalidArgument("Kafka transactions hold no local state");
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.clear();
    }
    CATCHALL_RETURN_IF_ERROR(
        kafka_internal::FromTxnError(rd_kafka_begin_transaction(rk_), "beginning a transaction"));
    Status s;
    for (const OutputRecord& r : txn->records) {
      s = Produce(r);
      if (!s.ok()) break;
    }
    if (s.ok()) s = SendOffsets(txn->offsets);
    if (!s.ok()) return Abort(s);  // nothing was committed yet
    for (int attempt = 0; attempt < kCommitRetries; ++attempt) {
      s = kafka_internal::FromTxnError(rd_kafka_commit_transaction(rk_, 4 * timeout_ms_),
                                       "committing a transaction");
      if (s.code() != Code::kUnavailable) break;
    }
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      // Topic() keeps one handle per name, so each (name, partition) comes
      // from one entry: the latest end replaces the last (also when a topic
      // was recreated and its offsets started over).
      for (const auto& [where, high] : pending_) {
        committed_[{rd_kafka_topic_name(where.first), where.second}] = high + 1;
      }
      return s;
    }
    if (s.code() == Code::kAborted) return Abort(s);
    // Fatal (fenced), or retries exhausted: the outcome is the broker's to
    // tell; the caller reconnects and reads the committed offsets back.
    return s;
  }

  int64_t CommittedEnd(std::string_view topic, int32_t partition) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = committed_.find({std::string(topic), partition});
    return it == committed_.end() ? -1 : it->second;
  }

 private:
  // Runs once per record, on the thread that polls (this one, during
  // commit): keyed by the topic handle, so that it allocates nothing.
  static void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaCommitter*>(opaque);
    if (m->err) return;  // the commit reports the failure
    std::lock_guard<std::mutex> lock(self->mu_);
    int64_t& high = self->pending_[{m->rkt, m->partition}];
    high = std::max(high, static_cast<int64_t>(m->offset));
  }

  // Aborts the open transaction after `why`; kAborted when that worked.
  Status Abort(const Status& why) {
    CATCHALL_RETURN_IF_ERROR(kafka_internal::FromTxnError(
        rd_kafka_abort_transaction(rk_, 4 * timeout_ms_), "aborting a transaction"));
    return Status::Aborted(why.message());
  }

  rd_kafka_topic_t* Topic(const std::string& name) {
    auto it = topics_.find(name);
    if (it != topics_.end()) return it->second;
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
    topics_.emplace(name, rkt);
    return rkt;
  }

  Status Produce(const OutputRecord& r) {
    rd_kafka_topic_t* rkt = Topic(r.topic);
    int32_t partition = r.partition >= 0 ? r.partition : RD_KAFKA_PARTITION_UA;
    while (true) {
      if (rd_kafka_produce(rkt, partition, RD_KAFKA_MSG_F_COPY,
                           const_cast<char*>(r.value.data()),  // NOLINT: copied, not changed
                           r.value.size(), r.key.data(), r.key.size(), nullptr) == 0) {
        return Status::Ok();
      }
      rd_kafka_resp_err_t err = rd_kafka_last_error();
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk_, 10);  // backpressure: let deliveries drain
        continue;
      }
      return kafka_internal::FromError(err, fmt::format("producing to {}", r.topic));
    }
  }

  Status SendOffsets(const std::map<int32_t, int64_t>& next_offsets) {
    if (next_offsets.empty()) return Status::Ok();
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size()));
    for (const auto& [p, offset] : next_offsets) {
      rd_kafka_topic_partition_list_add(list, input_topic_.c_str(), p)->offset = offset;
    }
    rd_kafka_consumer_group_metadata_t* group = rd_kafka_consumer_group_metadata(consumer_);
    rd_kafka_error_t* e = rd_kafka_send_offsets_to_transaction(rk_, list, group, 4 * timeout_ms_);
    rd_kafka_consumer_group_metadata_destroy(group);
    rd_kafka_topic_partition_list_destroy(list);
    return kafka_internal::FromTxnError(e, "adding consumed offsets to the transaction");
  }

  rd_kafka_t* rk_ = nullptr;
  rd_kafka_t* consumer_ = nullptr;
  std::string input_topic_;
  int timeout_ms_ = 5000;
  std::map<std::string, rd_kafka_topic_t*> topics_;
  mutable std::mutex mu_;
  std::shared_ptr<kafka_internal::BrokerReachability> reachability_;
  // (topic, partition) -> highest delivered offset in the open transaction.
  std::map<std::pair<const rd_kafka_topic_t*, int32_t>, int64_t> pending_;  // GUARDED_BY(mu_)
  // (topic, partition) -> offset after the last committed record.
  std::map<std::pair<std::string, int32_t>, int64_t> committed_;  // GUARDED_BY(mu_)
};

class KafkaGroupLog final : public GroupLog {
 public:
  explicit KafkaGroupLog(KafkaGroupOptions options) : options_(std::move(options)) {}

  Status Join(RebalanceListener* listener, std::unique_ptr<LogConsumer>* consumer,
              std::unique_ptr<LogCommitter>* committer) override {
    // The consumer first, for the committer's group metadata; then the
    // producer, whose initialization fences a previous incarnation of this
    // member and aborts its open transaction. No partition is assigned
    // before the first poll, so nothing is read before that.
    rd_kafka_t* handle = nullptr;
    std::unique_ptr<LogConsumer> c;
    CATCHALL_RETURN_IF_ERROR(
        kafka_internal::CreateGroupConsumer(options_, listener, reachability_, &c, &handle));
    auto k = std::make_unique<KafkaCommitter>();
    CATCHALL_RETURN_IF_ERROR(
        k->Init(options_.kafka, options_.transactional_id, options_.topic, handle, reachability_));
    *consumer = std::move(c);
    *committer = std::move(k);
    return Status::Ok();
  }

  Status OpenReader(std::string_view topic, std::unique_ptr<LogReader>* reader) override {
    return CreateKafkaReader(options_.kafka, std::string(topic), reader);
  }

  Status Health() const override { return reachability_->Health(); }

 private:
  KafkaGroupOptions options_;
  // The consumer's and committer's of each Join (kept across them).
  std::shared_ptr<kafka_internal::BrokerReachability> reachability_ =
      std::make_shared<kafka_internal::BrokerReachability>("aggregate");
};

}  // namespace

Status CreateKafkaGroupLog(const KafkaGroupOptions& options, std::unique_ptr<GroupLog>* out) {
  if (options.transactional_id.empty()) {
    return Status::InvalidArgument("a group member needs a transactional id (kafka.instance_id)");
  }
  *out = std::make_unique<KafkaGroupLog>(options);
  return Status::Ok();
}

}  // namespace catchall
