// Domain-level helpers over HttpClient for end-to-end tests.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>

#include "support/http_client.h"
#include "support/json.h"

namespace catchall::testing {

// GET /domains/{domain}, parsed.
DomainView GetDomain(HttpClient& client, const std::string& domain);

// Polls GET /domains/{domain} until both counters equal the expected ones
// (events become visible after the next aggregator commit). On timeout it
// adds a test failure with the last answer; returns the last view seen.
DomainView WaitForCounts(HttpClient& client, const std::string& domain, int64_t delivered,
                         int64_t bounced,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Polls POST /domains/lookup until every domain of `expected` has exactly
// its counters; on timeout returns false and describes the differences in
// *diff. Domains are looked up 1000 at a time.
bool WaitForAllCounts(HttpClient& client,
                      const std::map<std::string, std::pair<int64_t, int64_t>>& expected,
                      std::chrono::milliseconds timeout, std::string* diff);

}  // namespace catchall::testing
