// Metrics of the query service.
#pragma once

#include <cstddef>

#include "engine/domain_status.h"

namespace prometheus {
class Counter;
}

namespace catchall {

class Metrics;

class QueryProbe {
 public:
  explicit QueryProbe(Metrics& metrics);
  void OnAnswer(CatchAllStatus status);
  void OnInvalid();
  void OnLookup(size_t domains);

 private:
  prometheus::Counter* unknown_;
  prometheus::Counter* catchall_;
  prometheus::Counter* not_catchall_;
  prometheus::Counter* invalid_;
  prometheus::Counter* lookups_;
};

}  // namespace catchall
