#include "engine/config.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>

#include "test_util.h"

namespace catchall {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Every setting's value, by key: two configs are the same when these are.
std::map<std::string, std::string> Values(const Config& config) {
  std::map<std::string, std::string> values;
  for (const Setting& s : AllSettings()) values[s.key] = s.get(config);
  return values;
}

// Clears every CATCHALL_* variable of the settings for the test and puts the
// previous values back afterwards.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const Setting& s : AllSettings()) {
      const char* v = std::getenv(s.env.c_str());
      saved_[s.env] = v ? std::optional<std::string>(v) : std::nullopt;
      unsetenv(s.env.c_str());
    }
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

  std::string WriteFile(const std::string& text, const std::string& name = "catchall.toml") {
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  Status LoadError(const std::string& file, const ConfigOverrides& overrides = {}) {
    Result<Config> r = LoadConfig(file, overrides);
    EXPECT_FALSE(r.ok());
    return r.status();
  }

  test::ScopedTempDir dir_;
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST_F(ConfigTest, DefaultsAreValid) {
  Config defaults;
  EXPECT_TRUE(ValidateConfig(defaults).ok());
  Result<Config> loaded = LoadConfig("", {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(Values(*loaded), Values(defaults));
  EXPECT_EQ(loaded->listen, "0.0.0.0:8080");
  EXPECT_EQ(loaded->catchall_threshold, 1000u);
  EXPECT_TRUE(loaded->brokers.empty()) << "no brokers means embedded mode by default";
}

TEST_F(ConfigTest, SettingsHaveUniqueKeysAndDerivedEnvNames) {
  std::map<std::string, int> keys, envs;
  for (const Setting& s : AllSettings()) {
    ++keys[s.key];
    ++envs[s.env];
    EXPECT_FALSE(s.help.empty()) << s.key;
    std::string expected = "CATCHALL_";
    for (char c : s.key) expected.push_back(c == '.' ? '_' : static_cast<char>(std::toupper(c)));
    EXPECT_EQ(s.env, expected);
  }
  for (const auto& [k, n] : keys) EXPECT_EQ(n, 1) << k;
  for (const auto& [e, n] : envs) EXPECT_EQ(n, 1) << e;
  EXPECT_EQ(keys.count("server.listen"), 1u);
  EXPECT_EQ(envs.count("CATCHALL_SERVER_LISTEN"), 1u);
}

TEST_F(ConfigTest, FileOverridesDefaults) {
  std::string file = WriteFile(R"(
# a comment
[server]
listen = "127.0.0.1:9999"
http_threads = 3
max_body_bytes = 2048

[storage]
data_dir = "/var/lib/catchall"
sync_writes = true
write_buffer_mb = 16

[log]
partitions = 16

[aggregate]
catchall_threshold = 50

[kafka]
brokers = "k1:9092,k2:9092"

[logging]
level = "debug"
)");
  Result<Config> c = LoadConfig(file, {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "127.0.0.1:9999");
  EXPECT_EQ(c->http_threads, 3);
  EXPECT_EQ(c->max_body_bytes, 2048u);
  EXPECT_EQ(c->data_dir, "/var/lib/catchall");
  EXPECT_TRUE(c->sync_writes);
  EXPECT_EQ(c->write_buffer_mb, 16u);
  EXPECT_EQ(c->partitions, 16);
  EXPECT_EQ(c->catchall_threshold, 50u);
  EXPECT_EQ(c->brokers, "k1:9092,k2:9092");
  EXPECT_EQ(c->log_level, "debug");
  // Untouched settings keep their defaults.
  EXPECT_EQ(c->max_header_bytes, Config{}.max_header_bytes);
  EXPECT_EQ(c->group_id, Config{}.group_id);
}

TEST_F(ConfigTest, EnvironmentOverridesFileAndOverridesOverrideEnvironment) {
  std::string file = WriteFile("[server]\nlisten = \"127.0.0.1:1111\"\n[log]\npartitions = 2\n");
  setenv("CATCHALL_SERVER_LISTEN", "127.0.0.1:2222", 1);
  setenv("CATCHALL_STORAGE_SYNC_WRITES", "yes", 1);
  Result<Config> env = LoadConfig(file, {});
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->listen, "127.0.0.1:2222");
  EXPECT_TRUE(env->sync_writes);
  EXPECT_EQ(env->partitions, 2) << "the file still applies where env is silent";

  Result<Config> flags =
      LoadConfig(file, {{"server.listen", "127.0.0.1:3333"}, {"log.partitions", "5"}});
  ASSERT_TRUE(flags.ok()) << flags.status().ToString();
  EXPECT_EQ(flags->listen, "127.0.0.1:3333");
  EXPECT_EQ(flags->partitions, 5);
  EXPECT_TRUE(flags->sync_writes);

  // Later overrides of the same key win.
  Result<Config> twice = LoadConfig("", {{"log.partitions", "5"}, {"log.partitions", "6"}});
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->partitions, 6);
}

// The embedded node keeps an existing data dir's partition count only when
// none was asked for, in any of the three places one can be.
TEST_F(ConfigTest, ThePartitionCountIsOneAndSaysWhetherItWasGiven) {
  Result<Config> none = LoadConfig("", {});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->partitions, 1);
  EXPECT_FALSE(none->partitions_given);
  Result<Config> file = LoadConfig(WriteFile("[log]\npartitions = 1\n"), {});
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE(file->partitions_given) << "given in the file, even as the default's value";
  setenv("CATCHALL_LOG_PARTITIONS", "3", 1);
  Result<Config> env = LoadConfig("", {});
  unsetenv("CATCHALL_LOG_PARTITIONS");
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->partitions, 3);
  EXPECT_TRUE(env->partitions_given);
  Result<Config> flag = LoadConfig("", {{"log.partitions", "2"}});
  ASSERT_TRUE(flag.ok()) << flag.status().ToString();
  EXPECT_TRUE(flag->partitions_given);
  Result<Config> other = LoadConfig("", {{"log.retention_minutes", "5"}});
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_FALSE(other->partitions_given);
}

