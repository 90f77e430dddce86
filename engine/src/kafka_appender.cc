// KafkaAppender: ingest's idempotent producer.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/kafka.h"
#include "engine/this_thread.h"
#include "kafka_common.h"

namespace catchall {
namespace {

using Clock = std::chrono::steady_clock;

// Completion state of one Append call, shared by its records' delivery
// reports and the appender's deadline queue.
//
// The call is answered once: when its last record is settled, or at its
// deadline if that comes first. librdkafka times out a message that is
// already in a request only when the request ends (measured: 503s after
// 9-14 s with kafka.timeout_ms = 5 s when two of three brokers died), so the
// deadline queue answers for it; records settled later change nothing.
struct AppendState {
  // Starts at records + 1; the extra count belongs to the enqueueing thread
  // so that the answer cannot come before every record was handed over.
  std::atomic<int64_t> remaining{0};
  // The records' side (until `remaining` reaches 0) and the deadline queue's
  // (until the queue drops the call); the last one deletes the state.
  std::atomic<int> owners{2};
  std::atomic<bool> answered{false};
  std::atomic<int> error{RD_KAFKA_RESP_ERR_NO_ERROR};
  Clock::time_point deadline;
  // What a failure means for the call; set before the records are handed over.
  std::string failure = "Kafka did not acknowledge the records";
  LogAppender::Callback done;

  // True when this call answered (false: it had been answered already).
  // The callback is dropped once it ran: it holds the HTTP connection, which
  // must not wait for the records' late reports.
  bool Answer(const Status& s) {
    if (answered.exchange(true, std::memory_order_acq_rel)) return false;
    LogAppender::Callback callback = std::move(done);
    done = nullptr;
    callback(s);
    return true;
  }

  void Unref() {
    if (owners.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void Release() {
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      auto err = static_cast<rd_kafka_resp_err_t>(error.load());
      Answer(kafka_internal::FromError(err, failure));
      Unref();
    }
  }
};

class KafkaAppender : public LogAppender {
 public:
  ~KafkaAppender() override {
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      running_.store(false);
    }
    stop_cv_.notify_all();
    if (poller_.joinable()) poller_.join();
    if (watcher_.joinable()) watcher_.join();
    if (rk_) {
      rd_kafka_flush(rk_, 10000);
      // Anything left fails its callbacks now rather than never.
      rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_poll(rk_, 0);
      if (rkt_) rd_kafka_topic_destroy(rkt_);
      rd_kafka_destroy(rk_);
    }
    // No delivery report comes any more: whatever is unanswered now never
    // will be otherwise.
    std::lock_guard<std::mutex> lock(deadlines_mu_);
    for (AppendState* state : deadlines_) {
      state->Answer(Status::Unavailable("ingest stopped before Kafka acknowledged the records"));
      state->Unref();
    }
    deadlines_.clear();
  }

  Status Init(const KafkaOptions& options, std::string topic) {
    topic_ = std::move(topic);
    timeout_ = options.timeout;
    std::map<std::string, std::string> role = {
        {"partitioner", "murmur2_random"},
        {"message.timeout.ms", std::to_string(options.timeout.count())},
        {"queue.buffering.max.messages", "1000000"},
        {"queue.buffering.max.kbytes", "262144"},
    };
    // librdkafka doubles a broker's reconnection backoff at every attempt,
    // up to this, and resets it only after that long without one; where it
    // closes idle connections itself (connections.max.idle.ms) the attempts
    // come every few seconds, and a backoff of up to 10 s (its default)
    // would outlast the watcher's confirmation of an outage. Unless the
    // operator chose a backoff, 1 s.
    auto chose = [&](const std::string& key) {
      return options.properties.count(key) > 0 || options.producer_properties.count(key) > 0;
    };
    if (!chose("reconnect.backoff.ms") && !chose("reconnect.backoff.max.ms")) {
      role["reconnect.backoff.max.ms"] = "1000";
    }
    rd_kafka_conf_t* conf = nullptr;
    CATCHALL_RETURN_IF_ERROR(
        kafka_internal::MakeConf(options, kafka_internal::ClientKind::kProducer, role, &conf));
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaAppender::OnDelivery);
    rd_kafka_conf_set_error_cb(conf, &KafkaAppender::OnError);
    char err[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument(fmt::format("cannot create Kafka producer: {}", err));
    }
    // A broker is given kafka.timeout_ms to answer, as every request is,
    // and at least a reconnection's backoff (jitter: +50%) plus one
    // metadata request.
    confirm_down_ = timeout_;
    char backoff[32];
    size_t backoff_size = sizeof(backoff);
    if (rd_kafka_conf_get(rd_kafka_conf(rk_), "reconnect.backoff.max.ms", backoff, &backoff_size) ==
        RD_KAFKA_CONF_OK) {
      auto max_backoff = std::chrono::milliseconds(std::strtoll(backoff, nullptr, 10));
      confirm_down_ =
          std::max(confirm_down_, max_backoff * 3 / 2 + std::chrono::milliseconds(1100));
    }
    rkt_ = rd_kafka_topic_new(rk_, topic_.c_str(), nullptr);
    Result<int32_t> partitions =
        kafka_internal::PartitionCountOnceKnown(rk_, topic_, static_cast<int>(timeout_.count()));
    if (!partitions.ok()) return partitions.status();
    partitions_ = *partitions;
    partitions_seen_.store(partitions_);
    running_.store(true);
    poller_ = std::thread([this] {
      NameThisThread("ingest-poller");
      PollLoop();
    });
    watcher_ = std::thread([this] {
      NameThisThread("ingest-watcher");
      WatchLoop();
    });
    return Status::Ok();
  }

