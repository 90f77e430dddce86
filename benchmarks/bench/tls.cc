#include "bench/tls.h"

#include <fmt/format.h>
#include <openssl/ssl.h>

namespace catchall::bench {

namespace ssl = boost::asio::ssl;

std::unique_ptr<ssl::context> MakeClientTlsContext(const BenchOptions& options,
                                                   std::string* error) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (options.insecure) {
    ctx->set_verify_mode(ssl::verify_none);
    return ctx;
  }
  if (options.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(options.ca_file, ec);
  }
  if (ec) {
    *error = fmt::format("cannot load the CA certificates{}: {}",
                         options.ca_file.empty() ? "" : " from " + options.ca_file, ec.message());
    return nullptr;
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

}  // namespace catchall::bench
