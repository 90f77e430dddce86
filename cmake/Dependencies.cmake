# Every dependency comes from Debian 12 packages (scripts/install-deps installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(simdjson REQUIRED)
find_package(RocksDB REQUIRED)
find_package(prometheus-cpp REQUIRED COMPONENTS core)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(tomlplusplus REQUIRED)
# abseil's flat_hash_map: the query node's in-memory counters (query/src/recent_counts.h).
find_package(absl REQUIRED)
# libssl and libcrypto: TLS on the HTTP listeners and hashing of API keys.
find_package(OpenSSL 3 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(IDN2 REQUIRED IMPORTED_TARGET libidn2)
pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
if(CATCHALL_JEMALLOC)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
endif()

# Tests and micro-benchmarks need packages that serving does not
# (scripts/install-deps without --runtime installs them). Where they are
# absent the build goes on without them and says so, so that `scripts/run`
# works on a bare machine; CATCHALL_REQUIRE_TESTS (set by scripts/test) turns
# that into an error, so that CI can never pass by building no tests.
function(catchall_optional_package option package what)
  if(NOT ${option})
    return()
  endif()
  find_package(${package} QUIET)
  if(${package}_FOUND)
    return()
  endif()
  if(CATCHALL_REQUIRE_TESTS)
    message(FATAL_ERROR "${package} was not found but ${what} are required "
                        "(CATCHALL_REQUIRE_TESTS=ON); run scripts/install-deps")
  endif()
  message(WARNING "${package} was not found: ${what} are not built. "
                  "Run scripts/install-deps (without --runtime) to get them, "
                  "or configure with -D${option}=OFF to silence this.")
  set(${option} OFF PARENT_SCOPE)
endfunction()
catchall_optional_package(CATCHALL_BUILD_TESTS GTest "the tests")
catchall_optional_package(CATCHALL_BUILD_BENCHMARKS benchmark "the micro-benchmarks")
