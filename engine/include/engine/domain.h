// Domain normalization: the single definition of "the same domain".
//
// Every domain that enters catchall (URL path, batch item, topic record,
// lookup) goes through NormalizeDomain before it is used as a key, so that
// "Example.COM.", "example.com" and "EXAMPLE.com" count together and
// "bücher.de" and "xn--bcher-kva.de" are one domain.
#pragma once

#include <string>
#include <string_view>

#include "engine/status.h"

namespace catchall {

inline constexpr size_t kMaxDomainLength = 253;  // RFC 1035, without the trailing dot
inline constexpr size_t kMaxLabelLength = 63;

// Returns the canonical ASCII form of `input` (UTF-8):
//   - one trailing dot is dropped,
//   - internationalized names are mapped and converted to punycode A-labels
//     with libidn2 (IDNA2008 + UTS#46 non-transitional processing),
//   - ASCII is case-folded,
//   - the result must be a hostname: labels of 1..63 letters, digits and
//     hyphens, not starting or ending with a hyphen, at most 253 characters,
//     a top-level label that is not all digits, and valid A-labels (xn--).
// On failure returns InvalidArgument with a message that says what is wrong.
// Thread-safe.
Result<std::string> NormalizeDomain(std::string_view input);

// True when `domain` is already what NormalizeDomain returns for it.
bool IsNormalizedDomain(std::string_view domain);

// True when `s` could be what NormalizeDomain returns: 1 to
// kMaxDomainLength lower-case ASCII letters, digits, hyphens and dots. Not
// a validation (labels, punycode): a byte loop, for readers that cannot
// afford IsNormalizedDomain per record but must keep out what no lookup can
// reach.
bool HasNormalizedDomainShape(std::string_view s);

}  // namespace catchall
