// Kernel micro-benchmarks: MatMul GEMV (n_tok = 1, decode) and GEMM (n_tok = 64, prefill) at
// Qwen3-0.6B shapes in bf16 and f32 weights; bytes/s counts weight bytes read per call.
// Run: build/<dir>/bench/kernels/arle_bench_kernels [--benchmark_filter=bf16]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/half.h"
#include "arle/core/random.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/matmul.h"

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

// args: n_out, n_in, n_tok, dtype (0 f32, 1 bf16), backend (0 cpu, 1 ref)
void BM_MatMul(benchmark::State& state) {
  const int64_t n_out = state.range(0), n_in = state.range(1), n_tok = state.range(2);
  const core::DType dtype = state.range(3) == 0 ? core::DType::kF32 : core::DType::kBF16;
  const Backend backend = state.range(4) == 0 ? Backend::kCpu : Backend::kRef;
  core::Rng rng(1);
  const int64_t w_bytes = n_out * n_in * core::ElementSize(dtype);
  core::Buffer wb(w_bytes), xb(n_tok * n_in * 4), yb(n_tok * n_out * 4);
  for (int64_t i = 0; i < n_out * n_in; ++i) {
    const float v = static_cast<float>(rng.Normal() * 0.05);
    if (dtype == core::DType::kF32) {
      wb.as<float>()[i] = v;
    } else {
      wb.as<uint16_t>()[i] = core::F32ToBF16(v);
    }
  }
  for (int64_t i = 0; i < n_tok * n_in; ++i) xb.as<float>()[i] = static_cast<float>(rng.Normal());
  core::Tensor w = wb.AsTensor(dtype, {n_out, n_in});
  core::Tensor x = xb.AsTensor(core::DType::kF32, {n_tok, n_in});
  core::Tensor y = yb.AsTensor(core::DType::kF32, {n_tok, n_out});
  for (auto _ : state) {
    MatMul(x, w, nullptr, y, Pool(), backend);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * w_bytes);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * n_out * n_in * n_tok * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(core::DTypeName(dtype)) + " " + BackendName(backend) + " " +
                 cpu::ChosenTargetName() + " threads=" + std::to_string(Pool().size()));
}

void Shapes(benchmark::internal::Benchmark* b) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1024, 1024}, {3072, 1024}, {1024, 3072}, {151936, 1024}};
  for (const int64_t dtype : {1, 0}) {
    for (const auto& [n_out, n_in] : shapes) {
      for (const int64_t n_tok : {1, 64}) b->Args({n_out, n_in, n_tok, dtype, 0});
    }
  }
  // The scalar reference once, for scale.
  b->Args({1024, 1024, 1, 1, 1});
  b->ArgNames({"n_out", "n_in", "n_tok", "bf16", "ref"});
  b->Unit(benchmark::kMicrosecond);
  b->UseRealTime();
}

BENCHMARK(BM_MatMul)->Apply(Shapes);

}  // namespace
}  // namespace arle::kernels

BENCHMARK_MAIN();
