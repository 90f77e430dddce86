#include "support/read_probe.h"

#include "support/http_client.h"

namespace catchall::testing {

ReadProbe::ReadProbe(uint16_t port, std::string path, std::chrono::milliseconds every) {
  thread_ = std::thread([this, port, path = std::move(path), every] {
    HttpClient client(port, std::chrono::seconds(10));
    while (!stop_.load()) {
      HttpResult r = client.Get(path);
      ++reads_;
      if (r.status != 200) {
        std::lock_guard<std::mutex> lock(mu_);
        failures_.push_back("status " + std::to_string(r.status) + ": " + r.body.substr(0, 200));
      }
      std::this_thread::sleep_for(every);
    }
  });
}

ReadProbe::~ReadProbe() { Stop(); }

void ReadProbe::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> ReadProbe::failures() {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

}  // namespace catchall::testing
