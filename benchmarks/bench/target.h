// The servers under test, as given by --target and --query-target
// (http[s]://host:port[/prefix]).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace catchall::bench {

struct Target {
  std::string host;  // as written in the URL
  uint16_t port = 80;
  std::string host_header;                  // "host:port"
  std::string base_path;                    // "" or "/prefix" (no trailing slash)
  boost::asio::ip::tcp::endpoint endpoint;  // resolved once, at start
  bool tls = false;                         // https://
  // The client TLS context every connection to this target shares (set by
  // the runner when tls; outlives the connections).
  boost::asio::ssl::context* tls_context = nullptr;
};

// Parses an http:// or https:// URL; on failure returns false and says why in `error`
// (naming `flag`, the option the URL came from).
bool ParseTargetUrl(std::string_view url, Target* target, std::string* error,
                    std::string_view flag = "--target");

// Resolves target->host into target->endpoint (the first IPv4 address, else
// the first address).
bool ResolveTarget(Target* target, std::string* error);

// Whether two targets are the same server: same address, Host header and
// path prefix (after ResolveTarget).
bool SameServer(const Target& a, const Target& b);

// Where a run sends its requests. Writes (PUT and POST /events, the
// freshness probes' PUTs) go to `write` (--target); reads (GET /domains,
// POST /domains/lookup of the verifier, the freshness probes' polls) go to
// `read` (--query-target, by default the same URL). `split` when they are
// different servers, e.g. a cluster's ingest and query nodes.
struct Targets {
  Target write;
  Target read;
  bool split = false;
};

// Parses and resolves both URLs; an empty `query_url` means `target_url`.
bool ResolveTargets(std::string_view target_url, std::string_view query_url, Targets* targets,
                    std::string* error);

}  // namespace catchall::bench
