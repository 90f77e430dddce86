#include "support/catchall_client.h"

#include <thread>

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
  return v;
}

}  // namespace catchall::testing
