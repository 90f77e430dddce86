// Ingest's Kafka producer (CreateKafkaAppender) against librdkafka's own
// in-process mock cluster (test.mock.num.brokers): the real client, no
// broker. What needs a real broker (outages, replicas, topics changing)
// is in tests/kafka/.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/kafka.h"
#include "kafka_common.h"

namespace catchall {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<LogAppender> MockAppender() {
  KafkaOptions options;
  options.brokers = "unused:9092";  // the mock cluster replaces it
  options.timeout = 3s;
  options.properties["test.mock.num.brokers"] = "1";
  std::unique_ptr<LogAppender> appender;
  Status s = CreateKafkaAppender(options, "events", nullptr, &appender);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return appender;
}

Status AppendOne(LogAppender* appender) {
  auto answer = std::make_shared<std::promise<Status>>();
  std::future<Status> done = answer->get_future();
  std::vector<LogRecord> records = {{"example.com", R"({"domain":"example.com"})"}};
  Status s = appender->Append(std::move(records), [answer](Status r) { answer->set_value(r); });
  if (!s.ok()) return s;
  if (done.wait_for(10s) != std::future_status::ready) return Status::Timeout("no answer");
  return done.get();
}

// librdkafka's idempotent producer can fail for good (an out-of-order
// sequence, a producer id the broker forgot); every write is refused from
// then on. The node only logged it: /readyz said 200 while every event was
// answered 503 (found by a review, thirteenth session).
TEST(KafkaAppenderTest, AFatalProducerErrorMakesItUnreadyAndItsRefusalsSayToRestart) {
  std::unique_ptr<LogAppender> appender = MockAppender();
  ASSERT_NE(appender, nullptr);
  Status first = AppendOne(appender.get());
  ASSERT_TRUE(first.ok()) << first.ToString();
  ASSERT_TRUE(appender->Health().ok()) << appender->Health().ToString();

  ASSERT_EQ(rd_kafka_test_fatal_error(kafka_internal::AppenderHandle(appender.get()),
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                      "injected by the test"),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  // The error callback runs on the appender's poller thread.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (appender->Health().ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  Status health = appender->Health();
  EXPECT_EQ(health.code(), Code::kUnavailable) << health.ToString();
  EXPECT_NE(health.message().find("restart this node"), std::string::npos) << health.ToString();
  EXPECT_NE(health.message().find("injected by the test"), std::string::npos) << health.ToString();

  Status refused = AppendOne(appender.get());
  EXPECT_EQ(refused.code(), Code::kUnavailable) << refused.ToString();
  EXPECT_NE(refused.message().find("restart this node"), std::string::npos) << refused.ToString();
  // It does not heal by itself: a write-failure's unreadiness ends after
  // kafka.timeout_ms, this one does not.
  std::this_thread::sleep_for(3500ms);
  EXPECT_FALSE(appender->Health().ok());
}

}  // namespace
}  // namespace catchall
