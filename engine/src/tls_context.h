// TlsContext: the server's TLS configuration (certificate chain and private
// key from PEM files, TLS 1.2 at least), replaceable while the server runs.
//
// Each new connection takes the current ssl::context (Current()) and keeps
// it for its lifetime, so Reload() affects only connections accepted after
// it. A reload that fails leaves the current context in place. Private to
// engine: only http_server.cc sees Asio's SSL types.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <mutex>
#include <string>

#include "engine/status.h"

namespace catchall {

class TlsContext {
 public:
  TlsContext(std::string cert_file, std::string key_file);

  // Reads the files and makes the new context current. InvalidArgument (or
  // IoError for an unreadable file) naming the file and OpenSSL's reason;
  // the current context, if any, stays. Thread-safe.
  Status Reload();

  // The context new connections use; null before the first successful
  // Reload(). Thread-safe.
  std::shared_ptr<boost::asio::ssl::context> Current() const;

  const std::string& cert_file() const { return cert_file_; }

 private:
  const std::string cert_file_;
  const std::string key_file_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;  // GUARDED_BY(mu_)
};

// Builds a server context from PEM files: the certificate chain (leaf
// first), its private key, which must match, and TLS 1.2 as the minimum.
Status MakeServerTlsContext(const std::string& cert_file, const std::string& key_file,
                            std::shared_ptr<boost::asio::ssl::context>* out);

}  // namespace catchall
