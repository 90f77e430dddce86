// TLS helpers for tests: self-signed certificates made with OpenSSL's C API
// (no openssl CLI needed), and a synchronous HTTPS client (Boost.Beast over
// OpenSSL) that reports the certificate the server presented.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "support/http_client.h"

namespace catchall::testing {

struct TestCert {
  std::string cert_file;    // PEM certificate
  std::string key_file;     // PEM private key (P-256)
  std::string fingerprint;  // SHA-256 of the DER certificate, lowercase hex
};

// When a certificate is valid, in seconds from now.
struct CertValidity {
  long not_before_s = -60;
  long not_after_s = 24L * 3600;
};

// Writes a self-signed certificate for `common_name` (also its subjectAltName
// for 127.0.0.1 and localhost) and a fresh key to <dir>/<name>.crt and
// <dir>/<name>.key. Fails the test (fatally) if OpenSSL fails.
TestCert MakeSelfSignedCert(const std::string& dir, const std::string& name,
                            const std::string& common_name, CertValidity validity = {});

// SHA-256 fingerprint of the first certificate in a PEM file ("" if none).
std::string PemFingerprint(const std::string& cert_file);

struct TlsClientOptions {
  // Highest protocol version offered (an OpenSSL constant such as
  // TLS1_1_VERSION); 0: the library's highest. For TLS 1.1 or lower the
  // client also drops to security level 0, so that the server, not the
  // client's own policy, is what refuses.
  int max_version = 0;
  // Verify the server against this CA file (PEM); empty: accept any
  // certificate (the tests compare fingerprints instead).
  std::string ca_file;
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
};

// One HTTPS connection to 127.0.0.1:port, kept alive across requests.
class TlsClient {
 public:
  explicit TlsClient(uint16_t port, TlsClientOptions options = {});
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // Connects and handshakes; false with the reason in error() on failure.
  bool Connect();
  const std::string& error() const { return error_; }
  // The server certificate's SHA-256 fingerprint and subject (after Connect).
  std::string PeerFingerprint() const;
  std::string PeerSubject() const;
  // The negotiated protocol ("TLSv1.3").
  std::string Protocol() const;

  // Sends a request on the connection (connecting first if needed). Status
  // 0 with the reason in body on a transport failure. No retry.
  HttpResult Request(std::string_view method, std::string_view target, std::string_view body = {},
                     const std::map<std::string, std::string>& headers = {});

  // Sends `bytes` as they are (pipelined requests, say), connecting first
  // if needed, and returns every byte read until the server ends the
  // connection or the timeout passes. *reset (if given): it ended in a
  // TCP reset, not a close.
  std::string Exchange(std::string_view bytes, bool* reset = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string error_;
};

}  // namespace catchall::testing
