// The librdkafka configuration every catchall client starts from
// (kafka_common.h MakeConf): the producers' shared defaults, and the order in
// which catchall's and the user's properties apply. No broker needed: these read
// the configuration back from librdkafka before any client exists.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>

#include "engine/config.h"
#include "kafka_common.h"

namespace catchall {
namespace {

using kafka_internal::ClientKind;
using kafka_internal::MakeConf;

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

ConfPtr Make(const KafkaOptions& options, ClientKind kind,
             const std::map<std::string, std::string>& role) {
  rd_kafka_conf_t* conf = nullptr;
  Status s = MakeConf(options, kind, role, &conf);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return ConfPtr(conf);
}

// The value librdkafka holds for `name`, or "<unknown>".
std::string Get(rd_kafka_conf_t* conf, const char* name) {
  char value[512];
  size_t size = sizeof(value);
  if (rd_kafka_conf_get(conf, name, value, &size) != RD_KAFKA_CONF_OK) return "<unknown>";
  return value;
}

KafkaOptions Options() {
  KafkaOptions options;
  options.brokers = "127.0.0.1:1";
  return options;
}

// lz4 cost an ingest node ~12% of its CPU (a calloc'ed frame buffer per
// message set, zeroed by jemalloc with madvise); see kafka_common.cc.
TEST(KafkaConfTest, ProducersCompressWithSnappyUnlessTheUserPicksACodec) {
  ConfPtr plain = Make(Options(), ClientKind::kProducer, {});
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(Get(plain.get(), "compression.type"), "snappy");

  KafkaOptions chosen = Options();
  chosen.producer_properties["compression.type"] = "lz4";
  ConfPtr lz4 = Make(chosen, ClientKind::kProducer, {});
  ASSERT_NE(lz4, nullptr);
  EXPECT_EQ(Get(lz4.get(), "compression.type"), "lz4") << "kafka.producer.* beats catchall's";

  // A consumer's property is not a producer's.
  KafkaOptions consumer_only = Options();
  consumer_only.consumer_properties["compression.type"] = "gzip";
  ConfPtr still = Make(consumer_only, ClientKind::kProducer, {});
  ASSERT_NE(still, nullptr);
  EXPECT_EQ(Get(still.get(), "compression.type"), "snappy");
}

TEST(KafkaConfTest, ARolesOwnPropertyBeatsTheProducersDefaultsAndConsumersGetNone) {
  ConfPtr role = Make(Options(), ClientKind::kProducer, {{"linger.ms", "7"}});
  ASSERT_NE(role, nullptr);
  EXPECT_EQ(Get(role.get(), "linger.ms"), "7");
  EXPECT_EQ(Get(role.get(), "compression.type"), "snappy");

  ConfPtr consumer = Make(Options(), ClientKind::kConsumer, {});
  ASSERT_NE(consumer, nullptr);
  EXPECT_EQ(Get(consumer.get(), "compression.type"), "none");
  EXPECT_EQ(Get(consumer.get(), "enable.idempotence"), "false");
}

TEST(KafkaConfTest, ProducersAreIdempotentAndLingerFiveMilliseconds) {
  ConfPtr conf = Make(Options(), ClientKind::kProducer, {});
  ASSERT_NE(conf, nullptr);
  EXPECT_EQ(Get(conf.get(), "enable.idempotence"), "true");
  EXPECT_EQ(Get(conf.get(), "linger.ms"), "5");
  EXPECT_EQ(Get(conf.get(), "batch.num.messages"), "10000");
}

TEST(KafkaConfTest, PropertiesForEveryClientBeatTheRoleAndLoseToTheKindsOwn) {
  KafkaOptions options = Options();
  options.properties["linger.ms"] = "20";
  ConfPtr every = Make(options, ClientKind::kProducer, {});
  ASSERT_NE(every, nullptr);
  EXPECT_EQ(Get(every.get(), "linger.ms"), "20");

  options.producer_properties["linger.ms"] = "50";
  ConfPtr own = Make(options, ClientKind::kProducer, {});
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(Get(own.get(), "linger.ms"), "50");
}

TEST(KafkaConfTest, ABadPropertyIsNamedWithoutItsValue) {
  KafkaOptions options = Options();
  options.producer_properties["linger.ms"] = "secret-looking-value";
  rd_kafka_conf_t* conf = nullptr;
  Status s = MakeConf(options, ClientKind::kProducer, {}, &conf);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(conf, nullptr);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("linger.ms"), std::string::npos) << s.ToString();
  EXPECT_EQ(s.message().find("secret-looking-value"), std::string::npos)
      << "a value may be a password: " << s.ToString();
}

// librdkafka applies both prefetch bounds to the consumer's one queue, and
// once over either, 2.0 fetches again only up to a second later: a message
// count (250,000 before) stopped the aggregator's fetches after one fetch of
// small events and left it idle for most of each second while draining a
// backlog (docs/benchmarks.md, "The consumer's prefetch bound").
TEST(KafkaConfTest, AGroupConsumerBoundsItsPrefetchByBytesNotByMessageCount) {
  KafkaGroupOptions group;
  group.kafka = Options();
  group.group_id = "g";
  group.topic = "t";
  ConfPtr conf =
      Make(group.kafka, ClientKind::kConsumer, kafka_internal::GroupConsumerProperties(group));
  ASSERT_NE(conf, nullptr);
  EXPECT_EQ(Get(conf.get(), "queued.min.messages"), "10000000") << "librdkafka's largest";
  EXPECT_EQ(Get(conf.get(), "queued.max.messages.kbytes"), std::to_string(group.queued_max_kb));
  EXPECT_EQ(group.queued_max_kb, 65536);

  // A fetch is decompressed whole before it is queued (small JSON events
  // compress 2-4x): the bound holds three fetches of compressed bytes, so
  // that one fetch does not exceed it by itself and stop the next.
  EXPECT_EQ(group.max_partition_fetch_kb, 4096);
  // The aggregator is given Config's value (app/cluster_nodes.cc), so that
  // default is the one that runs.
  EXPECT_EQ(Config().max_partition_fetch_kb, group.max_partition_fetch_kb);
  const int64_t fetch_max_bytes = std::stoll(Get(conf.get(), "fetch.max.bytes"));
  EXPECT_EQ(fetch_max_bytes, int64_t{5} * 4096 * 1024);
  EXPECT_GE(int64_t{group.queued_max_kb} * 1024, 3 * fetch_max_bytes);

  // The operator's kafka.consumer.* still decides.
  group.kafka.consumer_properties["queued.max.messages.kbytes"] = "16384";
  ConfPtr tuned =
      Make(group.kafka, ClientKind::kConsumer, kafka_internal::GroupConsumerProperties(group));
  ASSERT_NE(tuned, nullptr);
  EXPECT_EQ(Get(tuned.get(), "queued.max.messages.kbytes"), "16384");
}

// librdkafka looks for new partitions of a subscribed topic every 5 minutes
// by default: a partition added to the events topic sat unassigned, its
// records neither counted nor dead-lettered, for at least 90 s in a probe.
TEST(KafkaConfTest, AGroupConsumerLooksForNewPartitionsEvery30Seconds) {
  KafkaGroupOptions group;
  group.kafka = Options();
  group.group_id = "g";
  group.topic = "t";
  ConfPtr conf =
      Make(group.kafka, ClientKind::kConsumer, kafka_internal::GroupConsumerProperties(group));
  ASSERT_NE(conf, nullptr);
  EXPECT_EQ(Get(conf.get(), "topic.metadata.refresh.interval.ms"), "30000");
  group.kafka.consumer_properties["topic.metadata.refresh.interval.ms"] = "5000";
  ConfPtr tuned =
      Make(group.kafka, ClientKind::kConsumer, kafka_internal::GroupConsumerProperties(group));
  ASSERT_NE(tuned, nullptr);
  EXPECT_EQ(Get(tuned.get(), "topic.metadata.refresh.interval.ms"), "5000");
}

}  // namespace
}  // namespace catchall
