#include "query_probe.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "engine/metrics.h"

namespace catchall {

QueryProbe::QueryProbe(Metrics& metrics) {
  auto& r = metrics.registry();
  auto& answers = prometheus::BuildCounter()
                      .Name("catchall_query_answers_total")
                      .Help("Domain statuses answered, by status")
                      .Register(r);
  unknown_ = &answers.Add({{"status", "unknown"}});
  catchall_ = &answers.Add({{"status", "catch-all"}});
  not_catchall_ = &answers.Add({{"status", "not catch-all"}});
  invalid_ = &prometheus::BuildCounter()
                  .Name("catchall_query_invalid_domains_total")
                  .Help("Lookups refused because the domain is invalid")
                  .Register(r)
                  .Add({});
  lookups_ = &prometheus::BuildCounter()
                  .Name("catchall_query_batch_lookups_total")
                  .Help(
                      "POST /domains/lookup requests with a readable list of domains (a "
                      "malformed or too long one counts only in catchall_http_requests_total)")
                  .Register(r)
                  .Add({});
}

void QueryProbe::OnAnswer(CatchAllStatus status) {
  switch (status) {
    case CatchAllStatus::kUnknown: unknown_->Increment(); break;
    case CatchAllStatus::kCatchAll: catchall_->Increment(); break;
    case CatchAllStatus::kNotCatchAll: not_catchall_->Increment(); break;
  }
}
void QueryProbe::OnInvalid() { invalid_->Increment(); }
void QueryProbe::OnLookup(size_t /*domains*/) { lookups_->Increment(); }

}  // namespace catchall
