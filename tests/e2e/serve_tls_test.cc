// TLS on the HTTP listener, end to end: `catchall serve` with
// server.tls_cert_file and server.tls_key_file, talked to over HTTPS by a
// Beast/OpenSSL client with certificates this test makes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.h"
#include "support/json.h"
#include "support/metrics.h"
#include "support/server_process.h"
#include "support/temp_dir.h"
#include "support/tls.h"
#include "support/wait.h"

namespace catchall::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

// Replaces `to` with `from` in one step (rename), as a careful operator's
// rotation does, so the server never reads a half-written file.
void ReplaceFile(const std::string& from, const std::string& to) {
  ASSERT_EQ(std::rename(from.c_str(), to.c_str()), 0) << from << " -> " << to;
}

void CopyFile(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary);
  out << in.rdbuf();
}

class ServeTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    first_ = MakeSelfSignedCert(certs_.path(), "first", "catchall-first");
    // The files the server is configured with; rotations replace them.
    cert_file_ = certs_.path() + "/server.crt";
    key_file_ = certs_.path() + "/server.key";
    CopyFile(first_.cert_file, cert_file_);
    CopyFile(first_.key_file, key_file_);
  }

  std::vector<std::string> ServeArgs() {
    return {"serve",
            "--data-dir",
            data_.path(),
            "--partitions",
            "2",
            "--threshold",
            "5",
            "--set",
            "server.tls_cert_file=" + cert_file_,
            "--set",
            "server.tls_key_file=" + key_file_};
  }

  // Polls GET /readyz over TLS until 200.
  bool WaitReadyTls(ServerProcess& server) {
    return WaitUntil(
        [&] {
          TlsClient c(server.port(), {.timeout = 2s});
          return c.Request("GET", "/readyz").status == 200;
        },
        60s, "the TLS listener to answer /readyz with 200", {&server}, 50ms);
  }

  double HandshakeFailures(uint16_t port) {
    TlsClient c(port);
    return Exposition(c.Request("GET", "/metrics").body)
        .Sum("catchall_http_tls_handshake_failures_total");
  }

  // Sends SIGHUP and waits for the log line that says how the reload went.
  bool Reload(ServerProcess& server, const std::string& expect_in_log) {
    size_t before = CountOf(server.Output(), expect_in_log);
    EXPECT_EQ(kill(server.pid(), SIGHUP), 0);
    return WaitUntil([&] { return CountOf(server.Output(), expect_in_log) > before; }, 10s,
                     "the log to say '" + expect_in_log + "' after SIGHUP", {&server});
  }

  TempDir certs_;
  TempDir data_;
  TestCert first_;
  std::string cert_file_;
  std::string key_file_;
};

TEST_F(ServeTlsTest, PutsAndGetsOverTlsCountExactly) {
  ServerProcess server(ServeArgs());
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(WaitReadyTls(server));
  TlsClient client(server.port());
  ASSERT_TRUE(client.Connect()) << client.error();
  EXPECT_EQ(client.PeerFingerprint(), first_.fingerprint);
  EXPECT_THAT(client.PeerSubject(), HasSubstr("CN=catchall-first"));
  for (int i = 0; i < 7; ++i) {
    ASSERT_EQ(client.Request("PUT", "/events/tls.example/delivered").status, 204) << i;
  }
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(client.Request("PUT", "/events/tls.example/bounced").status, 204) << i;
  }
  HttpResult batch = client.Request("POST", "/events",
                                    "{\"domain\":\"tls.example\",\"type\":\"delivered\"}\n"
                                    "{\"domain\":\"tls.example\",\"type\":\"delivered\"}\n",
                                    {{"Content-Type", "application/x-ndjson"}});
  ASSERT_EQ(batch.status, 200) << batch.body;
  HttpResult got;
  ASSERT_TRUE(WaitUntil(
      [&] {
        got = client.Request("GET", "/domains/tls.example");
        return JsonInt(got.body, "delivered") == 9 && JsonInt(got.body, "bounced") == 2;
      },
      30s, [&] { return "9 delivered and 2 bounced, last answer: " + got.body; }, {&server}));
  EXPECT_EQ(JsonString(got.body, "status"), "not catch-all");
  EXPECT_EQ(HandshakeFailures(server.port()), 0);
}