  Status Append(std::vector<LogRecord> records, Callback done) override {
    CATCHALL_RETURN_IF_ERROR(AcceptHealth());
    if (records.empty()) {
      done(Status::Ok());
      return Status::Ok();
    }
    auto* state = new AppendState();
    state->remaining.store(static_cast<int64_t>(records.size()) + 1);
    state->done = std::move(done);
    size_t enqueued = 0;
    for (const LogRecord& r : records) {
      int rc = rd_kafka_produce(rkt_, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                const_cast<char*>(r.value.data()), r.value.size(), r.key.data(),
                                r.key.size(), state);
      if (rc != 0) {
        rd_kafka_resp_err_t err = rd_kafka_last_error();
        if (enqueued == 0) {
          // Nothing handed over: refuse the whole call at once.
          delete state;
          return kafka_internal::FromError(err, "the Kafka producer refused the records");
        }
        // Some records are already on their way and may well be stored
        // (a batch spans partitions; Kafka has no atomic multi-record
        // write outside transactions). The call fails as a whole once they
        // are settled, and says so.
        state->failure = fmt::format(
            "the producer's queue filled after {} of {} records; those {} may be stored", enqueued,
            records.size(), enqueued);
        state->error.store(err);
        state->remaining.fetch_sub(static_cast<int64_t>(records.size() - enqueued));
        break;
      }
      ++enqueued;
    }
    {
      // The deadline is set here, under the lock, so that the queue is in
      // deadline order.
      std::lock_guard<std::mutex> lock(deadlines_mu_);
      state->deadline = Clock::now() + timeout_;
      deadlines_.push_back(state);
    }
    state->Release();
    return Status::Ok();
  }

  int32_t partition_count() const override { return partitions_; }
  rd_kafka_t* handle() const { return rk_; }

  // Not ready while appends are refused at once (AcceptHealth), and while
  // Kafka fails the writes it is given and stores none: with two of three
  // brokers down the last one answers metadata requests but stores nothing
  // (min.insync.replicas), and a load balancer should send the writes
  // elsewhere. That is: a write failed for want of brokers or replicas
  // within kafka.timeout_ms, and none succeeded in the last second. A
  // failure of one partition's writes while the others succeed leaves the
  // node ready (every ingest node shares the brokers: taking them all out
  // of rotation would refuse the healthy partitions' writes too). Appends
  // are not refused for it, and without traffic it ends after
  // kafka.timeout_ms, so that a node taken out of rotation gets traffic
  // again to find out.
  Status Health() const override {
    CATCHALL_RETURN_IF_ERROR(AcceptHealth());
    Clock::rep failed = last_failure_.load(std::memory_order_acquire);
    if (failed == 0) return Status::Ok();
    Clock::time_point now = Clock::now();
    auto failed_ago = now - Clock::time_point(Clock::duration(failed));
    auto written_ago = now - Clock::time_point(Clock::duration(last_success_.load()));
    if (failed_ago >= timeout_ || written_ago < kRecentSuccess) return Status::Ok();
    return Status::Unavailable(fmt::format(
        "Kafka failed the last write {} ms ago ({}) and stored none in the last {} ms; not ready "
        "until a write succeeds or kafka.timeout_ms ({} ms) passes without another failure",
        std::chrono::duration_cast<std::chrono::milliseconds>(failed_ago).count(),
        rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(last_failure_error_.load())),
        std::chrono::duration_cast<std::chrono::milliseconds>(kRecentSuccess).count(),
        timeout_.count()));
  }

