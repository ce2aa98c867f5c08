// `arle bench membw`: the machine's memory read bandwidth, the bound of decode speed.
#pragma once

#include <cstdint>

#include <CLI/CLI.hpp>

#include "arle/core/status.h"

namespace arle::app {

struct ReadBandwidth {
  int threads = 0;
  double bytes_per_second = 0;
};

// Best of `reps` timed passes of `threads` threads (< 1: the thread pool's default, one per
// physical core) reading a `bytes` buffer, after one untimed pass. The buffer should be several
// times the last-level cache.
core::StatusOr<ReadBandwidth> MeasureReadBandwidth(int threads, int64_t bytes, int reps);

void RegisterBenchMembwCommand(CLI::App& bench, int& exit_code);

}  // namespace arle::app
