// catchall-bench: see benchmarks/README.md.
#include <exception>
#include <iostream>

#include "bench/options.h"
#include "bench/runner.h"

int main(int argc, char** argv) {
  catchall::bench::BenchOptions options;
  if (int code = catchall::bench::ParseOptions(argc, argv, &options); code >= 0) return code;
  try {
    return catchall::bench::RunBench(options);
  } catch (const std::exception& e) {  // e.g. std::bad_alloc for an absurd --domains
    std::cerr << "catchall-bench: " << e.what() << "\n";
    return 1;
  }
}
