#include "support/catchall_client.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace catchall::testing {

DomainView GetDomain(HttpClient& client, const std::string& domain) {
  HttpResult r = client.Get("/domains/" + domain);
  DomainView v;
  v.status = r.status;
  v.state = JsonString(r.body, "status").value_or("");
  v.delivered = JsonInt(r.body, "delivered").value_or(-1);
  v.bounced = JsonInt(r.body, "bounced").value_or(-1);
  return v;
}

DomainView WaitForCounts(HttpClient& client, const std::string& domain, int64_t delivered,
                         int64_t bounced, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  DomainView v;
  do {
    v = GetDomain(client, domain);
    if (v.delivered == delivered && v.bounced == bounced) return v;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < until);
  ADD_FAILURE() << "timed out after " << timeout.count() << " ms waiting for " << domain
                << " to count " << delivered << " delivered and " << bounced
                << " bounced; the last answer was HTTP " << v.status << " with " << v.delivered
                << " delivered and " << v.bounced << " bounced";
  return v;
}

bool WaitForAllCounts(HttpClient& client,
                      const std::map<std::string, std::pair<int64_t, int64_t>>& expected,
                      std::chrono::milliseconds timeout, std::string* diff) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (true) {
    diff->clear();
    size_t wrong = 0;
    auto it = expected.begin();
    while (it != expected.end()) {
      std::string body = R"({"domains":[)";
      std::vector<std::string> chunk;
      for (int n = 0; n < 1000 && it != expected.end(); ++n, ++it) {
        body += (chunk.empty() ? "\"" : ",\"") + it->first + "\"";
        chunk.push_back(it->first);
      }
      body += "]}";
      auto got = LookupCounts(client.Post("/domains/lookup", body).body);
      for (const auto& d : chunk) {
        const auto& want = expected.at(d);
        auto g = got.find(d);
        std::pair<int64_t, int64_t> have = g == got.end() ? std::make_pair(-1L, -1L) : g->second;
        if (have != want) {
          if (++wrong <= 10) {
            *diff += d + ": expected " + std::to_string(want.first) + "/" +
                     std::to_string(want.second) + ", got " + std::to_string(have.first) + "/" +
                     std::to_string(have.second) + "\n";
          }
        }
      }
    }
    if (wrong == 0) return true;
    if (std::chrono::steady_clock::now() >= until) {
      *diff = std::to_string(wrong) + " domains differ, e.g.\n" + *diff;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace catchall::testing
