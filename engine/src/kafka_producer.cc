// KafkaTransactionalProducer.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "engine/kafka.h"
#include "kafka_common.h"

namespace catchall {

struct KafkaTransactionalProducer::Impl {
  rd_kafka_t* rk = nullptr;
  int timeout_ms = 5000;
  std::mutex mu;
  // topic -> partition -> highest delivered offset in the open transaction.
  std::map<std::string, std::map<int32_t, int64_t>> pending;    // GUARDED_BY(mu)
  std::map<std::string, std::map<int32_t, int64_t>> committed;  // GUARDED_BY(mu)

  std::map<std::string, rd_kafka_topic_t*> topics;

  ~Impl() {
    for (auto& [name, rkt] : topics) rd_kafka_topic_destroy(rkt);
    if (rk) rd_kafka_destroy(rk);
  }

  rd_kafka_topic_t* Topic(std::string_view name) {
    auto it = topics.find(std::string(name));
    if (it != topics.end()) return it->second;
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, std::string(name).c_str(), nullptr);
    topics.emplace(std::string(name), rkt);
    return rkt;
  }

  static void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    if (m->err) return;  // the commit reports the failure
    std::lock_guard<std::mutex> lock(self->mu);
    int64_t& high = self->pending[rd_kafka_topic_name(m->rkt)][m->partition];
    high = std::max(high, static_cast<int64_t>(m->offset));
  }
};

KafkaTransactionalProducer::KafkaTransactionalProducer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
KafkaTransactionalProducer::~KafkaTransactionalProducer() = default;

Status KafkaTransactionalProducer::Create(const KafkaOptions& options, std::string transactional_id,
                                          std::unique_ptr<KafkaTransactionalProducer>* producer) {
  auto impl = std::make_unique<Impl>();
  impl->timeout_ms = static_cast<int>(options.timeout.count());
  std::map<std::string, std::string> role = {
      {"transactional.id", transactional_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "5"},
      {"batch.num.messages", "10000"},
      {"batch.size", "1048576"},
      {"compression.type", "lz4"},
      {"transaction.timeout.ms", "60000"},
      {"message.timeout.ms", "55000"},
      {"queue.buffering.max.messages", "1000000"},
      {"queue.buffering.max.kbytes", "524288"},
  };
  rd_kafka_conf_t* conf = nullptr;
  CATCHALL_RETURN_IF_ERROR(kafka_internal::MakeConf(options, role, &conf));
  rd_kafka_conf_set_opaque(conf, impl.get());
  rd_kafka_conf_set_dr_msg_cb(conf, &Impl::OnDelivery);
  char err[512];
  impl->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!impl->rk) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(fmt::format("cannot create Kafka producer: {}", err));
  }
  // Fences any earlier producer with the same transactional id and aborts
  // its open transaction.
  CATCHALL_RETURN_IF_ERROR(kafka_internal::FromTxnError(
      rd_kafka_init_transactions(impl->rk, 4 * impl->timeout_ms), "initializing transactions"));
  producer->reset(new KafkaTransactionalProducer(std::move(impl)));
  return Status::Ok();
}

Status KafkaTransactionalProducer::Begin() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->pending.clear();
  }
  return kafka_internal::FromTxnError(rd_kafka_begin_transaction(impl_->rk),
                                      "beginning a transaction");
}

Status KafkaTransactionalProducer::Produce(std::string_view topic, int32_t partition,
                                           std::string_view key, std::string_view value) {
  rd_kafka_topic_t* rkt = impl_->Topic(topic);
  while (true) {
    if (rd_kafka_produce(rkt, partition, RD_KAFKA_MSG_F_COPY, const_cast<char*>(value.data()),
                         value.size(), key.data(), key.size(), nullptr) == 0) {
      return Status::Ok();
    }
    rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(impl_->rk, 10);  // backpressure: let deliveries drain
      continue;
    }
    return kafka_internal::FromError(err, fmt::format("producing to {}", topic));
  }
}

Status KafkaTransactionalProducer::SendOffsets(KafkaConsumer* consumer, const std::string& topic,
                                               const std::map<int32_t, int64_t>& next_offsets) {
  if (next_offsets.empty()) return Status::Ok();
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size()));
  for (const auto& [p, offset] : next_offsets) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = offset;
  }
  rd_kafka_consumer_group_metadata_t* group =
      rd_kafka_consumer_group_metadata(static_cast<rd_kafka_t*>(consumer->native_handle()));
  rd_kafka_error_t* e =
      rd_kafka_send_offsets_to_transaction(impl_->rk, list, group, 4 * impl_->timeout_ms);
  rd_kafka_consumer_group_metadata_destroy(group);
  rd_kafka_topic_partition_list_destroy(list);
  return kafka_internal::FromTxnError(e, "adding consumed offsets to the transaction");
}

Status KafkaTransactionalProducer::Commit() {
  Status s = kafka_internal::FromTxnError(
      rd_kafka_commit_transaction(impl_->rk, 4 * impl_->timeout_ms), "committing a transaction");
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->committed = std::move(impl_->pending);
    impl_->pending.clear();
  }
  return s;
}

Status KafkaTransactionalProducer::Abort() {
  return kafka_internal::FromTxnError(rd_kafka_abort_transaction(impl_->rk, 4 * impl_->timeout_ms),
                                      "aborting a transaction");
}

std::map<int32_t, int64_t> KafkaTransactionalProducer::LastOffsets(const std::string& topic) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->committed.find(topic);
  return it == impl_->committed.end() ? std::map<int32_t, int64_t>() : it->second;
}

}  // namespace catchall
