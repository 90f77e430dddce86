// FUZZ_CHECK: the fuzz targets' invariant check. A violation prints what
// broke and aborts, which libFuzzer reports as a crash with its reproducer.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace catchall::fuzz {

[[noreturn]] inline void Fail(const char* condition, const char* file, int line,
                              std::string_view detail) {
  std::fprintf(stderr, "%s:%d: invariant violated: %s\n  %.*s\n", file, line, condition,
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

}  // namespace catchall::fuzz

// FUZZ_CHECK(condition, detail): `detail` (anything convertible to
// std::string_view) is printed only on failure.
#define FUZZ_CHECK(condition, detail)                                   \
  do {                                                                  \
    if (!(condition)) {                                                 \
      ::catchall::fuzz::Fail(#condition, __FILE__, __LINE__, (detail)); \
    }                                                                   \
  } while (0)