// Found by a probe: over server.max_connections a TLS client gets its 503
// only after a handshake, and one that never began its handshake kept its
// descriptor for server.io_timeout_ms (30 s), past the limit, until the
// process ran out of descriptors. It now has about a second.
TEST_F(ServeTlsTest, AConnectionOverTheLimitGetsItsAnswerOrIsClosedSoon) {
  std::vector<std::string> args = ServeArgs();
  args.insert(args.end(), {"--set", "server.max_connections=2"});
  ServerProcess server(args);
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(WaitReadyTls(server));
  // Two silent connections take both slots (each may wait for its
  // handshake for the io timeout, as a slow client within the limit may).
  // The readiness probe's connection may still count when they arrive: one
  // of them is then over the limit and closed within a second, and is
  // opened again.
  auto closed = [](int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;  // readable: EOF or a reset, nothing was sent to it
  };
  std::vector<int> fds;
  for (int i = 0; i < 2; ++i) {
    fds.push_back(ConnectIdle(server.port()));
    ASSERT_GE(fds.back(), 0);
  }
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::this_thread::sleep_for(1500ms);  // past the refused connections' second
        bool all_open = true;
        for (int& fd : fds) {
          if (!closed(fd)) continue;
          all_open = false;
          ::close(fd);
          fd = ConnectIdle(server.port());
        }
        return all_open;
      },
      20s, "two silent connections held within the limit", {&server}));
  // A live client over the limit gets the 503 over TLS.
  ASSERT_TRUE(WaitUntil(
      [&] {
        TlsClient client(server.port());
        HttpResult r = client.Request("GET", "/healthz");
        return r.status == 503 && JsonString(r.body, "code") == "too_many_connections";
      },
      10s, "a 503 too_many_connections over TLS", {&server}));
  // A silent one over the limit is closed within seconds, not 30.
  const int silent = ConnectIdle(server.port());
  ASSERT_GE(silent, 0);
  const timeval timeout{10, 0};
  ::setsockopt(silent, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  char byte = 0;
  const ssize_t n = ::recv(silent, &byte, 1, 0);
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET))
      << "still open after 10 s: " << (n < 0 ? std::strerror(errno) : "data");
  ::close(silent);
  for (int fd : fds) ::close(fd);
}

TEST_F(ServeTlsTest, ProtocolsOlderThanTls12AreRefused) {
  ServerProcess server(ServeArgs());
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(WaitReadyTls(server));
  for (int version : {TLS1_1_VERSION, TLS1_VERSION}) {
    TlsClient old(server.port(), {.max_version = version});
    EXPECT_FALSE(old.Connect()) << "TLS version " << std::hex << version << " was accepted";
  }
  // The refusals were the server's: it counted both handshakes.
  EXPECT_EQ(HandshakeFailures(server.port()), 2);
  TlsClient tls12(server.port(), {.max_version = TLS1_2_VERSION});
  ASSERT_TRUE(tls12.Connect()) << tls12.error();
  EXPECT_EQ(tls12.Protocol(), "TLSv1.2");
  EXPECT_EQ(tls12.Request("GET", "/healthz").status, 200);
}

