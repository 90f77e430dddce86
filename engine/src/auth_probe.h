// Metrics of the API-key gate: refusals by the scope the path needed and
// the reason (catchall_http_auth_denied_total).
#pragma once

#include <array>
#include <optional>

#include "engine/api_keys.h"

namespace prometheus {
class Counter;
template <typename T>
class Family;
}  // namespace prometheus

namespace catchall {

class Metrics;

class AuthProbe {
 public:
  explicit AuthProbe(Metrics& metrics);
  // A request refused for `reason` (not kAllowed) on a path that needs
  // `scope` (nullopt: a route no scope grants, labelled "none").
  // Thread-safe.
  void OnDenied(std::optional<ApiScope> scope, AuthOutcome reason);

 private:
  static constexpr size_t kReasons = 4;  // missing, malformed, unknown, scope
  prometheus::Family<prometheus::Counter>* family_;
  // Resolved up front so that a flood of refusals does not look up labels.
  std::array<std::array<prometheus::Counter*, kReasons>, kApiScopeCount> denied_{};
};

}  // namespace catchall
