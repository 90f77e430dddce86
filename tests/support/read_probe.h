// ReadProbe: a client that keeps reading one path from a node (GET every few
// milliseconds, on its own thread and keep-alive connection) while a test
// breaks something else, and records every answer that was not a 200, so
// that a test can show reads never failed meanwhile.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace catchall::testing {

class ReadProbe {
 public:
  ReadProbe(uint16_t port, std::string path,
            std::chrono::milliseconds every = std::chrono::milliseconds(20));
  ~ReadProbe();  // stops
  ReadProbe(const ReadProbe&) = delete;
  ReadProbe& operator=(const ReadProbe&) = delete;

  void Stop();
  size_t reads() const { return reads_.load(); }
  // "status N: body" of each answer that was not a 200 (status 0: none).
  std::vector<std::string> failures();

 private:
  std::atomic<bool> stop_{false};
  std::atomic<size_t> reads_{0};
  std::mutex mu_;
  std::vector<std::string> failures_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace catchall::testing