TEST_F(ServeTlsTest, PlainHttpToTheTlsPortIsRefusedAndServingGoesOn) {
  ServerProcess server(ServeArgs());
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(WaitReadyTls(server));
  TlsClient before(server.port());
  ASSERT_TRUE(before.Connect()) << before.error();

  // A plain HTTP request learns why, in a plain HTTP answer.
  bool closed = false;
  std::string answer =
      RawExchange(server.port(), "PUT /events/plain.example/delivered HTTP/1.1\r\nHost: x\r\n\r\n",
                  5s, &closed);
  EXPECT_THAT(answer, HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(answer, HasSubstr("plain_http_to_https_port"));
  EXPECT_TRUE(closed);
  // Garbage, and a connection dropped mid-handshake, just close.
  RawExchange(server.port(), std::string(64, '\x16'), 5s, &closed);
  EXPECT_TRUE(closed);
  RawExchange(server.port(), std::string("\x16\x03\x01\x02\x00\x01", 6), 200ms);

  EXPECT_TRUE(server.Running()) << server.Output();
  EXPECT_EQ(before.Request("PUT", "/events/tls.example/delivered").status, 204);
  TlsClient after(server.port());
  EXPECT_EQ(after.Request("PUT", "/events/tls.example/delivered").status, 204);
  EXPECT_GE(HandshakeFailures(server.port()), 2);
  // The plain request was not counted as an event.
  HttpResult got;
  ASSERT_TRUE(WaitUntil(
      [&] {
        got = after.Request("GET", "/domains/tls.example");
        return JsonInt(got.body, "delivered") == 2;
      },
      30s, [&] { return "2 delivered, last answer: " + got.body; }, {&server}));
  EXPECT_EQ(JsonInt(after.Request("GET", "/domains/plain.example").body, "delivered"), 0);
}

TEST_F(ServeTlsTest, SighupRotatesTheCertificateForNewConnectionsOnly) {
  ServerProcess server(ServeArgs());
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(WaitReadyTls(server));
  TlsClient old_conn(server.port());
  ASSERT_TRUE(old_conn.Connect()) << old_conn.error();
  ASSERT_EQ(old_conn.PeerFingerprint(), first_.fingerprint);

  TestCert second = MakeSelfSignedCert(certs_.path(), "second", "catchall-second");
  ASSERT_NE(second.fingerprint, first_.fingerprint);
  ReplaceFile(second.cert_file, cert_file_);
  ReplaceFile(second.key_file, key_file_);
  // Before SIGHUP the files changed but the server has not reread them.
  {
    TlsClient c(server.port());
    ASSERT_TRUE(c.Connect()) << c.error();
    EXPECT_EQ(c.PeerFingerprint(), first_.fingerprint);
  }
  ASSERT_TRUE(Reload(server, "reloaded the TLS certificate"));

  TlsClient new_conn(server.port());
  ASSERT_TRUE(new_conn.Connect()) << new_conn.error();
  EXPECT_EQ(new_conn.PeerFingerprint(), second.fingerprint);
  EXPECT_THAT(new_conn.PeerSubject(), HasSubstr("CN=catchall-second"));
  EXPECT_EQ(new_conn.Request("PUT", "/events/rotate.example/delivered").status, 204);
  // The connection opened before keeps its session and keeps working.
  EXPECT_EQ(old_conn.PeerFingerprint(), first_.fingerprint);
  EXPECT_EQ(old_conn.Request("PUT", "/events/rotate.example/delivered").status, 204);
  EXPECT_EQ(old_conn.Request("GET", "/healthz").status, 200);
}

TEST_F(ServeTlsTest, ABadCertificateOnReloadKeepsThePreviousOne) {
  ServerProcess server(ServeArgs());
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(WaitReadyTls(server));
  TlsClient open_conn(server.port());
  ASSERT_TRUE(open_conn.Connect()) << open_conn.error();

  // A truncated certificate, then a key of another certificate.
  std::ofstream(cert_file_, std::ios::trunc) << "-----BEGIN CERTIFICATE-----\nMIIB\n";
  ASSERT_TRUE(Reload(server, "kept the previous TLS certificate"));
  EXPECT_THAT(server.Output(), HasSubstr(cert_file_));
  TlsClient c1(server.port());
  ASSERT_TRUE(c1.Connect()) << c1.error();
  EXPECT_EQ(c1.PeerFingerprint(), first_.fingerprint);

  TestCert other = MakeSelfSignedCert(certs_.path(), "other", "catchall-other");
  CopyFile(first_.cert_file, cert_file_);
  CopyFile(other.key_file, key_file_);
  ASSERT_TRUE(Reload(server, "does not match"));
  TlsClient c2(server.port());
  ASSERT_TRUE(c2.Connect()) << c2.error();
  EXPECT_EQ(c2.PeerFingerprint(), first_.fingerprint);
  EXPECT_EQ(c2.Request("PUT", "/events/kept.example/delivered").status, 204);
  EXPECT_EQ(open_conn.Request("GET", "/healthz").status, 200);
  EXPECT_TRUE(server.Running());
}

// An idle keep-alive client does not read until its next request, so it
// never answers the server's close_notify: a drain that waited for that
// answer held SIGTERM up by 5 s per idle HTTPS client.
TEST_F(ServeTlsTest, SigtermWithAnIdleTlsClientDoesNotWaitForIt) {
  std::vector<std::string> args = ServeArgs();
  args.insert(args.end(), {"--set", "server.shutdown_timeout_ms=60000"});
  ServerProcess server(args);
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(WaitReadyTls(server));
  TlsClient idle(server.port());
  ASSERT_EQ(idle.Request("GET", "/healthz").status, 200);
  const auto signalled = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  // Normally well under a second; the bug took at least 5 s.
  ASSERT_TRUE(
      WaitUntil([&] { return server.Output().find("stopped cleanly") != std::string::npos; }, 60s,
                "the server to stop", {}, 20ms));
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, 4s) << server.Output();
}

