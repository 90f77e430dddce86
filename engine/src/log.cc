#include "engine/log.h"

namespace catchall {

void RecordBatch::Clear() {
  records_.clear();
  end_of_partition_.clear();
  kept_.clear();
  for (const Held& h : held_) h.release(h.resource);
  held_.clear();
}

std::string_view RecordBatch::Keep(std::string bytes) {
  return kept_.emplace_back(std::move(bytes));
}

}  // namespace catchall
