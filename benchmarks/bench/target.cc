#include "bench/target.h"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <charconv>

namespace catchall::bench {

bool ParseTargetUrl(std::string_view url, Target* target, std::string* error,
                    std::string_view flag) {
  constexpr std::string_view kHttp = "http://";
  constexpr std::string_view kHttps = "https://";
  const bool tls = url.substr(0, kHttps.size()) == kHttps;
  if (!tls && url.substr(0, kHttp.size()) != kHttp) {
    *error = fmt::format("{} must start with http:// or https:// (got '{}')", flag, url);
    return false;
  }
  std::string_view rest = url.substr(tls ? kHttps.size() : kHttp.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  std::string_view host = authority;
  uint16_t port = tls ? 443 : 80;
  size_t colon = authority.rfind(':');
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      *error = fmt::format("bad IPv6 address in {} '{}'", flag, url);
      return false;
    }
    host = authority.substr(1, close - 1);
    colon = authority.find(':', close);
  } else if (colon != std::string_view::npos) {
    host = authority.substr(0, colon);
  }
  if (colon != std::string_view::npos) {
    std::string_view p = authority.substr(colon + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || end != p.data() + p.size() || port == 0) {
      *error = fmt::format("bad port in {} '{}'", flag, url);
      return false;
    }
  }
  if (host.empty()) {
    *error = fmt::format("no host in {} '{}'", flag, url);
    return false;
  }
  target->host = std::string(host);
  target->port = port;
  target->tls = tls;
  target->host_header = std::string(authority);
  target->base_path = std::string(path);
  return true;
}

bool ResolveTarget(Target* target, std::string* error) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(target->host, std::to_string(target->port), ec);
  if (ec || results.empty()) {
    *error = fmt::format("cannot resolve '{}': {}", target->host, ec ? ec.message() : "no address");
    return false;
  }
  // Prefer IPv4: "localhost" often lists ::1 first while servers listen on
  // 127.0.0.1.
  target->endpoint = results.begin()->endpoint();
  for (const auto& entry : results) {
    if (entry.endpoint().address().is_v4()) {
      target->endpoint = entry.endpoint();
      break;
    }
  }
  return true;
}

bool SameServer(const Target& a, const Target& b) {
  return a.endpoint == b.endpoint && a.tls == b.tls && a.host_header == b.host_header &&
         a.base_path == b.base_path;
}

bool ResolveTargets(std::string_view target_url, std::string_view query_url, Targets* targets,
                    std::string* error) {
  if (!ParseTargetUrl(target_url, &targets->write, error, "--target") ||
      !ResolveTarget(&targets->write, error)) {
    return false;
  }
  if (query_url.empty() || query_url == target_url) {
    targets->read = targets->write;
    targets->split = false;
    return true;
  }
  if (!ParseTargetUrl(query_url, &targets->read, error, "--query-target") ||
      !ResolveTarget(&targets->read, error)) {
    return false;
  }
  targets->split = !SameServer(targets->write, targets->read);
  return true;
}

}  // namespace catchall::bench