// As over plain HTTP (ServeBadInputTest): requests pipelined behind the one
// that ends the connection are not read, and closing with them unread reset
// the connection, destroying responses the client had not read yet.
TEST_F(ServeTlsTest, ResponsesBeforeAConnectionsLastRequestSurviveTheRequestsPipelinedAfterIt) {
  ServerProcess server(ServeArgs());
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(WaitReadyTls(server));
  const std::string healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    std::string pipeline;
    for (int i = 0; i < 200; ++i) pipeline += healthz;
    pipeline += "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // More than the server's reads take in at once, so that some stay in
    // the socket.
    for (int i = 0; i < 3000; ++i) pipeline += healthz;
    TlsClient client(server.port());
    bool reset = false;
    std::string reply = client.Exchange(pipeline, &reset);
    EXPECT_EQ(CountOf(reply, "HTTP/1.1 200 OK\r\n"), 201u);
    EXPECT_FALSE(reset);
  }
}

// Found by a probe: an expired certificate, which every client refuses,
// and a private key other users can read were taken without a word. Both
// still start (a certificate renewed late must not keep the node down),
// with a warning.
TEST_F(ServeTlsTest, AnExpiredCertificateOrAKeyOthersCanReadIsWarnedOf) {
  TestCert expired = MakeSelfSignedCert(certs_.path(), "expired", "catchall-expired",
                                        {.not_before_s = -7200, .not_after_s = -3600});
  ASSERT_EQ(chmod(expired.key_file.c_str(), 0644), 0);
  {
    ServerProcess server({"serve", "--data-dir", data_.path() + "/expired", "--set",
                          "server.tls_cert_file=" + expired.cert_file, "--set",
                          "server.tls_key_file=" + expired.key_file});
    ASSERT_TRUE(server.started());
    ASSERT_TRUE(WaitUntil([&] { return server.Output().find("listening") != std::string::npos; },
                          10s, "the server to listen", {&server}));
    EXPECT_THAT(server.Output(),
                HasSubstr("the certificate in '" + expired.cert_file + "' expired on"));
    EXPECT_THAT(server.Output(), HasSubstr("is open to other users (mode 0644)"));
    EXPECT_EQ(server.Terminate(), 0) << server.Output();
  }
  // A current certificate and a key only its owner and group read (0640,
  // the usual ssl-cert group layout): no warning.
  ASSERT_EQ(chmod(key_file_.c_str(), 0640), 0);
  ServerProcess server(ServeArgs());
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(WaitReadyTls(server));
  EXPECT_THAT(server.Output(), Not(HasSubstr("expired on")));
  EXPECT_THAT(server.Output(), Not(HasSubstr("open to other users")));
  // A reload to a certificate that is not valid yet is warned of too.
  TestCert future = MakeSelfSignedCert(certs_.path(), "future", "catchall-future",
                                       {.not_before_s = 3600, .not_after_s = 7200});
  ASSERT_EQ(chmod(future.key_file.c_str(), 0600), 0);
  ReplaceFile(future.cert_file, cert_file_);
  ReplaceFile(future.key_file, key_file_);
  ASSERT_TRUE(Reload(server, "reloaded the TLS certificate"));
  EXPECT_THAT(server.Output(),
              HasSubstr("the certificate in '" + cert_file_ + "' is not valid before"));
  EXPECT_EQ(server.Terminate(), 0) << server.Output();
}

