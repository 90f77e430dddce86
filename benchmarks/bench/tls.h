// The client side of TLS for catchall-bench: one ssl::context per run,
// shared by every connection (OpenSSL allows SSL_new from many threads on a
// context nobody modifies any more).
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "bench/options.h"

namespace catchall::bench {

// A TLS 1.2+ client context that verifies servers against --ca (or the
// system's CAs), or not at all with --insecure. Null with the reason in
// `error` when the CA file cannot be loaded.
std::unique_ptr<boost::asio::ssl::context> MakeClientTlsContext(const BenchOptions& options,
                                                                std::string* error);

}  // namespace catchall::bench