TEST_F(ConfigTest, BooleanSpellings) {
  for (const char* t : {"true", "1", "yes", "on", "TRUE", "True", "Yes", "ON"}) {
    auto c = LoadConfig("", {{"storage.sync_writes", t}});
    ASSERT_TRUE(c.ok()) << t;
    EXPECT_TRUE(c->sync_writes) << t;
  }
  for (const char* f : {"false", "0", "no", "off"}) {
    auto c = LoadConfig("", {{"storage.sync_writes", "true"}, {"storage.sync_writes", f}});
    ASSERT_TRUE(c.ok()) << f;
    EXPECT_FALSE(c->sync_writes) << f;
  }
  Status bad = LoadError("", {{"storage.sync_writes", "maybe"}});
  EXPECT_THAT(bad.message(), HasSubstr("storage.sync_writes"));
  EXPECT_THAT(bad.message(), HasSubstr("maybe"));
  EXPECT_THAT(bad.message(), HasSubstr("yes/no, on/off or 1/0"));
  EXPECT_FALSE(LoadConfig("", {{"storage.sync_writes", "trueeeeeeee"}}).ok());
}

// A number past 2^64 - 1 was "not a non-negative integer" (a black-box
// probe, twelfth session).
TEST_F(ConfigTest, ANumberTooLargeForItsSettingIsCalledTooLarge) {
  Status s = LoadError("", {{"aggregate.catchall_threshold", "99999999999999999999999"}});
  EXPECT_THAT(s.message(), HasSubstr("aggregate.catchall_threshold"));
  EXPECT_THAT(s.message(), HasSubstr("is too large"));
}

// A value past an int setting's range said "is too large" and no more; the
// operator had to guess the range (a probe, fifteenth session).
TEST_F(ConfigTest, AnIntSettingPastItsRangeNamesTheRange) {
  const std::pair<const char*, const char*> cases[] = {
      {"2147483647", "must be 0..256"},
      {"2147483648", "must be 0..256"},
      {"99999999999999999999999", "must be 0..256"},
  };
  for (const auto& [value, range] : cases) {
    SCOPED_TRACE(value);
    Status s = LoadError("", {{"server.http_threads", value}});
    EXPECT_THAT(s.message(), HasSubstr("server.http_threads"));
    EXPECT_THAT(s.message(), HasSubstr(range));
  }
  EXPECT_THAT(LoadError("", {{"kafka.partitions", "200000"}}).message(),
              HasSubstr("kafka.partitions: must be 1..100000"));
  EXPECT_THAT(LoadError("", {{"kafka.replication_factor", "40000"}}).message(),
              HasSubstr("kafka.replication_factor: must be 1..32767"));
  EXPECT_THAT(LoadError("", {{"aggregate.threads", "-1"}}).message(),
              HasSubstr("not a non-negative integer"));
}

TEST_F(ConfigTest, UnknownKeyInFileNamesTheKeyAndLine) {
  std::string file = WriteFile("[server]\nlisten = \"0.0.0.0:1\"\nlisen_port = 80\n");
  Status s = LoadError(file);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("server.lisen_port"));
  EXPECT_THAT(s.message(), HasSubstr("line 3"));
  EXPECT_THAT(s.message(), HasSubstr(file));

  Status section = LoadError(WriteFile("[nonsense]\nx = 1\n", "b.toml"));
  EXPECT_THAT(section.message(), HasSubstr("nonsense.x"));
  EXPECT_THAT(section.message(), HasSubstr("line 2"));
}

TEST_F(ConfigTest, TopLevelValuesMustBeInASection) {
  Status s = LoadError(WriteFile("listen = \"0.0.0.0:1\"\n"));
  EXPECT_THAT(s.message(), HasSubstr("'listen'"));
  EXPECT_THAT(s.message(), HasSubstr("section"));
}

TEST_F(ConfigTest, BadTypesAndValuesInFileNameTheKey) {
  struct Case {
    const char* toml;
    const char* key;
  };
  const Case cases[] = {
      {"[log]\npartitions = \"many\"\n", "log.partitions"},
      {"[log]\npartitions = -1\n", "log.partitions"},
      {"[log]\npartitions = 1.5\n", "log.partitions"},
      {"[log]\npartitions = 0\n", "log.partitions"},
      {"[log]\npartitions = 5000\n", "log.partitions"},
      {"[storage]\nsync_writes = 3\n", "storage.sync_writes"},
      {"[storage]\nwrite_buffer_mb = 0\n", "storage.write_buffer_mb"},
      {"[storage]\nwrite_buffer_mb = 4097\n", "storage.write_buffer_mb"},
      {"[server]\nmax_body_bytes = [1, 2]\n", "server.max_body_bytes"},
      {"[server]\nmax_body_bytes = 10\n", "server.max_body_bytes"},
      {"[server]\nlisten = \"nope\"\n", "nope"},
      {"[server]\nhttp_threads = 5000000\n", "server.http_threads"},
      {"[logging]\nlevel = \"loud\"\n", "logging.level"},
      {"[aggregate]\ncommit_interval_ms = 0\n", "aggregate.commit_interval_ms"},
      {"[server]\nmax_connections = { a = 1 }\n", "server.max_connections"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.toml);
    Status s = LoadError(WriteFile(c.toml));
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr(c.key));
  }
}

