// The command line of the real binary: help, configuration precedence and
// clear errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <string>
#include <vector>

#include "support/server_process.h"

namespace catchall::testing {
namespace {

using ::testing::HasSubstr;

TEST(CliTest, EverySubcommandHasHelp) {
  std::string out;
  EXPECT_EQ(RunBinary({"--help"}, &out), 0);
  EXPECT_THAT(out, HasSubstr("serve"));
  EXPECT_EQ(RunBinary({"serve", "--help"}, &out), 0);
  EXPECT_THAT(out, HasSubstr("--data-dir"));
  EXPECT_THAT(out, HasSubstr("--listen"));
  EXPECT_THAT(out, HasSubstr("--config"));
  EXPECT_EQ(RunBinary({"config", "--help"}, &out), 0);
  EXPECT_THAT(out, HasSubstr("--list"));
}

TEST(CliTest, NoSubcommandIsAnError) {
  std::string out;
  EXPECT_NE(RunBinary({}, &out), 0);
  EXPECT_THAT(out, HasSubstr("serve"));
}

TEST(CliTest, FlagsBeatEnvironmentWhichBeatsTheFile) {
  TempDir dir;
  std::string file = dir.path() + "/c.toml";
  std::ofstream(file) << "[server]\nlisten = \"127.0.0.1:1111\"\nmax_connections = 7\n"
                         "[aggregate]\ncatchall_threshold = 50\n";
  std::string out;
  ASSERT_EQ(RunBinary({"config", "--config", file}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("listen = \"127.0.0.1:1111\""));
  EXPECT_THAT(out, HasSubstr("max_connections = 7"));
  EXPECT_THAT(out, HasSubstr("catchall_threshold = 50"));

  setenv("CATCHALL_SERVER_LISTEN", "127.0.0.1:2222", 1);
  ASSERT_EQ(RunBinary({"config", "--config", file}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("listen = \"127.0.0.1:2222\""));
  ASSERT_EQ(RunBinary({"config", "--config", file, "--listen", "127.0.0.1:3333"}, &out), 0);
  EXPECT_THAT(out, HasSubstr("listen = \"127.0.0.1:3333\""));
  unsetenv("CATCHALL_SERVER_LISTEN");
}

// Every flag beats its environment variable, whatever its value: a zero or
// an empty value given on the command line is still the one that applies.
TEST(CliTest, EveryFlagBeatsTheEnvironmentEvenWithAZeroValue) {
  struct Case {
    const char* env;
    const char* env_value;
    std::vector<std::string> flag;
    const char* expected;  // in `catchall config` output
  };
  const std::vector<Case> cases = {
      {"CATCHALL_AGGREGATE_CATCHALL_THRESHOLD",
       "5",
       {"--threshold", "0"},
       "catchall_threshold = 0"},
      {"CATCHALL_AGGREGATE_CATCHALL_THRESHOLD",
       "5",
       {"--threshold", "7"},
       "catchall_threshold = 7"},
      {"CATCHALL_SERVER_LISTEN",
       "127.0.0.1:2222",
       {"--listen", "127.0.0.1:0"},
       "listen = \"127.0.0.1:0\""},
      {"CATCHALL_STORAGE_DATA_DIR",
       "/from/env",
       {"--data-dir", "/from/flag"},
       "data_dir = \"/from/flag\""},
      {"CATCHALL_KAFKA_BROKERS", "env:9092", {"--brokers", ""}, "brokers = \"\""},
      {"CATCHALL_LOGGING_LEVEL", "debug", {"--log-level", "warn"}, "level = \"warn\""},
      {"CATCHALL_LOG_PARTITIONS", "16", {"--partitions", "2"}, "partitions = 2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.env) + " vs " + c.flag[0]);
    setenv(c.env, c.env_value, 1);
    std::vector<std::string> args = {"config"};
    args.insert(args.end(), c.flag.begin(), c.flag.end());
    std::string out;
    EXPECT_EQ(RunBinary(args, &out), 0) << out;
    EXPECT_THAT(out, HasSubstr(c.expected));
    unsetenv(c.env);
  }
}

TEST(CliTest, ConfigErrorsNameTheProblem) {
  TempDir dir;
  std::string file = dir.path() + "/bad.toml";
  std::ofstream(file) << "[server]\nlisen = \"x\"\n";
  std::string out;
  EXPECT_EQ(RunBinary({"serve", "--config", file}, &out), 1);
  EXPECT_THAT(out, HasSubstr("unknown setting 'server.lisen'"));
  EXPECT_EQ(RunBinary({"serve", "--set", "server.max_connections=lots"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("server.max_connections"));
  EXPECT_EQ(RunBinary({"serve", "--listen", "nowhere"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("HOST:PORT"));
}

TEST(CliTest, ServeRefusesADataDirInUse) {
  TempDir data;
  ServerProcess first({"serve", "--data-dir", data.path()});
  ASSERT_TRUE(first.WaitReady());
  std::string out;
  EXPECT_EQ(RunBinary({"serve", "--data-dir", data.path(), "--listen", "127.0.0.1:0"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("in use by another catchall process"));
}

TEST(CliTest, ServeRefusesToChangeThePartitionCountOfExistingData) {
  TempDir data;
  {
    ServerProcess first({"serve", "--data-dir", data.path(), "--partitions", "4"});
    ASSERT_TRUE(first.WaitReady());
    EXPECT_EQ(first.Terminate(), 0);
  }
  std::string out;
  EXPECT_EQ(RunBinary({"serve", "--data-dir", data.path(), "--partitions", "8", "--listen",
                       "127.0.0.1:0"},
                      &out),
            1);
  EXPECT_THAT(out, HasSubstr("4 partitions on disk"));
}

}  // namespace
}  // namespace catchall::testing
