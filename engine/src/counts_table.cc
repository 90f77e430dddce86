#include "engine/counts_table.h"

#include <optional>

namespace catchall {

void AppendEncodedCounts(const DomainCounts& counts, std::string* out) {
  PutFixed64(out, counts.delivered);
  PutFixed64(out, counts.bounced);
}

std::string EncodeCounts(const DomainCounts& counts) {
  std::string v;
  v.reserve(16);
  AppendEncodedCounts(counts, &v);
  return v;
}

DomainCounts DecodeCounts(std::string_view value) {
  DomainCounts c;
  if (value.size() >= 8) c.delivered = DecodeFixed64(value.data());
  if (value.size() >= 16) c.bounced = DecodeFixed64(value.data() + 8);
  return c;
}

Result<DomainCounts> CountsTable::Get(std::string_view domain) const {
  std::string value;
  Status s = store_->Get(column_, domain, &value);
  if (s.code() == Code::kNotFound) return DomainCounts{};
  if (!s.ok()) return s;
  return DecodeCounts(value);
}

Status CountsTable::MultiGet(const std::vector<std::string>& domains,
                             std::vector<DomainCounts>* out) const {
  return MultiGetViews(std::vector<std::string_view>(domains.begin(), domains.end()), out);
}

Status CountsTable::MultiGetViews(const std::vector<std::string_view>& domains,
                                  std::vector<DomainCounts>* out) const {
  std::vector<std::optional<std::string>> values;
  CATCHALL_RETURN_IF_ERROR(store_->MultiGet(column_, domains, &values));
  out->assign(domains.size(), DomainCounts{});
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i]) (*out)[i] = DecodeCounts(*values[i]);
  }
  return Status::Ok();
}

}  // namespace catchall
