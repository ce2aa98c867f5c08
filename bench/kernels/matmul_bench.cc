// Kernel micro-benchmarks: MatMul GEMV (n_tok = 1, decode), batched decode (n_tok = 4) and GEMM
// (n_tok = 64, prefill) at Qwen3-0.6B shapes, for f32, bf16 and the GGUF block formats; bytes/s
// counts weight bytes read per call (compare GEMV with `arle bench membw`).
// Run: build/<dir>/bench/kernels/arle_bench_kernels [--benchmark_filter=bf16]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <cstdlib>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/half.h"
#include "arle/core/random.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/context.h"
#include "arle/kernels/cpu_targets.h"
#include "arle/kernels/matmul.h"
#include "arle/kernels/quant.h"

namespace arle::kernels {
namespace {

// Threads: $ARLE_THREADS when set, else one per physical core.
core::ThreadPool& Pool() {
  static core::ThreadPool pool([] {
    const char* env = std::getenv("ARLE_THREADS");
    return env != nullptr ? std::atoi(env) : 0;
  }());
  return pool;
}

constexpr core::DType kDTypes[] = {core::DType::kF32,  core::DType::kBF16, core::DType::kQ8_0,
                                   core::DType::kQ4_0, core::DType::kQ4_K, core::DType::kQ5_K,
                                   core::DType::kQ6_K};

// args: n_out, n_in, n_tok, dtype (index into kDTypes), backend (0 cpu, 1 ref)
void BM_MatMul(benchmark::State& state) {
  const int64_t n_out = state.range(0), n_in = state.range(1), n_tok = state.range(2);
  const core::DType dtype = kDTypes[state.range(3)];
  const Backend backend = state.range(4) == 0 ? Backend::kCpu : Backend::kRef;
  core::Rng rng(1);
  const int64_t w_bytes = *core::DTypeBytes(dtype, n_out * n_in);
  core::Buffer wb(w_bytes), xb(n_tok * n_in * 4), yb(n_tok * n_out * 4);
  std::vector<float> row(n_in);
  for (int64_t o = 0; o < n_out; ++o) {
    for (float& v : row) v = static_cast<float>(rng.Normal() * 0.05);
    if (dtype == core::DType::kF32) {
      std::copy(row.begin(), row.end(), wb.as<float>() + o * n_in);
    } else if (dtype == core::DType::kBF16) {
      for (int64_t i = 0; i < n_in; ++i) wb.as<uint16_t>()[o * n_in + i] = core::F32ToBF16(row[i]);
    } else {
      QuantizeRow(dtype, row.data(), n_in, wb.as<char>() + *core::DTypeBytes(dtype, o * n_in));
    }
  }
  for (int64_t i = 0; i < n_tok * n_in; ++i) xb.as<float>()[i] = static_cast<float>(rng.Normal());
  core::Tensor w = wb.AsTensor(dtype, {n_out, n_in});
  core::Tensor x = xb.AsTensor(core::DType::kF32, {n_tok, n_in});
  core::Tensor y = yb.AsTensor(core::DType::kF32, {n_tok, n_out});
  const Context ctx = Context::Cpu(backend, Pool());
  const MatMulOutput out{&w, nullptr, &y};
  for (auto _ : state) {
    MatMul(ctx, {.x = &x, .outputs = {&out, 1}});
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * w_bytes);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * n_out * n_in * n_tok * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(core::DTypeName(dtype)) + " " + BackendName(backend) + " " +
                 ChosenCpuTarget() + " threads=" + std::to_string(Pool().size()));
}

void Shapes(benchmark::internal::Benchmark* b) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1024, 1024}, {3072, 1024}, {1024, 3072}, {151936, 1024}};
  for (int64_t dtype = 0; dtype < static_cast<int64_t>(std::size(kDTypes)); ++dtype) {
    for (const auto& [n_out, n_in] : shapes) {
      for (const int64_t n_tok : {1, 4, 64}) b->Args({n_out, n_in, n_tok, dtype, 0});
    }
  }
  // The scalar reference once per format family, for scale.
  b->Args({1024, 1024, 1, 1, 1});
  b->Args({1024, 1024, 1, 4, 1});
  b->ArgNames({"n_out", "n_in", "n_tok", "dtype", "ref"});
  b->Unit(benchmark::kMicrosecond);
  b->UseRealTime();
}

BENCHMARK(BM_MatMul)->Apply(Shapes);

}  // namespace
}  // namespace arle::kernels

BENCHMARK_MAIN();
