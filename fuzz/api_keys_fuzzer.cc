// Fuzzes the API-key layer (engine/api_keys.h, engine/http_auth.h): the key
// file parser, the Authorization header parser, the constant-time lookup and
// the gate's answers.
//
// Input: key-file text, a NUL byte, then an Authorization header value (no
// NUL: everything after it is the header). The text is parsed both as a
// file and as the auth.keys setting (';' separates lines).
//
// Invariants: parsing loads or is InvalidArgument with a message and adds
// nothing; ParseBearer's token is non-empty printable ASCII within the
// length limit, found in the header, and parses back to itself; Check
// agrees with ParseBearer and with an oracle: a token is known exactly when
// adding its own hash is refused as a duplicate, and once added it is
// allowed for its scope only; the gate answers nothing (let through), 401
// with WWW-Authenticate: Bearer, or 403, each with a JSON code and message.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/api_keys.h"
#include "engine/http_auth.h"
#include "engine/metrics.h"
#include "fuzz_check.h"

namespace {

using namespace catchall;

constexpr ApiScope kScopes[] = {ApiScope::kIngest, ApiScope::kQuery, ApiScope::kMetrics};

void CheckParse(std::string_view text, bool semicolons) {
  ApiKeys keys;
  Status s = keys.Add(text, "fuzz", semicolons);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kInvalidArgument, s.ToString());
    FUZZ_CHECK(!s.message().empty(), text);
    FUZZ_CHECK(keys.size() == 0, "a refused text added keys");
  }
}

void CheckHeader(const ApiKeys& keys, std::string_view header) {
  std::string_view token;
  std::string_view why;
  AuthOutcome parsed = ParseBearer(header, &token, &why);
  FUZZ_CHECK(parsed == AuthOutcome::kAllowed || parsed == AuthOutcome::kMissing ||
                 parsed == AuthOutcome::kMalformed,
             AuthOutcomeName(parsed));
  if (parsed == AuthOutcome::kMalformed) FUZZ_CHECK(!why.empty(), header);
  for (ApiScope scope : kScopes) {
    AuthOutcome checked = keys.Check(header, scope);
    if (parsed != AuthOutcome::kAllowed) {
      FUZZ_CHECK(checked == parsed, AuthOutcomeName(checked));
    } else {
      FUZZ_CHECK(checked == keys.CheckToken(token, scope), AuthOutcomeName(checked));
    }
  }
  if (parsed != AuthOutcome::kAllowed) return;

  FUZZ_CHECK(!token.empty() && token.size() <= kMaxApiKeyBytes, header);
  FUZZ_CHECK(header.find(token) != std::string_view::npos, header);
  for (char c : token) {
    auto b = static_cast<unsigned char>(c);
    FUZZ_CHECK(b > 0x20 && b < 0x7f, header);
  }
  std::string again = "Bearer " + std::string(token);
  std::string_view token2;
  FUZZ_CHECK(ParseBearer(again, &token2, &why) == AuthOutcome::kAllowed && token2 == token, again);

  // The oracle: the token's own hash, added with the ingest scope.
  bool known = keys.CheckToken(token, ApiScope::kIngest) != AuthOutcome::kUnknown;
  ApiKeys more = keys;
  Status added = more.Add(Sha256Hex(token) + " ingest", "oracle");
  FUZZ_CHECK(added.ok() != known, added.ToString());
  if (added.ok()) {
    FUZZ_CHECK(more.CheckToken(token, ApiScope::kIngest) == AuthOutcome::kAllowed, token);
    FUZZ_CHECK(more.CheckToken(token, ApiScope::kQuery) == AuthOutcome::kScope, token);
    FUZZ_CHECK(more.CheckToken(token, std::nullopt) == AuthOutcome::kScope, token);
  }
}

void CheckGate(ApiKeys keys, std::string_view header) {
  // One registry for the whole run: the counters only grow.
  static Metrics* metrics = new Metrics();
  static HttpAuth* auth = new HttpAuth(*metrics);
  auth->SetKeys(std::move(keys));
  for (std::string_view route : {"/events", "/domains", "/metrics", "/healthz", "/other"}) {
    HttpRequest request;
    request.target = route;
    request.headers.push_back({"Authorization", header});
    std::optional<HttpResponse> r = auth->Check(request, route);
    if (!r) continue;
    FUZZ_CHECK(route != "/healthz", "an open route was refused");
    FUZZ_CHECK(r->status == 401 || r->status == 403, std::to_string(r->status));
    FUZZ_CHECK(
        r->body.starts_with("{\"code\":\"") && r->body.find(",\"message\":\"") != std::string::npos,
        r->body);
    bool has_challenge = false;
    for (const auto& [name, value] : r->headers) {
      has_challenge |= name == "WWW-Authenticate" && value.starts_with("Bearer");
    }
    FUZZ_CHECK(has_challenge, r->body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  std::string_view text = input.substr(0, nul);
  std::string_view header =
      nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);

  CheckParse(text, false);
  CheckParse(text, true);
  ApiKeys keys;
  if (!keys.Add(text, "fuzz").ok()) keys = ApiKeys();
  CheckHeader(keys, header);
  CheckGate(std::move(keys), header);
  return 0;
}