TEST_F(ConfigTest, TomlSyntaxErrorsNameTheLine) {
  std::string file = WriteFile("[server]\nlisten = \"0.0.0.0:1\"\nthreads = = 3\n");
  Status s = LoadError(file);
  EXPECT_THAT(s.message(), HasSubstr(file));
  EXPECT_THAT(s.message(), HasSubstr("line 3"));
}

TEST_F(ConfigTest, MissingFileIsAnError) {
  std::string file = dir_.path() + "/does-not-exist.toml";
  Status s = LoadError(file);
  EXPECT_THAT(s.message(), HasSubstr(file));
}

TEST_F(ConfigTest, KafkaPropertiesPassThroughFromEverySource) {
  setenv("CATCHALL_KAFKA_CONSUMER_FETCH_WAIT_MAX_MS", "50", 1);
  Result<Config> c = LoadConfigText(
      "[kafka.client]\n\"security.protocol\" = \"SASL_SSL\"\n"
      "[kafka.producer]\n\"linger.ms\" = 20\n",
      "inline.toml", {{"kafka.client.sasl.username", "agg"}, {"kafka.producer.linger.ms", "25"}});
  unsetenv("CATCHALL_KAFKA_CONSUMER_FETCH_WAIT_MAX_MS");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kafka_client, (std::map<std::string, std::string>{
                                 {"sasl.username", "agg"}, {"security.protocol", "SASL_SSL"}}));
  EXPECT_EQ(c->kafka_producer.at("linger.ms"), "25") << "a flag beats the file";
  EXPECT_EQ(c->kafka_consumer.at("fetch.wait.max.ms"), "50");
  EXPECT_EQ(c->kafka_consumer.count("linger.ms"), 0u) << "producer properties stay with producers";
}

// The pass-throughs apply after catchall's own Kafka settings, so the ones
// its guarantees rest on are refused with another value: `acks=1` made a
// 204 mean only the leader had the event, `partitioner=random` had every
// event dead-lettered, `enable.idempotence=false` let retries write twice
// (a review). Restating one, in any letter case, is fine.
TEST_F(ConfigTest, APassThroughThatWouldBreakAGuaranteeIsRefused) {
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"kafka.producer.acks", "1"},
      {"kafka.client.request.required.acks", "0"},
      {"kafka.producer.enable.idempotence", "false"},
      {"kafka.producer.partitioner", "random"},
      {"kafka.consumer.isolation.level", "read_uncommitted"},
      {"kafka.consumer.enable.auto.commit", "true"},
      {"kafka.client.transactional.id", "mine"},
      {"kafka.consumer.group.id", "other"},
  };
  for (const auto& [key, value] : refused) {
    Status s = LoadError("", {{key, value}});
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << key;
    EXPECT_THAT(s.message(), HasSubstr(key + ": ")) << key;
  }
  EXPECT_THAT(LoadError("", {{"kafka.producer.acks", "1"}}).message(),
              HasSubstr("must stay all (or -1): a 204 means every in-sync replica has the event"));
  EXPECT_THAT(LoadError("", {{"kafka.consumer.group.id", "x"}}).message(),
              HasSubstr("cannot be set: set the aggregators' group with kafka.group_id"));
  // From the environment, the refusal names the variable.
  setenv("CATCHALL_KAFKA_PRODUCER_PARTITIONER", "consistent", 1);
  Status env = LoadError("", {});
  unsetenv("CATCHALL_KAFKA_PRODUCER_PARTITIONER");
  EXPECT_THAT(env.message(), HasSubstr("environment variable CATCHALL_KAFKA_PRODUCER_PARTITIONER: "
                                       "kafka.producer.partitioner: must stay murmur2_random"));
  // From a file, its line.
  std::string file = WriteFile("[kafka.consumer]\n\"isolation.level\" = \"read_uncommitted\"\n");
  EXPECT_THAT(LoadError(file).message(), HasSubstr("config file " + file +
                                                   " line 2: kafka.consumer.isolation.level: must "
                                                   "stay read_committed"));

  Result<Config> restated = LoadConfigText("", "inline.toml",
                                           {{"kafka.producer.acks", "ALL"},
                                            {"kafka.client.acks", "-1"},
                                            {"kafka.producer.enable.idempotence", "true"},
                                            {"kafka.producer.partitioner", "murmur2"},
                                            {"kafka.consumer.isolation.level", "read_committed"},
                                            {"kafka.consumer.enable.auto.commit", "false"},
                                            {"kafka.producer.linger.ms", "20"}});
  EXPECT_TRUE(restated.ok()) << restated.status().ToString();
}

