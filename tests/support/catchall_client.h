// Domain-level helpers over HttpClient for end-to-end tests.
#pragma once

#include <chrono>
#include <string>

#include "support/http_client.h"
#include "support/json.h"

namespace catchall::testing {

// GET /domains/{domain}, parsed.
DomainView GetDomain(HttpClient& client, const std::string& domain);

// Polls GET /domains/{domain} until both counters equal the expected ones
// (events become visible after the next aggregator commit); returns the last
// view seen.
DomainView WaitForCounts(HttpClient& client, const std::string& domain, int64_t delivered,
                         int64_t bounced,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace catchall::testing
