// Fuzzes domain normalization (engine/domain.h) with arbitrary bytes, as they
// arrive in a URL path segment, a batch item or a lookup.
//
// Invariants: the input is either refused with InvalidArgument and a message,
// or normalized to a hostname (LDH labels of 1..63, at most 253 characters,
// lower case) that normalizes to itself, also with a trailing dot or in
// upper case.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/domain.h"
#include "fuzz_check.h"

namespace catchall {
namespace {

void CheckHostname(std::string_view d) {
  FUZZ_CHECK(!d.empty() && d.size() <= kMaxDomainLength, d);
  size_t label = 0;
  for (char c : d) {
    if (c == '.') {
      FUZZ_CHECK(label > 0, d);
      label = 0;
      continue;
    }
    FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-', d);
    ++label;
    FUZZ_CHECK(label <= kMaxLabelLength, d);
  }
  FUZZ_CHECK(label > 0, d);
}

}  // namespace
}  // namespace catchall

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace catchall;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  Result<std::string> normalized = NormalizeDomain(input);
  if (!normalized.ok()) {
    FUZZ_CHECK(normalized.status().code() == Code::kInvalidArgument,
               normalized.status().ToString());
    FUZZ_CHECK(!normalized.status().message().empty(), input);
    return 0;
  }
  const std::string& d = *normalized;
  CheckHostname(d);

  Result<std::string> again = NormalizeDomain(d);
  FUZZ_CHECK(again.ok() && *again == d,
             d + " -> " + (again.ok() ? *again : again.status().ToString()));

  Result<std::string> dotted = NormalizeDomain(d + ".");
  FUZZ_CHECK(dotted.ok() && *dotted == d,
             d + ". -> " + (dotted.ok() ? *dotted : dotted.status().ToString()));

  std::string upper = d;
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  Result<std::string> folded = NormalizeDomain(upper);
  FUZZ_CHECK(folded.ok() && *folded == d,
             upper + " -> " + (folded.ok() ? *folded : folded.status().ToString()));
  return 0;
}
