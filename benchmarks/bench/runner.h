// Runs one benchmark end to end: connects, drives the load with the worker
// threads, prints progress, drains, verifies, writes the reports.
#pragma once

#include "bench/options.h"

namespace catchall::bench {

// Returns the process exit code: 0 success, 2 verification mismatches,
// 1 other errors (unreachable target, nothing succeeded, unwritable --out).
int RunBench(const BenchOptions& options);

}  // namespace catchall::bench
