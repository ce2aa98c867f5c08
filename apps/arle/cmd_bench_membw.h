// `arle bench membw`: the machine's memory read bandwidth, the bound of decode speed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "arle/core/status.h"
#include "arle/core/thread_pool.h"

namespace arle::app {

struct ReadBandwidth {
  int threads = 0;
  double bytes_per_second = 0;
};

// Best of `reps` timed passes of `pool`'s threads reading a `bytes` buffer, after one untimed
// pass. The buffer should be several times the last-level cache.
core::StatusOr<ReadBandwidth> MeasureReadBandwidth(core::ThreadPool& pool, int64_t bytes, int reps);

// A `-t` list of `arle bench` and `arle bench membw`: "1,2,4" -> {1, 2, 4}; empty -> {0} (0: one
// thread per physical core). InvalidArgument names a bad item.
core::StatusOr<std::vector<int>> ParseThreadCounts(const std::string& list);

void RegisterBenchMembwCommand(CLI::App& bench, int& exit_code);

// `arle bench train` (cmd_bench_train.cc).
void RegisterBenchTrainCommand(CLI::App& bench, int& exit_code);

}  // namespace arle::app
