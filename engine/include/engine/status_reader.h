// StatusReader: where the query API reads counters from. In embedded mode the
// aggregator's counter store implements it; in cluster mode the query node's
// materialized changelog does. Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/domain_status.h"
#include "engine/status.h"

namespace catchall {

class StatusReader {
 public:
  virtual ~StatusReader() = default;
  // Counters of a normalized domain; zero counts when never seen.
  virtual Result<DomainCounts> Get(std::string_view domain) const = 0;
  // out->at(i) holds the counters of domains[i].
  virtual Status MultiGet(const std::vector<std::string>& domains,
                          std::vector<DomainCounts>* out) const = 0;
};

}  // namespace catchall
