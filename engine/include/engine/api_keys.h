// API keys with scopes (DESIGN.md, "Authentication"): the key-file format,
// the `Authorization: Bearer <key>` header, and the decision for one request.
// Pure functions and an immutable key set: no I/O besides LoadApiKeys, no
// sockets, so every case is tested by calling it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace catchall {

// What a key may do. Each protected path needs exactly one scope.
enum class ApiScope : uint8_t { kIngest = 0, kQuery = 1, kMetrics = 2 };
inline constexpr size_t kApiScopeCount = 3;

// "ingest", "query", "metrics".
std::string_view ApiScopeName(ApiScope scope);

// What a route (a mounted prefix) needs: kScoped with `*scope` for
// "/events" (ingest), "/domains" (query) and "/metrics" (metrics); kOpen for
// the probes (/healthz, /readyz); kNoScope for any other route, which no key
// may use, so that a route added later is closed until it gets a scope.
enum class RouteAccess { kOpen, kScoped, kNoScope };
RouteAccess AccessOfRoute(std::string_view route, ApiScope* scope);

// Why a request was let through or not. The names of the refusals are the
// `reason` label of catchall_http_auth_denied_total.
enum class AuthOutcome {
  kAllowed,
  kMissing,    // no Authorization header (or an empty one): 401
  kMalformed,  // not "Bearer <token>" with a printable ASCII token: 401
  kUnknown,    // a well-formed token that matches no key: 401
  kScope,      // a known key without the scope the path needs: 403
};
std::string_view AuthOutcomeName(AuthOutcome outcome);

// Tokens longer than this are refused as malformed without hashing them.
// A real key is 32 to 64 characters; the server's header limit (8 KiB by
// default) bounds the header anyway, this bounds the work per request.
inline constexpr size_t kMaxApiKeyBytes = 1024;

// Extracts the token of an Authorization header value. kAllowed (the header
// is well formed, `*token` set), kMissing or kMalformed; on kMalformed
// `*why` says what is wrong, for the client's error message. The scheme is
// case-insensitive (RFC 7235); one or more spaces separate it from the token;
// the token is 1..kMaxApiKeyBytes printable ASCII bytes (0x21..0x7e).
AuthOutcome ParseBearer(std::string_view header, std::string_view* token, std::string_view* why);

// SHA-256 of `data` (OpenSSL libcrypto).
using Sha256Digest = std::array<unsigned char, 32>;
Sha256Digest Sha256(std::string_view data);
// The digest as 64 lowercase hex digits, the key file's format.
std::string Sha256Hex(std::string_view data);

// A set of hashed keys with their scopes. Immutable once built; share it
// between threads through a shared_ptr<const ApiKeys> (HttpAuth does).
class ApiKeys {
 public:
  ApiKeys() = default;

  // Adds the keys of `text`, lines of
  //   <sha256 of the key, 64 lowercase hex digits> <scope>[,<scope>...]
  // where '#' starts a comment and blank lines are skipped. When
  // `semicolons_separate` (the auth.keys setting, which fits on one line of
  // an environment variable) ';' ends a line too. InvalidArgument naming
  // `source` and the line for a bad digest, an unknown or empty scope, or a
  // key that is already in the set (from this text or an earlier one).
  Status Add(std::string_view text, std::string_view source, bool semicolons_separate = false);

  size_t size() const { return entries_.size(); }

  // The decision for a request carrying `authorization` (the header's value,
  // empty when absent) on a path that needs `needed` (nullopt: a route that
  // no scope grants). Hashes the token once, then compares the digest with
  // every stored one with CRYPTO_memcmp and no early exit, so the time does
  // not depend on which key matched or how much of it.
  AuthOutcome Check(std::string_view authorization, std::optional<ApiScope> needed) const;
  // As Check, for a token already taken out of its header.
  AuthOutcome CheckToken(std::string_view token, std::optional<ApiScope> needed) const;

 private:
  struct Entry {
    Sha256Digest digest;
    uint8_t scopes;  // bit i: ApiScope i
  };
  std::vector<Entry> entries_;
  std::string sources_;  // the sources entries_ came from, for messages
};

// The keys of `file` (auth.keys_file, if not empty) and `inline_keys`
// (auth.keys, if not empty, ';' or newline separated). InvalidArgument with
// the reason (unreadable file, bad line, no key at all: a key set that lets
// nobody in is a mistake, not a way to lock the service).
Result<ApiKeys> LoadApiKeys(const std::string& file, std::string_view inline_keys);

}  // namespace catchall
