#include "tls_context.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <system_error>

#include "regular_file.h"

namespace catchall {

namespace ssl = boost::asio::ssl;

namespace {

// OpenSSL's reasons for the last failure, root cause first ("bad base64
// decode; ...:PEM lib"), draining its thread-local error queue so the next
// call starts clean. Asio has already taken the root cause off the queue
// into `ec`.
std::string OpenSslReason(const boost::system::error_code& ec) {
  std::string reason = ec ? ec.message() : "";
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!reason.empty()) reason += "; ";
    reason += buf;
  }
  return reason.empty() ? "unknown error" : reason;
}

Status Readable(const std::string& setting, const std::string& file) {
  if (file.empty()) return Status::InvalidArgument(fmt::format("{} is empty", setting));
  CATCHALL_RETURN_IF_ERROR(RequireRegularFile(setting, file));
  // The system's reason, so that a missing file and a permission problem
  // do not read alike.
  errno = 0;
  std::ifstream in(file);
  if (!in) {
    int err = errno;
    return Status::IoError(
        fmt::format("{}: cannot read '{}': {}", setting, file,
                    err != 0 ? std::generic_category().message(err) : "unknown error"));
  }
  return Status::Ok();
}

// What would not stop the start but is almost surely a mistake, logged as
// a warning at start and on each reload (a probe saw an expired
// certificate, which every client refuses, and a world-readable key taken
// without a word).
void WarnAboutTlsFiles(ssl::context& ctx, const std::string& cert_file,
                       const std::string& key_file) {
  X509* leaf = SSL_CTX_get0_certificate(ctx.native_handle());
  auto when = [](const ASN1_TIME* t) {
    std::string text = "an unreadable date";
    if (BIO* bio = BIO_new(BIO_s_mem())) {
      if (ASN1_TIME_print(bio, t) == 1) {
        char* data = nullptr;
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0) text.assign(data, static_cast<size_t>(n));
      }
      BIO_free(bio);
    }
    return text;
  };
  if (leaf != nullptr) {
    const ASN1_TIME* not_after = X509_get0_notAfter(leaf);
    const ASN1_TIME* not_before = X509_get0_notBefore(leaf);
    if (X509_cmp_current_time(not_after) < 0) {
      spdlog::warn(
          "server.tls_cert_file: the certificate in '{}' expired on {}; clients will refuse "
          "it: put a current one in place and send SIGHUP",
          cert_file, when(not_after));
    } else if (X509_cmp_current_time(not_before) > 0) {
      spdlog::warn(
          "server.tls_cert_file: the certificate in '{}' is not valid before {}; clients will "
          "refuse it until then (is the clock right?)",
          cert_file, when(not_before));
    }
  }
  struct stat st {};
  // Group read is the usual layout (0640, group ssl-cert): not warned of.
  if (::stat(key_file.c_str(), &st) == 0 && (st.st_mode & (S_IWGRP | S_IRWXO)) != 0) {
    spdlog::warn(
        "server.tls_key_file: '{}' is open to other users (mode {:04o}); `chmod 600` it (or "
        "640, with a group only catchall's user is in), so that no one else can read or "
        "replace the private key",
        key_file, st.st_mode & 07777);
  }
}

}  // namespace

Status MakeServerTlsContext(const std::string& cert_file, const std::string& key_file,
                            std::shared_ptr<ssl::context>* out) {
  CATCHALL_RETURN_IF_ERROR(Readable("server.tls_cert_file", cert_file));
  CATCHALL_RETURN_IF_ERROR(Readable("server.tls_key_file", key_file));
  ERR_clear_error();
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  // TLS 1.0 and 1.1 are deprecated (RFC 8996); set it here rather than rely
  // on the system's openssl.cnf, which may allow them.
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) {
    return Status::Internal("cannot set TLS 1.2 as the minimum version: " + OpenSslReason({}));
  }
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    return Status::InvalidArgument(
        fmt::format("server.tls_cert_file: '{}' is not a PEM certificate chain: {}", cert_file,
                    OpenSslReason(ec)));
  }
  // An encrypted key made OpenSSL's default callback prompt for a pass
  // phrase on the terminal (or read stdin): the start hung, and a SIGHUP
  // reload blocked the signal thread, so SIGTERM went unheard (a review,
  // thirteenth session). No prompt: an encrypted key is refused, saying so.
  bool asked_for_pass_phrase = false;
  SSL_CTX_set_default_passwd_cb(ctx->native_handle(),
                                [](char* /*buf*/, int /*size*/, int /*rw*/, void* asked) {
                                  if (asked) *static_cast<bool*>(asked) = true;
                                  return 0;
                                });
  SSL_CTX_set_default_passwd_cb_userdata(ctx->native_handle(), &asked_for_pass_phrase);
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  SSL_CTX_set_default_passwd_cb_userdata(ctx->native_handle(), nullptr);
  if (asked_for_pass_phrase) {
    ERR_clear_error();
    return Status::InvalidArgument(fmt::format(
        "server.tls_key_file: the key in '{}' is encrypted; catchall takes an unencrypted key "
        "(readable by its user only): `openssl pkey -in {} -out KEY` writes one",
        key_file, key_file));
  }
  const auto code = static_cast<unsigned long>(ec.value());
  if (ec && ec.category() == boost::asio::error::get_ssl_category() &&
      ERR_GET_LIB(code) == ERR_LIB_X509 && ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH) {
    ERR_clear_error();
    return Status::InvalidArgument(
        fmt::format("server.tls_key_file: the key in '{}' does not match the certificate in '{}'",
                    key_file, cert_file));
  }
  if (ec) {
    return Status::InvalidArgument(fmt::format(
        "server.tls_key_file: '{}' is not a PEM private key: {}", key_file, OpenSslReason(ec)));
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return Status::InvalidArgument(
        fmt::format("server.tls_key_file: the key in '{}' does not match the certificate in "
                    "'{}': {}",
                    key_file, cert_file, OpenSslReason({})));
  }
  *out = std::move(ctx);
  return Status::Ok();
}

TlsContext::TlsContext(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {}

Status TlsContext::Reload() {
  std::shared_ptr<ssl::context> fresh;
  CATCHALL_RETURN_IF_ERROR(MakeServerTlsContext(cert_file_, key_file_, &fresh));
  WarnAboutTlsFiles(*fresh, cert_file_, key_file_);
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(fresh);
  return Status::Ok();
}

std::shared_ptr<ssl::context> TlsContext::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

}  // namespace catchall
