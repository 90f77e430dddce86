// Fuzzes the config loader (engine/config.h) with arbitrary TOML text, as
// given to `catchall serve --config FILE`.
//
// Invariants: a file either loads or is refused with InvalidArgument and a
// message (no exception escapes), and a loaded configuration dumps
// (`catchall config`) to TOML that loads back to the same configuration.
//
// CATCHALL_* environment variables would override the file; they are cleared
// before the run so that every input means the same thing everywhere.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  std::vector<std::string> names;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.substr(0, 9) == "CATCHALL_") names.emplace_back(entry.substr(0, entry.find('=')));
  }
  // Before libFuzzer starts any thread.
  for (const std::string& name : names) unsetenv(name.c_str());  // NOLINT(concurrency-mt-unsafe)
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace catchall;
  std::string_view toml(reinterpret_cast<const char*>(data), size);
  Result<Config> config = LoadConfigText(toml, "fuzz.toml", {});
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == Code::kInvalidArgument, config.status().ToString());
    FUZZ_CHECK(!config.status().message().empty(), toml);
    return 0;
  }
  std::string dumped = DumpConfig(*config);
  Result<Config> reloaded = LoadConfigText(dumped, "dumped.toml", {});
  FUZZ_CHECK(reloaded.ok(), dumped + "\n" + reloaded.status().ToString());
  // Secrets are dumped as comments (never printed), so they do not read back.
  FUZZ_CHECK(DumpConfig(*reloaded) == DumpConfig(WithoutSecrets(*config)), dumped);
  return 0;
}
