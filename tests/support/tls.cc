#include "support/tls.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cstdio>

namespace catchall::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

std::string Hex(const unsigned char* data, unsigned size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

std::string Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  if (!cert || X509_digest(cert, EVP_sha256(), md, &size) != 1) return {};
  return Hex(md, size);
}

void RunUntilDone(net::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

}  // namespace

TestCert MakeSelfSignedCert(const std::string& dir, const std::string& name,
                            const std::string& common_name, CertValidity validity) {
  TestCert out;
  out.cert_file = dir + "/" + name + ".crt";
  out.key_file = dir + "/" + name + ".key";
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  [&] {
    ASSERT_NE(key, nullptr);
    ASSERT_NE(cert, nullptr);
    X509_set_version(cert, 2);
    // Distinct serials, so that two certificates for one name differ even
    // when made within the same second.
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert), validity.not_before_s);
    X509_gmtime_adj(X509_getm_notAfter(cert), validity.not_after_s);
    X509_set_pubkey(cert, key);
    X509_NAME* subject = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(cert, subject);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* san =
        X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    ASSERT_NE(san, nullptr);
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
    FILE* f = std::fopen(out.cert_file.c_str(), "w");
    ASSERT_NE(f, nullptr) << out.cert_file;
    PEM_write_X509(f, cert);
    std::fclose(f);
    f = std::fopen(out.key_file.c_str(), "w");
    ASSERT_NE(f, nullptr) << out.key_file;
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    out.fingerprint = Fingerprint(cert);
  }();
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

std::string PemFingerprint(const std::string& cert_file) {
  FILE* f = std::fopen(cert_file.c_str(), "r");
  if (!f) return {};
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  std::string fp = Fingerprint(cert);
  X509_free(cert);
  return fp;
}

struct TlsClient::Impl {
  uint16_t port;
  TlsClientOptions options;
  net::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(*stream); }
};

TlsClient::TlsClient(uint16_t port, TlsClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->options = std::move(options);
  SSL_CTX* native = impl_->ctx.native_handle();
  if (impl_->options.max_version != 0) {
    SSL_CTX_set_max_proto_version(native, impl_->options.max_version);
    if (impl_->options.max_version < TLS1_2_VERSION) {
      // OpenSSL 3 refuses TLS < 1.2 below security level 0 on its own; the
      // test wants the server's refusal.
      SSL_CTX_set_security_level(native, 0);
      SSL_CTX_set_min_proto_version(native, 0);
      SSL_CTX_set_cipher_list(native, "DEFAULT:@SECLEVEL=0");
    }
  }
  if (impl_->options.ca_file.empty()) {
    impl_->ctx.set_verify_mode(ssl::verify_none);
  } else {
    impl_->ctx.load_verify_file(impl_->options.ca_file);
    impl_->ctx.set_verify_mode(ssl::verify_peer);
  }
}

TlsClient::~TlsClient() = default;

bool TlsClient::Connect() {
  error_.clear();
  impl_->buffer.clear();
  impl_->stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(impl_->ioc, impl_->ctx);
  // SSL_set_tlsext_host_name without its C cast.
  static char kHost[] = "localhost";
  SSL_ctrl(impl_->stream->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
           kHost);
  impl_->Lowest().expires_after(impl_->options.timeout);
  beast::error_code ec = net::error::would_block;
  impl_->Lowest().async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), impl_->port),
                                [&ec](beast::error_code e) { ec = e; });
  RunUntilDone(impl_->ioc);
  if (!ec) {
    ec = net::error::would_block;
    impl_->stream->async_handshake(ssl::stream_base::client,
                                   [&ec](beast::error_code e) { ec = e; });
    RunUntilDone(impl_->ioc);
  }
  if (ec) {
    error_ = ec.message();
    impl_->stream.reset();
    return false;
  }
  return true;
}

std::string TlsClient::PeerFingerprint() const {
  if (!impl_->stream) return {};
  X509* cert = SSL_get1_peer_certificate(impl_->stream->native_handle());
  std::string fp = Fingerprint(cert);
  X509_free(cert);
  return fp;
}

std::string TlsClient::PeerSubject() const {
  if (!impl_->stream) return {};
  X509* cert = SSL_get1_peer_certificate(impl_->stream->native_handle());
  if (!cert) return {};
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
  X509_free(cert);
  return buf;
}

std::string TlsClient::Protocol() const {
  if (!impl_->stream) return {};
  return SSL_get_version(impl_->stream->native_handle());
}

HttpResult TlsClient::Request(std::string_view method, std::string_view target,
                              std::string_view body,
                              const std::map<std::string, std::string>& headers) {
  HttpResult result;
  if (!impl_->stream && !Connect()) {
    result.body = "connect failed: " + error_;
    return result;
  }
  http::request<http::string_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(beast::string_view(target.data(), target.size()));
  req.version(11);
  req.set(http::field::host, "localhost");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == "POST" || method == "PUT") req.body() = std::string(body);
  req.prepare_payload();
  impl_->Lowest().expires_after(impl_->options.timeout);
  beast::error_code ec = net::error::would_block;
  http::async_write(*impl_->stream, req, [&ec](beast::error_code e, size_t) { ec = e; });
  RunUntilDone(impl_->ioc);
  if (ec) {
    impl_->stream.reset();
    result.body = "write failed: " + ec.message();
    return result;
  }
  result.sent = std::chrono::steady_clock::now();
  http::response_parser<http::string_body> parser;
  parser.body_limit(1ULL << 30);
  impl_->Lowest().expires_after(impl_->options.timeout);
  ec = net::error::would_block;
  http::async_read(*impl_->stream, impl_->buffer, parser,
                   [&ec](beast::error_code e, size_t) { ec = e; });
  RunUntilDone(impl_->ioc);
  if (ec) {
    impl_->stream.reset();
    result.body = "read failed: " + ec.message();
    return result;
  }
  auto& res = parser.get();
  result.status = static_cast<int>(res.result_int());
  result.body = res.body();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    result.headers[name] = std::string(f.value());
  }
  if (!res.keep_alive()) impl_->stream.reset();
  return result;
}

std::string TlsClient::Exchange(std::string_view bytes, bool* reset) {
  if (reset) *reset = false;
  if (!impl_->stream && !Connect()) return {};
  impl_->Lowest().expires_after(impl_->options.timeout);  // one deadline for it all
  beast::error_code ec = net::error::would_block;
  net::async_write(*impl_->stream, net::buffer(bytes.data(), bytes.size()),
                   [&ec](beast::error_code e, size_t) { ec = e; });
  RunUntilDone(impl_->ioc);
  std::string out;
  char buf[4096];
  while (!ec) {
    size_t n = 0;
    ec = net::error::would_block;
    impl_->stream->async_read_some(net::buffer(buf), [&](beast::error_code e, size_t got) {
      ec = e;
      n = got;
    });
    RunUntilDone(impl_->ioc);
    out.append(buf, n);
  }
  if (reset) *reset = ec == net::error::connection_reset;
  impl_->stream.reset();
  return out;
}

}  // namespace catchall::testing
