#include "auth_probe.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <string>

#include "engine/metrics.h"

namespace catchall {

namespace {
constexpr AuthOutcome kReasonsInOrder[] = {AuthOutcome::kMissing, AuthOutcome::kMalformed,
                                           AuthOutcome::kUnknown, AuthOutcome::kScope};

size_t ReasonIndex(AuthOutcome reason) {
  for (size_t i = 0; i < std::size(kReasonsInOrder); ++i) {
    if (kReasonsInOrder[i] == reason) return i;
  }
  return 0;
}
}  // namespace

AuthProbe::AuthProbe(Metrics& metrics) {
  family_ = &prometheus::BuildCounter()
                 .Name("catchall_http_auth_denied_total")
                 .Help(
                     "Requests refused by the API-key check, by the scope the path needs and "
                     "the reason (missing, malformed, unknown: 401; scope: 403)")
                 .Register(metrics.registry());
  for (size_t s = 0; s < kApiScopeCount; ++s) {
    for (size_t r = 0; r < kReasons; ++r) {
      denied_[s][r] = &family_->Add({{"scope", std::string(ApiScopeName(static_cast<ApiScope>(s)))},
                                     {"reason", std::string(AuthOutcomeName(kReasonsInOrder[r]))}});
    }
  }
}

void AuthProbe::OnDenied(std::optional<ApiScope> scope, AuthOutcome reason) {
  if (scope) {
    denied_[static_cast<size_t>(*scope)][ReasonIndex(reason)]->Increment();
    return;
  }
  // Only a route mounted without a scope gets here (a bug to fix, not
  // traffic), so looking its label up each time is fine.
  family_->Add({{"scope", "none"}, {"reason", std::string(AuthOutcomeName(reason))}}).Increment();
}

}  // namespace catchall
