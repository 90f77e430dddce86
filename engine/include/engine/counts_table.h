// CountsTable: a column of per-domain counters in a KvStore, read as a
// StatusReader. The aggregator's counter store and a query node's
// materialized changelog both keep their counters this way.
// Thread-safe (reads only; writes go through KvWriteBatch).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/domain_status.h"
#include "engine/kv_store.h"
#include "engine/status_reader.h"

namespace catchall {

// The 16-byte stored value: delivered, bounced as little-endian uint64.
// This is the layout a kCounters column's merge operator adds up.
std::string EncodeCounts(const DomainCounts& counts);
// The same 16 bytes, appended to *out.
void AppendEncodedCounts(const DomainCounts& counts, std::string* out);
DomainCounts DecodeCounts(std::string_view value);

class CountsTable : public StatusReader {
 public:
  // `store` must outlive the table; `column` holds the counters.
  CountsTable(const KvStore* store, Column column) : store_(store), column_(column) {}

  Result<DomainCounts> Get(std::string_view domain) const override;
  Status MultiGet(const std::vector<std::string>& domains,
                  std::vector<DomainCounts>* out) const override;
  // The same for views of domains the caller owns (no copies of the keys).
  Status MultiGetViews(const std::vector<std::string_view>& domains,
                       std::vector<DomainCounts>* out) const;

  Column column() const { return column_; }

 private:
  const KvStore* store_;
  Column column_;
};

}  // namespace catchall