TEST_F(ConfigTest, SecretPropertiesAreNeverPrinted) {
  Result<Config> c = LoadConfigText("", "inline.toml",
                                    {{"kafka.client.sasl.password", "hunter2"},
                                     {"kafka.client.ssl.key.password", "s3cret"},
                                     {"kafka.client.sasl.oauthbearer.client.secret", "abc"},
                                     {"kafka.client.sasl.oauthbearer.config", "principal=ops"},
                                     {"kafka.client.client.rack", "rack-1"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::string dump = DumpConfig(*c);
  EXPECT_THAT(dump, Not(HasSubstr("hunter2")));
  EXPECT_THAT(dump, Not(HasSubstr("s3cret")));
  EXPECT_THAT(dump, Not(HasSubstr("\"abc\"")));
  EXPECT_THAT(dump, Not(HasSubstr("principal=ops")));
  EXPECT_THAT(dump, HasSubstr("\"client.rack\" = \"rack-1\""));
  // As a comment: read back, a mask would have become the password.
  EXPECT_THAT(dump, HasSubstr("# \"sasl.password\" = (a secret, not shown"));
  // The dump reads back, without the secrets.
  Result<Config> back = LoadConfigText(dump, "dump.toml", {});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->kafka_client, (std::map<std::string, std::string>{{"client.rack", "rack-1"}}));
  EXPECT_EQ(DumpConfig(*back), DumpConfig(WithoutSecrets(*c)));
}

// A probe fed `catchall config`'s output back as a config file on a data
// dir made with 8 partitions: the dump had set log.partitions = 1, and the
// start failed. Unset, it stays unset.
TEST_F(ConfigTest, ADumpReadsBackWithLogPartitionsUnsetWhenItWasUnset) {
  Result<Config> unset = LoadConfigText("", "none.toml", {});
  ASSERT_TRUE(unset.ok());
  std::string dump = DumpConfig(*unset);
  EXPECT_THAT(dump, HasSubstr("# (unset) partitions = 1\n"));
  Result<Config> back = LoadConfigText(dump, "dump.toml", {});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_FALSE(back->partitions_given);
  Result<Config> given = LoadConfigText("[log]\npartitions = 8\n", "given.toml", {});
  ASSERT_TRUE(given.ok());
  Result<Config> given_back = LoadConfigText(DumpConfig(*given), "dump.toml", {});
  ASSERT_TRUE(given_back.ok());
  EXPECT_TRUE(given_back->partitions_given);
  EXPECT_EQ(given_back->partitions, 8);
}

TEST_F(ConfigTest, AKafkaKeyOutsideThePassThroughsIsStillUnknown) {
  Status s = LoadError("", {{"kafka.bogus", "1"}});
  EXPECT_THAT(s.message(), HasSubstr("unknown setting 'kafka.bogus'"));
  Result<Config> r = LoadConfigText("[kafka.clients]\n\"x\" = 1\n", "f.toml", {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("unknown setting 'kafka.clients.x'"));
}

// Found by a probe: a file with two typos named one per start, and not
// the first; a bad value gave no line.
TEST_F(ConfigTest, AFileNamesEveryUnknownKeyInOrderAndTheLineOfABadValue) {
  Result<Config> r = LoadConfigText("[storage]\nmin_freee_mb = 5\nbogus = 1\n", "h.toml", {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(),
              HasSubstr("config file h.toml line 2: unknown setting 'storage.min_freee_mb'; "
                        "line 3: unknown setting 'storage.bogus'"));
  r = LoadConfigText("[storage]\n\nmin_free_mb = -5\n", "f.toml", {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("config file f.toml line 3: storage.min_free_mb"));
}

TEST_F(ConfigTest, LoadConfigTextReadsTomlTextAndNamesItsSource) {
  Result<Config> c = LoadConfigText("[log]\npartitions = 3\n", "inline.toml", {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->partitions, 3);
  Result<Config> empty = LoadConfigText("", "empty.toml", {{"log.partitions", "5"}});
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->partitions, 5);
  Result<Config> bad = LoadConfigText("[log]\npartitions = = 3\n", "inline.toml", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("inline.toml line 2"));
}

TEST_F(ConfigTest, BadEnvironmentValueNamesTheVariable) {
  setenv("CATCHALL_LOG_PARTITIONS", "eight", 1);
  Status s = LoadError("");
  EXPECT_THAT(s.message(), HasSubstr("CATCHALL_LOG_PARTITIONS"));
  EXPECT_THAT(s.message(), HasSubstr("eight"));
}

TEST_F(ConfigTest, TheBodyBudgetHoldsAtLeastOneLargestBodyOrIsOff) {
  Status small = LoadError(
      "", {{"server.max_body_bytes", "65536"}, {"server.max_inflight_body_bytes", "65535"}});
  EXPECT_THAT(small.message(), HasSubstr("server.max_inflight_body_bytes"));
  EXPECT_THAT(small.message(), HasSubstr("65536"));
  for (const char* ok : {"0", "65536"}) {
    Result<Config> c = LoadConfig(
        "", {{"server.max_body_bytes", "65536"}, {"server.max_inflight_body_bytes", ok}});
    ASSERT_TRUE(c.ok()) << ok << ": " << c.status().message();
    EXPECT_EQ(c->max_inflight_body_bytes, std::stoull(ok));
  }
  EXPECT_EQ(LoadConfig("", {})->max_inflight_body_bytes, uint64_t{1} << 30);
}

TEST_F(ConfigTest, BadOverridesNameTheKey) {
  Status unknown = LoadError("", {{"server.nope", "1"}});
  EXPECT_THAT(unknown.message(), HasSubstr("server.nope"));
  Status bad = LoadError("", {{"server.max_connections", "lots"}});
  EXPECT_THAT(bad.message(), HasSubstr("server.max_connections"));
  Status negative = LoadError("", {{"server.max_connections", "-5"}});
  EXPECT_THAT(negative.message(), HasSubstr("server.max_connections"));
  Status empty = LoadError("", {{"ingest.max_batch_items", ""}});
  EXPECT_THAT(empty.message(), HasSubstr("ingest.max_batch_items"));
  Status trailing = LoadError("", {{"ingest.max_batch_items", "10x"}});
  EXPECT_THAT(trailing.message(), HasSubstr("ingest.max_batch_items"));
}

TEST_F(ConfigTest, ValidateConfigNamesTheBadKey) {
  Config c;
  c.partitions = 0;
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("log.partitions"));
  c = Config{};
  c.max_header_bytes = 100;
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("server.max_header_bytes"));
  c = Config{};
  c.listen = "localhost";
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("localhost"));
  c = Config{};
  c.data_dir.clear();
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("storage.data_dir"));
  c = Config{};
  c.max_lookup_domains = 0;
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("query.max_lookup_domains"));
  c = Config{};
  c.http_threads = 257;
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("server.http_threads"));
  c.http_threads = -1;
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("server.http_threads"));
  c.http_threads = 256;
  EXPECT_TRUE(ValidateConfig(c).ok());
}

