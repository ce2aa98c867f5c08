// `arle bench membw`: threads read disjoint slices of a large buffer with the widest vector loads
// (kernels::ReadAll); the best pass over `-r` repetitions is the read bandwidth.
#include "apps/arle/cmd_bench_membw.h"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "apps/arle/commands.h"
#include "arle/core/buffer.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/bandwidth.h"

namespace arle::app {

core::StatusOr<ReadBandwidth> MeasureReadBandwidth(core::ThreadPool& pool, int64_t bytes, int reps) {
  if (reps < 1 || bytes < (1 << 20)) {
    return core::InvalidArgumentError(fmt::format("membw: reps {} bytes {}", reps, bytes),
                                      "repetitions must be >= 1 and the buffer at least 1 MiB");
  }
  const int64_t n = bytes / static_cast<int64_t>(sizeof(float));
  core::Buffer buf(static_cast<size_t>(n) * sizeof(float));
  float* p = buf.as<float>();
  // Written by the same threads that read it later, so the pages are committed (and, on NUMA
  // machines, local) before the first timed pass.
  pool.ParallelFor(n, [&](int64_t b, int64_t e) { std::fill(p + b, p + e, 1.0f); });
  std::atomic<float> sink{0.0f};
  double best = 0.0;
  for (int r = 0; r < reps + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.ParallelFor(n, [&](int64_t b, int64_t e) {
      sink.store(kernels::ReadAll(p + b, e - b), std::memory_order_relaxed);
    });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::max(best, static_cast<double>(n * sizeof(float)) / secs);
  }
  (void)sink.load();
  return ReadBandwidth{pool.size(), best};
}

core::StatusOr<std::vector<int>> ParseThreadCounts(const std::string& list) {
  std::vector<int> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    size_t used = 0;
    int n = -1;
    try {
      n = std::stoi(item, &used);
    } catch (...) {
    }
    if (n < 0 || used != item.size()) {
      return core::InvalidArgumentError("bad -t value '" + item + "'",
                                        "a comma-separated list of thread counts, e.g. -t 1,2");
    }
    out.push_back(n);
  }
  if (out.empty()) out.push_back(0);
  return out;
}

namespace {

struct MembwOptions {
  std::string threads;
  int64_t size_mb = 1024;
  int reps = 5;
  std::string output = "md";
};

int Membw(const MembwOptions& o) {
  auto counts = ParseThreadCounts(o.threads);
  if (!counts.ok()) return ReportError(counts.status());
  nlohmann::json rows = nlohmann::json::array();
  if (o.output == "md") {
    fmt::print("| threads | buffer | read GB/s |\n| ---: | ---: | ---: |\n");
  }
  for (const int t : *counts) {
    core::ThreadPool pool(t);
    auto bw = MeasureReadBandwidth(pool, o.size_mb << 20, o.reps);
    if (!bw.ok()) return ReportError(bw.status());
    const double gbps = bw->bytes_per_second / 1e9;
    rows.push_back({{"threads", bw->threads}, {"buffer_bytes", o.size_mb << 20}, {"read_gbps", gbps}});
    if (o.output == "md") fmt::print("| {} | {} MiB | {:.1f} |\n", bw->threads, o.size_mb, gbps);
  }
  if (o.output == "json") fmt::print("{}\n", rows.dump(2));
  return kExitOk;
}

}  // namespace

void RegisterBenchMembwCommand(CLI::App& bench, int& exit_code) {
  CLI::App* cmd = bench.add_subcommand("membw", "Memory read bandwidth (the decode roofline)");
  static MembwOptions o;
  cmd->add_option("-t,--threads", o.threads, "Comma-separated thread counts (default: physical cores)");
  cmd->add_option("--size-mb", o.size_mb, "Buffer size; keep it several times the L3 cache")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", o.reps, "Timed passes (the best counts)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("-o,--output", o.output, "md | json")
      ->check(CLI::IsMember({"md", "json"}))
      ->capture_default_str();
  cmd->callback([&exit_code] { exit_code = Membw(o); });
}

}  // namespace arle::app
