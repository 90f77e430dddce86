// EventLoad: concurrent single-event PUT load for durability tests. Every
// event carries a unique Idempotency-Key, so an event whose answer was lost
// can be retried later without being counted twice; the load remembers
// which events were acknowledged (204) and which were not answered.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/http_client.h"
#include "support/wait.h"

namespace catchall::testing {

// One event the load sent: where, what, with which Idempotency-Key.
struct SentEvent {
  std::string domain;
  bool bounce = false;
  std::string id;
};

struct LoadOptions {
  int threads = 4;
  int domains = 20;
  std::string domain_prefix = "load-";
  // Makes ids unique across loads against the same data.
  std::string tag;
  // Stop a worker when the server stops answering (process gone) rather
  // than keep trying (e.g. while only the broker is down).
  bool stop_when_unreachable = true;
  // Resend a request once on a new connection when the server closed a
  // kept-alive one without answering (what HTTP clients do). Off for tests
  // that must see every request the server cut off.
  bool retry_closed_connections = true;
};

// One request of the load and what became of it.
struct Attempt {
  SentEvent event;
  int status = 0;    // 0: no answer
  std::string code;  // the JSON error code of a refusal, or what failed (status 0)
  // When the request was completely written (unset if it was not).
  std::optional<std::chrono::steady_clock::time_point> sent;
  // When the answer (or the failure) came back.
  std::chrono::steady_clock::time_point done;
};

// The drain contract of a server stopped by a signal at `signalled`: every
// request written before it got an answer, either 204 or a JSON refusal (503
// with a code); none was cut off. Returns a description of the requests that
// broke it (empty if none did), and counts in *in_flight the requests that
// were written before `signalled` and answered after it.
std::string RequestsCutOffBy(const std::vector<Attempt>& attempts,
                             std::chrono::steady_clock::time_point signalled, size_t* in_flight);

class EventLoad {
 public:
  EventLoad(uint16_t port, LoadOptions options);
  ~EventLoad();
  void Stop();
  size_t acked() const { return acked_count_.load(); }
  size_t refused() const { return refused_count_.load(); }
  std::vector<SentEvent> acked_events();
  std::vector<SentEvent> unanswered_events();
  // Every request sent so far, in no particular order across threads.
  std::vector<Attempt> attempts();

 private:
  void Run(uint16_t port, int t);

  LoadOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> acked_count_{0};
  std::atomic<size_t> refused_count_{0};
  std::mutex mu_;
  std::vector<SentEvent> acked_;       // GUARDED_BY(mu_)
  std::vector<SentEvent> unanswered_;  // GUARDED_BY(mu_)
  std::vector<Attempt> attempts_;      // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;
};

using Counts = std::map<std::string, std::pair<int64_t, int64_t>>;  // delivered, bounced

Counts Tally(const std::vector<SentEvent>& events);

// PUTs `event` (same key) until it is acknowledged; false after `attempts`.
bool Resend(HttpClient& client, const SentEvent& event, int attempts = 50);

// Waits (up to 120 s) until `load` has `n` acknowledged events; on failure
// says how many it has and shows what `servers` printed.
[[nodiscard]] bool WaitForAcked(EventLoad& load, size_t n,
                                const std::vector<ServerProcess*>& servers);

// Resends every event of `load` that was not answered (same keys, so none
// is counted twice) until each is acknowledged, then returns every event
// that must be counted: the acknowledged ones and the resent ones. Empty,
// with *failed naming the event, when one could not be acknowledged.
std::vector<SentEvent> AckedAfterResending(EventLoad& load, HttpClient& client,
                                           std::string* failed);

}  // namespace catchall::testing
