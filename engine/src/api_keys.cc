#include "engine/api_keys.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <strings.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "regular_file.h"

namespace catchall {

namespace {

constexpr std::string_view kScopeNames[kApiScopeCount] = {"ingest", "query", "metrics"};

constexpr uint8_t Bit(ApiScope scope) {
  return static_cast<uint8_t>(1U << static_cast<int>(scope));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool ParseHexDigest(std::string_view hex, Sha256Digest* out) {
  if (hex.size() != 2 * out->size()) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;  // upper case too: the format is sha256sum's lower case
  };
  for (size_t i = 0; i < out->size(); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

}  // namespace

std::string_view ApiScopeName(ApiScope scope) { return kScopeNames[static_cast<size_t>(scope)]; }

RouteAccess AccessOfRoute(std::string_view route, ApiScope* scope) {
  if (route == "/healthz" || route == "/readyz") return RouteAccess::kOpen;
  if (route == "/events") {
    *scope = ApiScope::kIngest;
  } else if (route == "/domains") {
    *scope = ApiScope::kQuery;
  } else if (route == "/metrics") {
    *scope = ApiScope::kMetrics;
  } else {
    return RouteAccess::kNoScope;
  }
  return RouteAccess::kScoped;
}

std::string_view AuthOutcomeName(AuthOutcome outcome) {
  switch (outcome) {
    case AuthOutcome::kAllowed: return "allowed";
    case AuthOutcome::kMissing: return "missing";
    case AuthOutcome::kMalformed: return "malformed";
    case AuthOutcome::kUnknown: return "unknown";
    case AuthOutcome::kScope: return "scope";
  }
  return "unknown";
}

AuthOutcome ParseBearer(std::string_view header, std::string_view* token, std::string_view* why) {
  // Beast strips the optional whitespace around a field value; a client
  // library may not, so it is trimmed here too.
  std::string_view h = Trim(header);
  if (h.empty()) return AuthOutcome::kMissing;
  constexpr std::string_view kScheme = "Bearer";
  if (h.size() == kScheme.size() && strncasecmp(h.data(), kScheme.data(), kScheme.size()) == 0) {
    *why = "the Authorization header has no key after 'Bearer'";
    return AuthOutcome::kMalformed;
  }
  if (h.size() <= kScheme.size() || strncasecmp(h.data(), kScheme.data(), kScheme.size()) != 0 ||
      h[kScheme.size()] != ' ') {
    *why = "the Authorization header must be 'Bearer <key>'";
    return AuthOutcome::kMalformed;
  }
  h.remove_prefix(kScheme.size());
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  if (h.empty()) {
    *why = "the Authorization header has no key after 'Bearer'";
    return AuthOutcome::kMalformed;
  }
  if (h.size() > kMaxApiKeyBytes) {
    *why = "the API key is longer than 1024 bytes";
    return AuthOutcome::kMalformed;
  }
  for (char c : h) {
    auto b = static_cast<unsigned char>(c);
    if (b < 0x21 || b > 0x7e) {
      *why = "the API key must be printable ASCII with no spaces";
      return AuthOutcome::kMalformed;
    }
  }
  *token = h;
  return AuthOutcome::kAllowed;
}

Sha256Digest Sha256(std::string_view data) {
  // Fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up in its
  // providers on every digest, which doubled the gate's cost per request
  // (catchall-micro BM_RouterHandlePut_Auth/1: ~360 ns with it, see
  // benchmarks/micro/README.md). Never freed: it lives as long as the process.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  Sha256Digest digest{};
  unsigned int size = 0;
  // EVP_Digest fails only when the process is out of memory or the default
  // provider is missing; a zero digest then matches no stored key (whose
  // preimage is unknown), so the request is refused rather than let in.
  if (sha256 == nullptr ||
      EVP_Digest(data.data(), data.size(), digest.data(), &size, sha256, nullptr) != 1) {
    digest.fill(0);
  }
  return digest;
}

std::string Sha256Hex(std::string_view data) {
  Sha256Digest d = Sha256(data);
  std::string hex;
  hex.reserve(2 * d.size());
  for (unsigned char b : d) fmt::format_to(std::back_inserter(hex), "{:02x}", b);
  return hex;
}

Status ApiKeys::Add(std::string_view text, std::string_view source, bool semicolons_separate) {
  std::vector<Entry> added;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t end = semicolons_separate ? text.find_first_of("\n;") : text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_no;
    // Messages name the line but never echo it: someone who pasted a key
    // instead of its hash must not find the key in the log.
    auto bad = [&](std::string_view what) {
      return Status::InvalidArgument(fmt::format(
          "{} {} {}: {}", source, semicolons_separate ? "entry" : "line", line_no, what));
    };
    line = Trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    size_t space = line.find_first_of(" \t");
    if (space == std::string_view::npos) return bad("expected '<sha256 hex> <scope>[,<scope>...]'");
    Entry entry{};
    if (!ParseHexDigest(line.substr(0, space), &entry.digest)) {
      return bad("the key's hash must be 64 lowercase hex digits (printf %s \"$KEY\" | sha256sum)");
    }
    std::string_view scopes = Trim(line.substr(space + 1));
    while (true) {
      size_t comma = scopes.find(',');
      std::string_view name = Trim(scopes.substr(0, comma));
      uint8_t bit = 0;
      for (size_t i = 0; i < kApiScopeCount; ++i) {
        if (name == kScopeNames[i]) bit = Bit(static_cast<ApiScope>(i));
      }
      if (bit == 0) {
        return bad(name.empty() ? std::string("a scope is empty")
                                : fmt::format("unknown scope '{}' (known: ingest, query, metrics)",
                                              name.substr(0, 32)));
      }
      entry.scopes |= bit;
      if (comma == std::string_view::npos) break;
      scopes.remove_prefix(comma + 1);
    }
    // Two lines for one key would leave its scopes to the order of the
    // lines; refusing says which line to fix.
    for (const Entry& e : added) {
      if (e.digest == entry.digest) return bad("this key's hash is listed already");
    }
    // In an earlier source: a probe appended a key to the file that
    // auth.keys held too, and was told only that the unchanged auth.keys
    // entry was the duplicate. The file is read first; say where.
    for (const Entry& e : entries_) {
      if (e.digest == entry.digest) {
        return bad(
            fmt::format("this key's hash is listed already in {} (read first): keep one "
                        "of the two",
                        sources_));
      }
    }
    added.push_back(entry);
  }
  entries_.insert(entries_.end(), added.begin(), added.end());
  if (!added.empty()) {
    sources_ += sources_.empty() ? std::string(source) : ", " + std::string(source);
  }
  return Status::Ok();
}

AuthOutcome ApiKeys::Check(std::string_view authorization, std::optional<ApiScope> needed) const {
  std::string_view token;
  std::string_view why;
  AuthOutcome parsed = ParseBearer(authorization, &token, &why);
  if (parsed != AuthOutcome::kAllowed) return parsed;
  return CheckToken(token, needed);
}

AuthOutcome ApiKeys::CheckToken(std::string_view token, std::optional<ApiScope> needed) const {
  const Sha256Digest digest = Sha256(token);
  // Every entry is compared, in constant time each, and the match folded in
  // with masks rather than branches: the time depends on the number of keys
  // only.
  uint8_t found = 0;
  uint8_t scopes = 0;
  for (const Entry& e : entries_) {
    uint8_t equal =
        static_cast<uint8_t>(CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0);
    auto mask = static_cast<uint8_t>(-equal);
    found |= mask;
    scopes |= static_cast<uint8_t>(e.scopes & mask);
  }
  if (found == 0) return AuthOutcome::kUnknown;
  if (!needed || (scopes & Bit(*needed)) == 0) return AuthOutcome::kScope;
  return AuthOutcome::kAllowed;
}

Result<ApiKeys> LoadApiKeys(const std::string& file, std::string_view inline_keys) {
  ApiKeys keys;
  if (!file.empty()) {
    CATCHALL_RETURN_IF_ERROR(RequireRegularFile("auth.keys_file", file));
    std::ifstream in(file, std::ios::binary);
    if (!in.is_open()) {
      return Status::InvalidArgument(
          fmt::format("auth.keys_file {} cannot be opened: {}", file,
                      std::strerror(errno)));  // NOLINT(concurrency-mt-unsafe)
    }
    std::stringstream text;
    text << in.rdbuf();
    if (in.bad()) {
      return Status::InvalidArgument(fmt::format("auth.keys_file {} cannot be read", file));
    }
    CATCHALL_RETURN_IF_ERROR(keys.Add(text.str(), file));
  }
  if (!inline_keys.empty()) {
    CATCHALL_RETURN_IF_ERROR(keys.Add(inline_keys, "auth.keys", /*semicolons_separate=*/true));
  }
  if (keys.size() == 0) {
    return Status::InvalidArgument(
        fmt::format("{} holds no key: every protected request would be refused (to turn auth "
                    "off, unset auth.keys_file and auth.keys)",
                    file.empty() ? std::string("auth.keys") : file));
  }
  return keys;
}

}  // namespace catchall