  Status Flush(std::chrono::milliseconds timeout) override {
    return kafka_internal::FromError(rd_kafka_flush(rk_, static_cast<int>(timeout.count())),
                                     "flushing the Kafka producer");
  }

 private:
  // Appends are refused at once while no broker is reachable or the events
  // topic is not the one this node started with.
  Status AcceptHealth() const {
    // librdkafka keeps a fatal error (an atomic read while there is none):
    // the idempotent producer refuses every write from then on, and the
    // node said ready while every event was refused.
    char fatal[512];
    if (rd_kafka_fatal_error(rk_, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Unavailable(fmt::format(
          "the Kafka producer failed for good ({}) and cannot write again; restart this node",
          fatal));
    }
    if (brokers_down_.load(std::memory_order_acquire)) {
      return Status::Unavailable("no Kafka broker is reachable");
    }
    return TopicHealth(partitions_seen_.load(std::memory_order_acquire));
  }

  // A write failed for want of brokers or replicas (not for its content):
  // for Health(). On the poller thread.
  void OnWriteFailed(rd_kafka_resp_err_t err) {
    last_failure_error_.store(err);
    last_failure_.store(Clock::now().time_since_epoch().count(), std::memory_order_release);
  }

  // Unavailable, saying why, unless the events topic has (`seen`) the
  // partitions it had when this node started.
  Status TopicHealth(int32_t seen) const {
    if (seen == partitions_) return Status::Ok();
    if (seen == 0) {
      return Status::Unavailable(fmt::format(
          "the events topic {} does not exist (deleted while this node ran?); events are refused "
          "until it exists again with {} partitions (recreating it under running aggregators "
          "loses events: docs/operations.md, \"Rebuilding all state\")",
          topic_, partitions_));
    }
    // A domain's partition is murmur2(domain) % count: with another count
    // its events would land where the aggregators dead-letter them.
    return Status::Unavailable(fmt::format(
        "the events topic {} has {} partitions now, {} when this node started; events are "
        "refused, since a domain's partition would change (docs/operations.md, \"A partition is "
        "added\")",
        topic_, seen, partitions_));
  }

  static void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaAppender*>(opaque);
    auto* state = static_cast<AppendState*>(m->_private);
    if (m->err) {
      int expected = RD_KAFKA_RESP_ERR_NO_ERROR;
      state->error.compare_exchange_strong(expected, m->err);
      Code code = kafka_internal::FromError(m->err, "").code();
      if (code == Code::kUnavailable || code == Code::kTimeout) self->OnWriteFailed(m->err);
    } else {
      // Timed by the poller once per round (AnswerOverdue), not per record.
      self->written_.store(true, std::memory_order_relaxed);
      if (self->brokers_down_.load(std::memory_order_relaxed)) self->brokers_down_.store(false);
    }
    state->Release();
  }

  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<KafkaAppender*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
      // librdkafka says so whenever it holds no connection, also when it
      // closed them itself (connections.max.idle.ms: every PUT answered 503
      // by a healthy broker, measured) or while it reconnects. The watcher
      // asks a broker before writes are refused.
      {
        std::lock_guard<std::mutex> lock(self->stop_mu_);
        self->down_reason_ = reason;
        self->down_reported_ = true;
      }
      self->stop_cv_.notify_all();
    } else if (rd_kafka_fatal_error(rk, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // AcceptHealth reads it from librdkafka from now on.
      spdlog::critical("ingest: fatal Kafka producer error: {}; restart this node", reason);
    } else {
      spdlog::warn("ingest: Kafka: {}", reason);
    }
  }

  // Serves delivery reports (and the error callback) as they come, and
  // answers the calls whose deadline passed: within 50 ms of it when idle.
  void PollLoop() {
    while (running_.load()) {
      rd_kafka_poll(rk_, 50);
      AnswerOverdue();
    }
  }

  // Drops answered calls from the front of the deadline queue and answers
  // the overdue ones. Deadlines are in the queue's order (one timeout for
  // every call), so the first call that is neither ends the sweep. The
  // answers run outside the lock, which every Append takes.
  void AnswerOverdue() {
    Clock::time_point now = Clock::now();
    if (written_.exchange(false, std::memory_order_relaxed)) {
      last_success_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    }
    std::vector<AppendState*> dropped;
    {
      std::lock_guard<std::mutex> lock(deadlines_mu_);
      while (!deadlines_.empty()) {
        AppendState* state = deadlines_.front();
        if (!state->answered.load(std::memory_order_acquire) && now < state->deadline) break;
        dropped.push_back(state);
        deadlines_.pop_front();
      }
    }
    size_t answered = 0;
    for (AppendState* state : dropped) {
      if (!state->answered.load(std::memory_order_acquire)) {
        if (state->Answer(Status::Unavailable(fmt::format(
                "Kafka did not acknowledge the records within kafka.timeout_ms ({} ms); they may "
                "still be stored, so retry with the same Idempotency-Key or item ids",
                timeout_.count())))) {
          OnWriteFailed(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
          ++answered;
        }
      }
      state->Unref();
    }
    overdue_since_log_ += answered;
    if (overdue_since_log_ > 0 && now - overdue_logged_at_ >= std::chrono::seconds(1)) {
      spdlog::warn(
          "ingest: {} requests got no answer from Kafka within kafka.timeout_ms ({} ms) and were "
          "answered 503",
          overdue_since_log_, timeout_.count());
      overdue_since_log_ = 0;
      overdue_logged_at_ = now;
    }
  }

  // Probes the events topic: while every broker is down or the topic is
  // wrong every 0.5 s, so that ingest accepts again as soon as it can;
  // otherwise every 5 s, so that /readyz notices a deleted or resized
  // events topic (librdkafka refreshes its metadata only every 5 minutes).
  // On its own thread: a probe may wait up to a second for the broker,
  // and delivery reports (the PUTs' answers) must not wait with it.
  // Also at once when librdkafka reports every broker down: writes are
  // refused only if a broker does not answer then either.
  void WatchLoop() {
    std::unique_lock<std::mutex> lock(stop_mu_);
    while (running_.load()) {
      auto every = AcceptHealth().ok() && unconfirmed_count_ < 0 ? std::chrono::milliseconds(5000)
                                                                 : std::chrono::milliseconds(500);
      stop_cv_.wait_for(lock, every, [this] { return !running_.load() || down_reported_; });
      if (!running_.load()) break;
      bool confirming = std::exchange(down_reported_, false);
      std::string reason = confirming ? down_reason_ : std::string();
      lock.unlock();
      if (!confirming) {
        Probe(std::chrono::milliseconds(1000));
      } else {
        bool reachable = ConfirmReachable();
        if (!running_.load()) break;
        if (reachable) {
          // Once at info: it recurs every few seconds where idle connections
          // are closed.
          spdlog::log(false_alarms_++ == 0 ? spdlog::level::info : spdlog::level::debug,
                      "ingest: librdkafka reported {}, but a broker answered (it says so also "
                      "when it closed idle connections itself); not an outage",
                      reason);
        } else if (!brokers_down_.exchange(true)) {
          spdlog::error(
              "ingest: no Kafka broker reachable ({}; none answered a metadata request within {} "
              "ms); answering 503 until one is",
              reason, confirm_down_.count());
        }
      }
      lock.lock();
    }
  }

  // Metadata requests until one is answered (true) or confirm_down_ passed
  // or the appender stops (false).
  // Any answer will do: a partition without a leader is the writes' failure
  // to report (Health()), not an unreachable cluster.
  // A reconnection after librdkafka closed idle connections may wait out
  // its backoff first: one request of 1 s went unanswered about every
  // other time on a healthy broker (measured with connections.max.idle.ms
  // at 1.5 s).
  bool ConfirmReachable() {
    auto deadline = Clock::now() + confirm_down_;
    while (running_.load()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      if (Probe(std::min(left, std::chrono::milliseconds(1000)))) return true;
      // A refused connection fails at once: do not spin on it.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // One metadata request for the events topic; false if no broker answered.
  // No answer changes nothing by itself; an answer records the topic's
  // partition count (0: it does not exist), and ends an outage once every
  // partition has a leader.
  bool Probe(std::chrono::milliseconds timeout) {
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk_, 0, rkt_, &md, static_cast<int>(timeout.count())) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      return false;
    }
    int32_t count = -1;  // an error other than "unknown topic": not known
    bool has_leaders = false;
    if (md->topic_cnt == 1) {
      const rd_kafka_metadata_topic_t& t = md->topics[0];
      if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        count = 0;
      } else if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        count = t.partition_cnt;
        has_leaders = count > 0;
        for (int i = 0; has_leaders && i < count; ++i) has_leaders = t.partitions[i].leader >= 0;
      }
    }
    rd_kafka_metadata_destroy(md);
    // A broker may not know a topic for a moment (one just created, a
    // broker just restarted): a new count counts once a second answer,
    // 0.5 s later, agrees.
    if (count >= 0 && count != partitions_seen_.load()) {
      if (count != unconfirmed_count_) {
        unconfirmed_count_ = count;
        return true;
      }
    }
    unconfirmed_count_ = -1;
    if (count >= 0 && partitions_seen_.exchange(count) != count) {
      if (count == partitions_) {
        spdlog::info("ingest: the events topic {} is back with its {} partitions", topic_, count);
      } else {
        spdlog::error("ingest: {}", TopicHealth(count).message());
      }
    }
    // An answer without the topic also means the brokers are back: the
    // topic's absence is then the reason to give.
    if ((has_leaders || count == 0) && brokers_down_.exchange(false)) {
      spdlog::info("ingest: Kafka is reachable again");
    }
    return true;
  }

  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* rkt_ = nullptr;
  std::string topic_;
  std::chrono::milliseconds timeout_{5000};
  int32_t partitions_ = 0;
  // The events topic's partition count in the last metadata answer (0: the
  // topic does not exist); partitions_ until then.
  std::atomic<int32_t> partitions_seen_{0};
  // The watcher's: a count one answer gave that differs from
  // partitions_seen_, until a second answer confirms it (-1: none).
  int32_t unconfirmed_count_ = -1;
  std::atomic<bool> brokers_down_{false};
  // When (steady clock ticks; 0: never) Kafka last failed a write for want
  // of brokers or replicas, and why; when it last stored one.
  static constexpr std::chrono::seconds kRecentSuccess{1};
  std::atomic<Clock::rep> last_failure_{0};
  std::atomic<int> last_failure_error_{RD_KAFKA_RESP_ERR_NO_ERROR};
  std::atomic<Clock::rep> last_success_{0};
  std::atomic<bool> written_{false};  // a record was stored since the poller's last round
  // Every accepted call not yet dropped by AnswerOverdue(), oldest first.
  std::mutex deadlines_mu_;
  std::deque<AppendState*> deadlines_;
  // The poller's: calls answered at their deadline since the last warning.
  size_t overdue_since_log_ = 0;
  Clock::time_point overdue_logged_at_{};
  std::atomic<bool> running_{false};
  std::mutex stop_mu_;  // with stop_cv_, wakes the watcher (shutdown, down_reported_)
  std::condition_variable stop_cv_;
  // Under stop_mu_: librdkafka reported every broker down, and why; the
  // watcher confirms it, trying for up to confirm_down_.
  std::chrono::milliseconds confirm_down_{5000};
  bool down_reported_ = false;
  std::string down_reason_;
  uint64_t false_alarms_ = 0;  // the watcher's
  std::thread poller_;
  std::thread watcher_;
};

}  // namespace

namespace kafka_internal {
rd_kafka_t* AppenderHandle(LogAppender* appender) {
  return static_cast<KafkaAppender*>(appender)->handle();
}
}  // namespace kafka_internal

Status CreateKafkaAppender(const KafkaOptions& options, std::string topic, Metrics* /*metrics*/,
                           std::unique_ptr<LogAppender>* appender) {
  auto a = std::make_unique<KafkaAppender>();
  CATCHALL_RETURN_IF_ERROR(a->Init(options, std::move(topic)));
  *appender = std::move(a);
  return Status::Ok();
}

}  // namespace catchall