// A listener that cannot speak TLS as configured must not start (and
// certainly not fall back to plain HTTP).
TEST_F(ServeTlsTest, ABadCertificateOrKeyAtStartFailsTheStartClearly) {
  struct Case {
    std::string what;
    std::vector<std::string> settings;
    std::vector<std::string> expect;  // in the output
  };
  TestCert other = MakeSelfSignedCert(certs_.path(), "other", "catchall-other");
  const std::string missing = certs_.path() + "/missing.crt";
  const std::string garbage = certs_.path() + "/garbage.crt";
  std::ofstream(garbage) << "not a certificate\n";
  // Opening a FIFO blocks until a writer comes: the start hung (and a
  // SIGHUP reload left SIGTERM unheard) before files were checked first.
  const std::string fifo = certs_.path() + "/fifo.key";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // A key with a pass phrase: OpenSSL's default asked for it on the
  // terminal, and the start hung there.
  const std::string encrypted = certs_.path() + "/encrypted.key";
  {
    FILE* in = fopen(first_.key_file.c_str(), "r");
    ASSERT_NE(in, nullptr);
    EVP_PKEY* key = PEM_read_PrivateKey(in, nullptr, nullptr, nullptr);
    fclose(in);
    ASSERT_NE(key, nullptr);
    FILE* out = fopen(encrypted.c_str(), "w");
    ASSERT_NE(out, nullptr);
    char pass[] = "secret";
    EXPECT_EQ(PEM_write_PrivateKey(out, key, EVP_aes_256_cbc(),
                                   reinterpret_cast<unsigned char*>(pass), 6, nullptr, nullptr),
              1);
    fclose(out);
    EVP_PKEY_free(key);
  }
  const std::vector<Case> cases = {
      {"mismatched key",
       {"server.tls_cert_file=" + first_.cert_file, "server.tls_key_file=" + other.key_file},
       {"server.tls_key_file", other.key_file, first_.cert_file}},
      {"missing certificate",
       {"server.tls_cert_file=" + missing, "server.tls_key_file=" + first_.key_file},
       {"server.tls_cert_file", "cannot read", missing, "No such file or directory"}},
      {"not a certificate",
       {"server.tls_cert_file=" + garbage, "server.tls_key_file=" + first_.key_file},
       {"server.tls_cert_file", garbage, "not a PEM certificate"}},
      {"key is a FIFO",
       {"server.tls_cert_file=" + first_.cert_file, "server.tls_key_file=" + fifo},
       {"server.tls_key_file", fifo, "is a FIFO, not a regular file"}},
      {"certificate is a directory",
       {"server.tls_cert_file=" + certs_.path(), "server.tls_key_file=" + first_.key_file},
       {"server.tls_cert_file", "is a directory, not a regular file"}},
      {"encrypted key",
       {"server.tls_cert_file=" + first_.cert_file, "server.tls_key_file=" + encrypted},
       {"server.tls_key_file", encrypted, "is encrypted"}},
      {"certificate without key",
       {"server.tls_cert_file=" + first_.cert_file},
       {"server.tls_key_file", "together"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    TempDir data;
    std::vector<std::string> args = {"serve", "--data-dir", data.path(), "--listen", "127.0.0.1:0"};
    for (const auto& s : c.settings) args.insert(args.end(), {"--set", s});
    std::string output;
    int code = RunBinary(args, &output, 30s);
    EXPECT_NE(code, 0) << output;
    for (const auto& e : c.expect) EXPECT_THAT(output, HasSubstr(e));
    EXPECT_THAT(output, ::testing::Not(HasSubstr("listening on")));
  }
}

}  // namespace
}  // namespace catchall::testing
