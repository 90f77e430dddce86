// Cluster mode against a broker that requires TLS and SASL, as managed Kafka
// services do: `scripts/kafka-dev start --sasl` on free ports, one broker for
// the suite. Each flow runs ingest, aggregate and query over a secured
// listener and checks exact counts; wrong credentials must stop a role at
// start with a message that names them, and never print the password.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/catchall_client.h"
#include "support/http_client.h"
#include "support/kafka_cluster.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace catchall::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr int kPartitions = 2;

class SecuredClusterTest : public ::testing::Test {
 protected:
  // One broker for every case: starting one with TLS takes seconds.
  static void SetUpTestSuite() {
    broker_ = new TestBroker(/*secured=*/true);
    start_rc_ = broker_->Start();
  }
  static void TearDownTestSuite() {
    delete broker_;
    broker_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(start_rc_, 0) << broker_->output(); }

  // SASL_SSL with `mechanism`, as kSaslUser with `password`.
  static std::vector<std::string> SaslFlags(const std::string& mechanism,
                                            const std::string& password) {
    return {"--set", "kafka.client.security.protocol=SASL_SSL",
            "--set", "kafka.client.sasl.mechanisms=" + mechanism,
            "--set", std::string("kafka.client.sasl.username=") + kSaslUser,
            "--set", "kafka.client.sasl.password=" + password,
            "--set", "kafka.client.ssl.ca.location=" + broker_->tls_dir() + "/ca.pem"};
  }

  // TLS with the client certificate that kafka-dev made, and no SASL.
  static std::vector<std::string> ClientCertificateFlags() {
    const std::string dir = broker_->tls_dir();
    return {"--set", "kafka.client.security.protocol=SSL",
            "--set", "kafka.client.ssl.ca.location=" + dir + "/ca.pem",
            "--set", "kafka.client.ssl.certificate.location=" + dir + "/client.pem",
            "--set", "kafka.client.ssl.key.location=" + dir + "/client.key"};
  }

  // Creates topics, starts the three roles with `security` against
  // `brokers`, sends events and waits for their exact counts on the query
  // node. *roles gets the roles, still running, for further checks.
  void RunFlow(const std::string& brokers, const std::vector<std::string>& security,
               const std::vector<std::string>& role_flags,
               std::vector<std::unique_ptr<ServerProcess>>* roles) {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ClusterNames names = CreateClusterTopics(brokers, test, kPartitions, security);
    ASSERT_FALSE(HasFailure()) << "creating the topics over the secured listener failed";
    auto start = [&](const std::string& role, const std::string& data_dir) {
      std::vector<std::string> extra = security;
      extra.insert(extra.end(), role_flags.begin(), role_flags.end());
      roles->push_back(std::make_unique<ServerProcess>(
          names.RoleArgs(role, brokers, data_dir, role == "aggregate" ? test : "", extra)));
      EXPECT_TRUE(roles->back()->started()) << roles->back()->Output();
    };
    start("ingest", "");
    start("aggregate", agg_dir_.path());
    start("query", query_dir_.path());
    std::vector<ServerProcess*> all;
    for (auto& r : *roles) {
      all.push_back(r.get());
      ASSERT_TRUE(r->WaitReady(90s));
    }

    HttpClient in((*roles)[0]->port());
    std::string batch;
    for (int i = 0; i < 1001; ++i) {
      batch += "{\"domain\":\"catch.example\",\"type\":\"delivered\"}\n";
    }
    HttpResult r = in.Post("/events", batch, "application/x-ndjson");
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(in.Put("/events/bounce.example/delivered").status, 204);
    ASSERT_EQ(in.Put("/events/bounce.example/bounced").status, 204);
    ASSERT_EQ(in.Put("/events/bounce.example/bounced").status, 204);

    HttpClient q((*roles)[2]->port());
    std::string diff;
    EXPECT_TRUE(WaitForAllCounts(q, {{"catch.example", {1001, 0}}, {"bounce.example", {1, 2}}},
                                 120s, &diff))
        << diff << ServersOutput(all);
    EXPECT_EQ(GetDomain(q, "catch.example").state, "catch-all");
  }

  // Runs `catchall <args>` to its end (killed after 60 s: a hang fails the
  // test instead of stalling it); returns the exit code, with its output in
  // *output and how long it ran in *took.
  static int RunCatchall(const std::vector<std::string>& args, std::string* output,
                         std::chrono::milliseconds* took) {
    std::vector<std::string> argv = {"timeout", "-s", "KILL", "60", ServerProcess::BinaryPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto started = std::chrono::steady_clock::now();
    int rc = RunProgram(argv, "", output);
    *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started);
    return rc;
  }

  static TestBroker* broker_;
  static int start_rc_;
  TempDir agg_dir_;
  TempDir query_dir_;
};

TestBroker* SecuredClusterTest::broker_ = nullptr;
int SecuredClusterTest::start_rc_ = -1;