// 5 x 1024 x kb overflowed an int past 419,430, and the consumer fetched
// 16 MiB whatever was asked (a review, thirteenth session).
TEST_F(ConfigTest, APartitionFetchSizeIsBoundedByKafkasLargestFetch) {
  Config c;
  c.max_partition_fetch_kb = 409'600;
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c).ToString();
  for (int bad : {63, 409'601, 500'000}) {
    c.max_partition_fetch_kb = bad;
    Status s = ValidateConfig(c);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_THAT(s.message(), HasSubstr("kafka.max_partition_fetch_kb")) << bad;
    EXPECT_THAT(s.message(), HasSubstr("64..409600")) << bad;
  }
}

TEST_F(ConfigTest, BrokerAddressesAreCheckedAsLibrdkafkaReadsThem) {
  for (std::string ok :
       {"k:9092", "k1:9092,k2:9093", "k", "SASL_SSL://k:9093", "[::1]:9092", "::1",
        "k1:9092, k2:9092", "10.0.0.1:65535", "k1:9092,,k2:9092", "k1:9092,", "k1:9092\t,k2"}) {
    Config c;
    c.brokers = ok;
    EXPECT_TRUE(ValidateConfig(c).ok()) << ok << ": " << ValidateConfig(c).ToString();
  }
  for (std::string bad : {"k:99999", "k:0", "k:", "k:x", ":9092", "k:9092,k2:0", " , ", "[::1",
                          "[::1]9092", "[]:9092", "k/x:9092", "k!:9092"}) {
    Config c;
    c.brokers = bad;
    Status s = ValidateConfig(c);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_THAT(s.message(), HasSubstr("kafka.brokers")) << bad;
  }
  // Found by a black-box probe: credentials in a URL passed (two colons
  // read as a bare IPv6 address) and were printed when the broker could not
  // be reached. Refused, and not echoed.
  Config c;
  c.brokers = "k1:9092,sasl_ssl://catchall:S3cret@127.0.0.1:9093";
  Status s = ValidateConfig(c);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("kafka.client.sasl.password"));
  EXPECT_THAT(s.message(), Not(HasSubstr("S3cret")));
}

// A value refused once the layers are merged names the layer it came from,
// the last of file < environment < flags that set it: `log.partitions: must
// be 1..4096` did not say it was the file's (a probe).
TEST_F(ConfigTest, ARefusedValueNamesTheLayerItCameFrom) {
  const std::string file = WriteFile("[log]\npartitions = 0\n[aggregate]\nthreads = 99\n");
  EXPECT_THAT(LoadError(file, {{"aggregate.threads", "1"}}).message(),
              StartsWith("config file " + file + " line 2: log.partitions: must be 1..4096"));
  setenv("CATCHALL_LOG_PARTITIONS", "5000", 1);
  Status env = LoadError(file, {{"aggregate.threads", "1"}});
  unsetenv("CATCHALL_LOG_PARTITIONS");
  EXPECT_THAT(env.message(),
              StartsWith("environment variable CATCHALL_LOG_PARTITIONS: log.partitions"));
  EXPECT_THAT(LoadError(file, {{"log.partitions", "5000"}}).message(),
              StartsWith("log.partitions: must be 1..4096"))
      << "a flag's value is refused as given";
  EXPECT_THAT(LoadError(WriteFile("[server]\nlisten = \"8080\"\n", "l.toml")).message(),
              AllOf(HasSubstr("l.toml line 2: server.listen: listen address '8080'"),
                    StartsWith("config file ")));
  // A file that does not set the key is not blamed for it (a review).
  EXPECT_THAT(LoadError(WriteFile("[server]\nmax_connections = 5\n", "other.toml"),
                        {{"server.tls_cert_file", "/x"}})
                  .message(),
              StartsWith("server.tls_key_file: must be set together"));
}

