# Warnings for our own targets only (third-party headers are SYSTEM includes).
function(catchall_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wimplicit-fallthrough)
endfunction()

# Declares a library laid out as <dir>/include/<name>/ (public) and <dir>/src/ (private).
function(catchall_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  add_library(catchall::${name} ALIAS ${name})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                      PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  catchall_warnings(${name})
endfunction()

# Test code (not the product it links) is compiled for a quick build: its
# speed does not matter. The libraries under test keep their preset's level.
# - release: -O1 compiles it 25-35% faster than -O3 (http_server_test.cc
#   26 s against 38 s, cluster_test.cc 15 s against 23 s).
# - the sanitizer build (fuzz preset, clang with ASan and UBSan): -O0
#   compiles it 2.5x faster than -O1 (http_server_test.cc 38 s against 95 s;
#   engine_tests' objects 183 s against 504 s of CPU), and the tests run
#   a little longer (engine_tests 51 s against 24 s: the test servers'
#   handlers are test code).
function(catchall_test_code target)
  if(CATCHALL_BUILD_FUZZERS)
    target_compile_options(${target} PRIVATE -O0)
  else()
    target_compile_options(${target} PRIVATE $<$<CONFIG:Release>:-O1>)
  endif()
endfunction()

# Declares a GoogleTest executable registered with ctest. PROPERTIES are
# more ctest properties of each of its tests (name value ...).
function(catchall_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS;PROPERTIES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  catchall_warnings(${name})
  catchall_test_code(${name})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
                       PROPERTIES LABELS "${ARG_LABELS}" ${ARG_PROPERTIES})
endfunction()
