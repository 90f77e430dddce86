// AwaitBroker: the first connection of a client, with TLS and SASL failures
// told apart from an unreachable broker.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "kafka_common.h"

namespace catchall {
namespace kafka_internal {

Status AwaitBroker(rd_kafka_t* rk, const std::string& brokers, std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  // The client has no error callback, so librdkafka queues the failures of
  // its connection attempts on the main queue as error events.
  rd_kafka_queue_t* events = rd_kafka_queue_get_main(rk);
  std::string last_error;
  Status result;
  while (true) {
    // Short metadata requests (no topics), so that a failure queued by the
    // first attempt is seen within a slice, not after the whole timeout.
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    int slice_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 1, 250));
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, nullptr, &md, slice_ms);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(md);
      break;
    }
    if (last_error.empty()) last_error = rd_kafka_err2str(err);
    while (rd_kafka_event_t* ev = rd_kafka_queue_poll(events, 0)) {
      if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_ERROR) {
        rd_kafka_resp_err_t code = rd_kafka_event_error(ev);
        std::string reason = rd_kafka_event_error_string(ev);
        // Wrong credentials or certificates do not heal by retrying: fail
        // now, naming what to fix (librdkafka never echoes a password).
        if (code == RD_KAFKA_RESP_ERR__AUTHENTICATION && result.ok()) {
          result = Status::InvalidArgument(
              fmt::format("Kafka authentication failed at {}: {}; check the SASL settings "
                          "(kafka.client.sasl.mechanisms, sasl.username, sasl.password)",
                          brokers, reason));
        } else if (code == RD_KAFKA_RESP_ERR__SSL && result.ok()) {
          result = Status::InvalidArgument(
              fmt::format("TLS with Kafka at {} failed: {}; check the TLS settings "
                          "(kafka.client.ssl.ca.location, ssl.certificate.location, "
                          "ssl.key.location)",
                          brokers, reason));
        } else if (code != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
          last_error = reason;
        }
      }
      rd_kafka_event_destroy(ev);
    }
    if (!result.ok()) break;
    if (Clock::now() >= deadline) {
      result =
          Status::Unavailable(fmt::format("cannot reach Kafka at {}: {}", brokers, last_error));
      break;
    }
  }
  rd_kafka_queue_destroy(events);
  return result;
}

}  // namespace kafka_internal
}  // namespace catchall
