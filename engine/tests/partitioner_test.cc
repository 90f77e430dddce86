#include "engine/partitioner.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace catchall {
namespace {

// Apache Kafka's org.apache.kafka.common.utils.UtilsTest#testMurmur2, plus
// the empty key from librdkafka's rdmurmur2.c unit test.
TEST(Murmur2Test, MatchesKafkaJavaTestVectors) {
  EXPECT_EQ(Murmur2("21"), -973932308);
  EXPECT_EQ(Murmur2("foobar"), -790332482);
  EXPECT_EQ(Murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(Murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(Murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  const char abc[] = {'a', 'b', 'c'};
  EXPECT_EQ(Murmur2(std::string_view(abc, 3)), 479470107);
  EXPECT_EQ(Murmur2(""), 275646681);
}

TEST(Murmur2Test, HashesEveryByteIncludingHighAndNulBytes) {
  // Bytes >= 0x80 are signed in Java and masked with 0xff there; a port
  // that forgets the mask or sign-extends would differ on these.
  EXPECT_NE(Murmur2("\x80"), Murmur2("\x7f"));
  EXPECT_NE(Murmur2(std::string_view("a\0", 2)), Murmur2("a"));
  EXPECT_NE(Murmur2("abcd\xff"), Murmur2("abcd\x7f"));
}

TEST(PartitionForKeyTest, IsInRangeAndUsesThePositiveHash) {
  // "foobar" hashes to a negative number: Kafka masks the sign bit rather
  // than taking the absolute value.
  const int32_t h = Murmur2("foobar");
  ASSERT_LT(h, 0);
  for (int32_t n : {1, 2, 3, 7, 12, 50, 100, 1000}) {
    int32_t p = PartitionForKey("foobar", n);
    EXPECT_EQ(p, static_cast<int32_t>((static_cast<uint32_t>(h) & 0x7fffffffU) % n)) << n;
    EXPECT_GE(p, 0);
    EXPECT_LT(p, n);
  }
  EXPECT_EQ(PartitionForKey("foobar", 50), 16);
  EXPECT_EQ(PartitionForKey("anything", 1), 0);
}

// librdkafka's own Java-compatible partitioner, called through a real topic
// handle of a producer that has no brokers (nothing is ever sent).
class LibrdkafkaCrossCheckTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ASSERT_NE(rk_, nullptr) << errstr;
    rkt_ = rd_kafka_topic_new(rk_, "catchall.partitioner-test", nullptr);
    ASSERT_NE(rkt_, nullptr);
  }
  static void TearDownTestSuite() {
    if (rkt_) rd_kafka_topic_destroy(rkt_);
    if (rk_) rd_kafka_destroy(rk_);
    rkt_ = nullptr;
    rk_ = nullptr;
  }

  static int32_t Rdkafka(const std::string& key, int32_t partitions) {
    return rd_kafka_msg_partitioner_murmur2(rkt_, key.data(), key.size(), partitions, nullptr,
                                            nullptr);
  }
  static int32_t RdkafkaRandom(const std::string& key, int32_t partitions) {
    return rd_kafka_msg_partitioner_murmur2_random(rkt_, key.data(), key.size(), partitions,
                                                   nullptr, nullptr);
  }

  static rd_kafka_t* rk_;
  static rd_kafka_topic_t* rkt_;
};

rd_kafka_t* LibrdkafkaCrossCheckTest::rk_ = nullptr;
rd_kafka_topic_t* LibrdkafkaCrossCheckTest::rkt_ = nullptr;

TEST_F(LibrdkafkaCrossCheckTest, AgreesOnRandomBinaryKeys) {
  ASSERT_NE(rkt_, nullptr);
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<int> length(0, 80);
  std::uniform_int_distribution<int> byte(0, 255);
  const int32_t counts[] = {1, 2, 3, 6, 8, 12, 16, 32, 64, 100, 128, 1000, 4096, 2147483647};
  int mismatches = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string key(static_cast<size_t>(length(rng)), '\0');
    for (char& c : key) c = static_cast<char>(byte(rng));
    for (int32_t n : counts) {
      int32_t ours = PartitionForKey(key, n);
      int32_t theirs = Rdkafka(key, n);
      if (ours != theirs && ++mismatches <= 5) {
        ADD_FAILURE() << "key of " << key.size() << " bytes, " << n << " partitions: ours " << ours
                      << ", librdkafka " << theirs;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(LibrdkafkaCrossCheckTest, AgreesOnDomainLikeKeysOfEveryTailLength) {
  ASSERT_NE(rkt_, nullptr);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> letter(0, 25);
  int mismatches = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string key;
    int len = 1 + i % 40;  // every remainder mod 4, many times
    for (int k = 0; k < len; ++k) key.push_back(static_cast<char>('a' + letter(rng)));
    key += (i % 2 == 0) ? ".com" : ".xn--p1ai";
    for (int32_t n : {1, 3, 8, 10, 24, 60, 256}) {
      if (PartitionForKey(key, n) != Rdkafka(key, n)) ++mismatches;
      // murmur2_random only differs for empty keys.
      if (PartitionForKey(key, n) != RdkafkaRandom(key, n)) ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(LibrdkafkaCrossCheckTest, AgreesOnTheEmptyKey) {
  ASSERT_NE(rkt_, nullptr);
  for (int32_t n : {1, 5, 8, 13}) EXPECT_EQ(PartitionForKey("", n), Rdkafka("", n)) << n;
}

}  // namespace
}  // namespace catchall
