// The server under test, as given by --target (http://host:port[/prefix]).
#pragma once

#include <boost/asio/ip/tcp.hpp>
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
};

// Parses an http:// URL; on failure returns false and says why in `error`.
bool ParseTargetUrl(std::string_view url, Target* target, std::string* error);

// Resolves target->host into target->endpoint (the first IPv4 address, else
// the first address).
bool ResolveTarget(Target* target, std::string* error);

}  // namespace catchall::bench