TEST_F(SecuredClusterTest, ScramSha512OverSaslSslCountsExactlyAndNeverShowsThePassword) {
  std::vector<std::unique_ptr<ServerProcess>> roles;
  std::vector<std::string> security = SaslFlags("SCRAM-SHA-512", kSaslPassword);
  // librdkafka's most talkative settings about security and configuration,
  // so that a password it printed would be in the roles' output.
  RunFlow(broker_->sasl_brokers(), security,
          {"--log-level", "debug", "--set", "kafka.client.debug=security,broker,conf"}, &roles);
  ASSERT_FALSE(HasFailure());

  for (auto& role : roles) {
    HttpClient client(role->port());
    HttpResult metrics = client.Get("/metrics");
    ASSERT_EQ(metrics.status, 200);
    EXPECT_THAT(metrics.body, Not(HasSubstr(kSaslPassword))) << role->command() << " /metrics";
    // The debug output is there, and it talked about SASL, without the secret.
    std::string printed = role->Output();
    EXPECT_THAT(printed, HasSubstr("SCRAM-SHA-512")) << role->command();
    EXPECT_THAT(printed, HasSubstr("sasl.password = [redacted]")) << role->command();
    EXPECT_THAT(printed, Not(HasSubstr(kSaslPassword))) << role->command();
    EXPECT_EQ(role->Terminate(), 0) << role->Output();
    EXPECT_THAT(role->Output(), Not(HasSubstr(kSaslPassword))) << role->command() << " at exit";
  }

  std::vector<std::string> args = {"config", "--brokers", broker_->sasl_brokers()};
  args.insert(args.end(), security.begin(), security.end());
  std::string dump;
  std::chrono::milliseconds took{};
  ASSERT_EQ(RunCatchall(args, &dump, &took), 0) << dump;
  EXPECT_THAT(dump, HasSubstr("# \"sasl.password\" = (a secret, not shown"));
  EXPECT_THAT(dump, Not(HasSubstr(kSaslPassword)));
}

TEST_F(SecuredClusterTest, PlainOverSaslSslCountsExactly) {
  std::vector<std::unique_ptr<ServerProcess>> roles;
  RunFlow(broker_->sasl_brokers(), SaslFlags("PLAIN", kSaslPassword), {}, &roles);
}

TEST_F(SecuredClusterTest, ClientCertificateOverSslCountsExactly) {
  std::vector<std::unique_ptr<ServerProcess>> roles;
  RunFlow(broker_->ssl_brokers(), ClientCertificateFlags(), {}, &roles);
}

TEST_F(SecuredClusterTest, WrongPasswordStopsEveryRoleAtStartNamingTheAuthenticationFailure) {
  const std::string wrong = "not-the-password-7f3a";
  TempDir dir;
  for (const std::string role : {"topics", "ingest", "aggregate", "query"}) {
    std::vector<std::string> args = {role};
    if (role == "topics") {
      args.push_back("create");
    } else {
      args.insert(args.end(), {"--listen", "127.0.0.1:0", "--data-dir", dir.path() + "/" + role,
                               "--log-level", "debug"});
    }
    args.insert(args.end(), {"--brokers", broker_->sasl_brokers()});
    for (const auto& f : SaslFlags("SCRAM-SHA-512", wrong)) args.push_back(f);
    // A long request timeout, so that only failing at the refusal itself
    // (about 0.5 s), not waiting the timeout out, passes the bound below.
    args.insert(args.end(), {"--set", "kafka.timeout_ms=30000"});
    std::string output;
    std::chrono::milliseconds took{};
    int rc = RunCatchall(args, &output, &took);
    EXPECT_EQ(rc, 1) << role << ":\n" << output;
    EXPECT_THAT(output,
                HasSubstr("catchall: Kafka authentication failed at " + broker_->sasl_brokers()))
        << role;
    EXPECT_THAT(output, HasSubstr("invalid credentials with SASL mechanism SCRAM-SHA-512")) << role;
    EXPECT_THAT(output, Not(HasSubstr(wrong))) << role;
    EXPECT_LT(took, 15s) << role;
  }
}

TEST_F(SecuredClusterTest, UntrustedBrokerCertificateStopsARoleAtStartNamingTheTlsFailure) {
  // The client certificate as the only trusted one: it did not sign the
  // broker's.
  std::vector<std::string> args = {"ingest", "--listen", "127.0.0.1:0", "--brokers",
                                   broker_->sasl_brokers()};
  for (const auto& f : SaslFlags("SCRAM-SHA-512", kSaslPassword)) args.push_back(f);
  args.insert(args.end(),
              {"--set", "kafka.client.ssl.ca.location=" + broker_->tls_dir() + "/client.pem"});
  std::string output;
  std::chrono::milliseconds took{};
  EXPECT_EQ(RunCatchall(args, &output, &took), 1) << output;
  EXPECT_THAT(output, HasSubstr("catchall: TLS with Kafka at " + broker_->sasl_brokers()));
  EXPECT_THAT(output, HasSubstr("certificate verify failed"));
  EXPECT_LT(took, 30s);
}

}  // namespace
}  // namespace catchall::testing