// As the booleans: `--log-level WARN` was refused (a probe).
TEST_F(ConfigTest, TheLogLevelIsTakenInAnyLetterCase) {
  Result<Config> c = LoadConfig("", {{"logging.level", "WARN"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log_level, "warn");
  EXPECT_THAT(LoadError("", {{"logging.level", "LOUD"}}).message(), HasSubstr("logging.level"));
}

TEST_F(ConfigTest, UnknownCatchallEnvironmentVariablesAreWarnings) {
  setenv("CATCHALL_SERVER_LISTN", "x", 1);
  setenv("CATCHALL_KAFKA_CLIENT_SOCKET_TIMEOUT_MS", "1000", 1);  // a pass-through: fine
  setenv("CATCHALL_SERVER_LISTEN", "127.0.0.1:1", 1);            // a setting: fine
  setenv("CATCHALL_ELSEWHERE_BIN", "x", 1);  // no section's (as CATCHALL_BIN): not ours
  setenv("CATCHALL_KAFKA_CLIENT_", "x", 1);  // a prefix without a property (a probe)
  Result<Config> c = LoadConfig("", {});
  unsetenv("CATCHALL_SERVER_LISTN");
  unsetenv("CATCHALL_KAFKA_CLIENT_SOCKET_TIMEOUT_MS");
  unsetenv("CATCHALL_SERVER_LISTEN");
  unsetenv("CATCHALL_ELSEWHERE_BIN");
  unsetenv("CATCHALL_KAFKA_CLIENT_");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::string all;
  for (const std::string& w : c->warnings) all += w + "\n";
  EXPECT_THAT(all, HasSubstr("CATCHALL_SERVER_LISTN names no setting"));
  EXPECT_THAT(all, HasSubstr("CATCHALL_KAFKA_CLIENT_ names no setting"));
  EXPECT_THAT(all, Not(HasSubstr("CATCHALL_KAFKA_CLIENT_SOCKET")));
  EXPECT_THAT(all, Not(HasSubstr("CATCHALL_SERVER_LISTEN ")));
  EXPECT_THAT(all, Not(HasSubstr("CATCHALL_ELSEWHERE_BIN")));
}

TEST_F(ConfigTest, ClusterOnlySettingsListsWhatServeWouldIgnore) {
  EXPECT_TRUE(ClusterOnlySettings(Config{}).empty());
  Result<Config> c = LoadConfig("", {{"kafka.timeout_ms", "1000"},
                                     {"kafka.consumer.fetch.wait.max.ms", "5"},
                                     {"aggregate.standby_replicas", "1"},
                                     {"aggregate.threads", "4"},
                                     {"query.checkpoint_domains", "5"},
                                     {"server.max_connections", "5"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_THAT(ClusterOnlySettings(*c),
              ::testing::UnorderedElementsAre(
                  "kafka.timeout_ms", "kafka.consumer.fetch.wait.max.ms",
                  "aggregate.standby_replicas", "aggregate.threads", "query.checkpoint_domains"));
}

// configs/serve.toml is documented as "every setting, commented": each
// setting that serve uses is in it (as `key = ...`, set or commented out),
// and the file loads.
TEST_F(ConfigTest, ServeTomlNamesEverySettingServeUses) {
  const std::string path = std::string(CATCHALL_SOURCE_DIR) + "/configs/serve.toml";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  std::stringstream text;
  text << in.rdbuf();
  const std::string toml = text.str();
  for (const Setting& s : AllSettings()) {
    if (s.key.rfind("kafka.", 0) == 0 || s.help.rfind("cluster mode:", 0) == 0) continue;
    const std::string name = s.key.substr(s.key.find('.') + 1);
    const std::regex line("(^|\\n)#? *" + name + " *=");
    EXPECT_TRUE(std::regex_search(toml, line)) << s.key << " is not in " << path;
  }
  Result<Config> loaded = LoadConfig(path, {});
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
}

// A topic name the broker would refuse, or a Kafka timeout of 0, used to
// pass and then read as "cannot reach Kafka" when the broker was fine.
TEST_F(ConfigTest, TopicNamesAndTheKafkaTimeoutAreCheckedUpFront) {
  EXPECT_THAT(LoadError("", {{"kafka.events_topic", ""}}).message(),
              HasSubstr("kafka.events_topic: '' is not a Kafka topic name: it is empty"));
  EXPECT_THAT(LoadError("", {{"kafka.status_topic", "bad topic!"}}).message(),
              HasSubstr("kafka.status_topic: 'bad topic!' is not a Kafka topic name"));
  EXPECT_THAT(LoadError("", {{"kafka.ids_topic", ".."}}).message(), HasSubstr("reserved"));
  EXPECT_THAT(LoadError("", {{"kafka.dead_letter_topic", std::string(250, 'a')}}).message(),
              HasSubstr("longer than 249"));
  EXPECT_THAT(LoadError("", {{"kafka.timeout_ms", "0"}}).message(),
              HasSubstr("kafka.timeout_ms: must be positive"));
  Result<Config> fine = LoadConfig("", {{"kafka.events_topic", "Team_1.events-v2"},
                                        {"kafka.dead_letter_topic", std::string(249, 'a')},
                                        {"kafka.timeout_ms", "1"}});
  EXPECT_TRUE(fine.ok()) << fine.status().ToString();
}

// Each refusal names its own setting: both timeouts were refused as
// "server.*_timeout_ms" (a black-box probe).
TEST_F(ConfigTest, AZeroServerTimeoutIsRefusedUnderItsOwnName) {
  EXPECT_THAT(LoadError("", {{"server.idle_timeout_ms", "0"}}).message(),
              HasSubstr("server.idle_timeout_ms: must be positive"));
  EXPECT_THAT(LoadError("", {{"server.io_timeout_ms", "0"}}).message(),
              HasSubstr("server.io_timeout_ms: must be positive"));
}

TEST_F(ConfigTest, AListenAddressWithUnbalancedBracketsIsRefused) {
  for (const char* listen : {"[::1:8080", "::1]:8080", "[[::1]]:8080"}) {
    SCOPED_TRACE(listen);
    EXPECT_THAT(LoadError("", {{"server.listen", listen}}).message(),
                HasSubstr("with an IPv6 host in brackets"));
  }
  Result<Config> v6 = LoadConfig("", {{"server.listen", "[::1]:8080"}});
  EXPECT_TRUE(v6.ok()) << v6.status().ToString();
}

// A certificate without its key (or the reverse) would otherwise start a
// plain HTTP listener the operator believes is encrypted.
TEST_F(ConfigTest, TlsCertificateAndKeyComeTogether) {
  Status no_key = LoadError("", {{"server.tls_cert_file", "/etc/catchall/cert.pem"}});
  EXPECT_THAT(no_key.message(), HasSubstr("server.tls_key_file"));
  EXPECT_THAT(no_key.message(), HasSubstr("together"));
  Status no_cert = LoadError("", {{"server.tls_key_file", "/etc/catchall/key.pem"}});
  EXPECT_THAT(no_cert.message(), HasSubstr("server.tls_cert_file"));
  Result<Config> both = LoadConfig("", {{"server.tls_cert_file", "/etc/catchall/cert.pem"},
                                        {"server.tls_key_file", "/etc/catchall/key.pem"}});
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both->tls_cert_file, "/etc/catchall/cert.pem");
  EXPECT_EQ(both->tls_key_file, "/etc/catchall/key.pem");
}

// Found while writing fuzz/config_fuzzer: values that do not fit what they
// configure loaded fine and wrapped. idle_timeout_ms = 2^64-1 became -1 ms
// and the server cut every request; max_header_bytes just above 4 GiB became
// a 100-byte header limit.
TEST_F(ConfigTest, ValuesThatWouldWrapAreRefusedWithTheirKey) {
  const char* kMax = "18446744073709551615";
  for (const char* key :
       {"server.max_header_bytes", "server.max_body_bytes", "server.idle_timeout_ms",
        "server.io_timeout_ms", "server.shutdown_timeout_ms", "storage.block_cache_mb",
        "storage.compaction_rate_mb", "log.retention_minutes", "log.max_pending_mb",
        "log.max_unconsumed_events", "log.fetch_min_events", "log.fetch_wait_ms",
        "aggregate.commit_interval_ms", "aggregate.idempotency_window_s", "kafka.timeout_ms"}) {
    Status s = LoadError("", {{key, kMax}});
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << key;
    EXPECT_THAT(s.message(), HasSubstr(key));
    EXPECT_THAT(s.message(), HasSubstr("at most"));
  }
  Status header = LoadError("", {{"server.max_header_bytes", "4294967396"}});
  EXPECT_THAT(header.message(), HasSubstr("server.max_header_bytes"));
  // A body limit of 2^50 loaded, and one request declaring that length made
  // Beast reserve it: bad_alloc, the process gone.
  Status body = LoadError("", {{"server.max_body_bytes", "1125899906842624"}});
  EXPECT_THAT(body.message(), HasSubstr("server.max_body_bytes"));
  EXPECT_THAT(body.message(), HasSubstr("at most 1073741824"));
  // Large but representable values still load.
  Result<Config> big = LoadConfig("", {{"server.idle_timeout_ms", "86400000"},
                                       {"server.max_header_bytes", "1048576"},
                                       {"server.max_body_bytes", "1073741824"},
                                       {"log.retention_minutes", "525600"},
                                       {"kafka.timeout_ms", "300000"}});
  EXPECT_TRUE(big.ok()) << big.status().ToString();
}

// `catchall config --list` and the command-line flags print SettingRange:
// both ends must load, and one past either end be refused under the
// setting's key, naming the bound (a probe read "at most 86400000" for
// server.idle_timeout_ms, whose 0 is refused).
TEST_F(ConfigTest, EachSettingsPrintedBoundsAreWhatLoads) {
  constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();
  size_t bounded = 0;
  for (const Setting& setting : AllSettings()) {
    std::optional<SettingBounds> range = SettingRange(setting.key);
    if (!range) continue;
    ++bounded;
    SCOPED_TRACE(setting.key);
    for (uint64_t ok : {range->min, range->max}) {
      Result<Config> loaded = LoadConfig("", {{setting.key, std::to_string(ok)}});
      EXPECT_TRUE(loaded.ok()) << ok << ": " << loaded.status().ToString();
    }
    if (range->min > 0) {
      std::string below = LoadError("", {{setting.key, std::to_string(range->min - 1)}}).message();
      EXPECT_THAT(below, HasSubstr(setting.key + ": must be "));
      EXPECT_THAT(below, AnyOf(HasSubstr(std::to_string(range->min)), HasSubstr("positive")));
    }
    if (range->max != kNone) {
      std::string above = LoadError("", {{setting.key, std::to_string(range->max + 1)}}).message();
      EXPECT_THAT(above, HasSubstr(setting.key + ": must be "));
      EXPECT_THAT(above, HasSubstr(std::to_string(range->max)));
    }
  }
  EXPECT_EQ(bounded, 31u);
  auto bounds = [&](std::string_view key) {
    std::optional<SettingBounds> range = SettingRange(key);
    return range ? std::pair{range->min, range->max} : std::pair{kNone, kNone};
  };
  EXPECT_EQ(bounds("aggregate.threads"), std::pair(uint64_t{1}, uint64_t{64}));
  EXPECT_EQ(bounds("server.idle_timeout_ms"), std::pair(uint64_t{1}, uint64_t{86'400'000}));
  EXPECT_EQ(bounds("aggregate.idempotency_window_s"), std::pair(uint64_t{0}, uint64_t{31'536'000}));
  EXPECT_EQ(bounds("ingest.max_batch_items"), std::pair(uint64_t{1}, kNone));
  EXPECT_FALSE(SettingRange("server.listen").has_value());
  EXPECT_FALSE(SettingRange("no.such_setting").has_value());
  // Each range refuses in its own words, as before the table.
  EXPECT_THAT(LoadError("", {{"aggregate.threads", "65"}}).message(),
              HasSubstr("aggregate.threads: must be 1..64"));
  EXPECT_THAT(LoadError("", {{"server.max_body_bytes", "1023"}}).message(),
              HasSubstr("server.max_body_bytes: must be at least 1024"));
  EXPECT_THAT(LoadError("", {{"server.idle_timeout_ms", "86400001"}}).message(),
              HasSubstr("server.idle_timeout_ms: must be at most 86400000"));
}

TEST(ParseListenTest, Variants) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(ParseListen("0.0.0.0:8080", &host, &port).ok());
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 8080);
  ASSERT_TRUE(ParseListen(":9000", &host, &port).ok());
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 9000);
  ASSERT_TRUE(ParseListen("[::1]:80", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 80);
  ASSERT_TRUE(ParseListen("localhost:0", &host, &port).ok());
  EXPECT_EQ(host, "localhost");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(ParseListen("127.0.0.1:65535", &host, &port).ok());
  EXPECT_EQ(port, 65535);
}

TEST(ParseListenTest, Errors) {
  std::string host = "unchanged";
  uint16_t port = 7;
  for (const char* bad :
       {"nope", "", "host:", "host:http", "host:65536", "host:-1", ":", "[::1]", "host:80 "}) {
    SCOPED_TRACE(bad);
    Status s = ParseListen(bad, &host, &port);
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr(fmt::format("'{}'", bad)));
  }
  EXPECT_EQ(host, "unchanged");
  EXPECT_EQ(port, 7);
}

TEST_F(ConfigTest, DumpConfigLoadsBackToTheSameConfig) {
  ConfigOverrides overrides = {{"server.listen", "[::1]:8123"},
                               {"server.http_threads", "7"},
                               {"storage.data_dir", "/tmp/some dir/catchall"},
                               {"storage.sync_writes", "true"},
                               {"log.partitions", "12"},
                               {"kafka.brokers", "a:1,b:2"},
                               {"kafka.instance_id", "12345"},
                               {"kafka.group_id", "true"},
                               {"logging.level", "warn"}};
  Result<Config> original = LoadConfig("", overrides);
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  std::string dumped = DumpConfig(*original);
  for (const Setting& s : AllSettings()) {
    EXPECT_THAT(dumped, HasSubstr(s.env)) << "documents the environment variable";
  }
  std::string file = WriteFile(dumped);
  Result<Config> loaded = LoadConfig(file, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString() << "\n" << dumped;
  EXPECT_EQ(Values(*loaded), Values(*original)) << dumped;

  // The defaults round-trip too (empty strings included).
  std::string defaults_file = WriteFile(DumpConfig(Config{}), "defaults.toml");
  Result<Config> defaults = LoadConfig(defaults_file, {});
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(Values(*defaults), Values(Config{}));
}

TEST_F(ConfigTest, DumpConfigRoundTripsValuesThatAreNotTomlIntegers) {
  // "007" is not a TOML integer (leading zero) and u64 max does not fit in
  // TOML's int64: both must still load back.
  Result<Config> original = LoadConfig(
      "", {{"kafka.instance_id", "007"}, {"aggregate.catchall_threshold", "18446744073709551615"}});
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  std::string dumped = DumpConfig(*original);
  Result<Config> loaded = LoadConfig(WriteFile(dumped), {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->instance_id, "007");
  EXPECT_EQ(loaded->catchall_threshold, 18446744073709551615ULL);
}

TEST_F(ConfigTest, DumpConfigQuotesStringsThatNeedEscaping) {
  Result<Config> original = LoadConfig(
      "", {{"storage.data_dir", R"(C:\data\"quoted" dir)"}, {"kafka.instance_id", "tab\there"}});
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  std::string dumped = DumpConfig(*original);
  Result<Config> loaded = LoadConfig(WriteFile(dumped), {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString() << "\n" << dumped;
  EXPECT_EQ(loaded->data_dir, original->data_dir);
  EXPECT_EQ(loaded->instance_id, original->instance_id);
}

}  // namespace
}  // namespace catchall
