// API keys for tests of a catchall with auth on (docs/operations.md,
// "Security").
#pragma once

#include <map>
#include <string>

namespace catchall::testing {

// The key-file line of `key` with `scopes` ("ingest,metrics"), made the
// documented way: `printf %s KEY | catchall keys hash --scopes SCOPES`.
// Ends with a newline. Fails the test if the command fails.
std::string KeyFileLine(const std::string& key, const std::string& scopes);

// {"Authorization": "Bearer <key>"}, for HttpClient::Request.
std::map<std::string, std::string> Bearer(const std::string& key);

}  // namespace catchall::testing
