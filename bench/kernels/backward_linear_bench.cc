// Linear backward micro-benchmarks: MatMulBackwardInput (dx = dy w), MatMulBackwardWeight
// (dw = dy^T x) and, for scale, the forward MatMul with f32 weights in both orders (the serving
// dot products and the trainer's kGemm), at training shapes (a
// 2048-token batch through stories15M-sized projections and its 32000-word LM head, and one
// 441-row chunk of the trainer's loss head over Qwen3's 151,936-word vocabulary), 1 or 2 threads.
// GFLOP/s counts 2 * n_tok * n_out * n_in per call.
// Run: build/<dir>/bench/kernels/arle_bench_kernels --benchmark_filter=Backward
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/random.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/context.h"
#include "arle/kernels/cpu_targets.h"
#include "arle/kernels/matmul.h"

namespace arle::kernels {
namespace {

enum Op : int64_t { kForward, kForwardGemm, kBackwardInput, kBackwardWeight };

// args: n_tok, n_out, n_in, threads, op
void BM_Linear(benchmark::State& state) {
  const int64_t n_tok = state.range(0), n_out = state.range(1), n_in = state.range(2);
  core::ThreadPool pool(static_cast<int>(state.range(3)));
  const Op op = static_cast<Op>(state.range(4));
  core::Rng rng(1);
  auto fill = [&](core::Buffer& b, int64_t n, double scale) {
    for (int64_t i = 0; i < n; ++i) b.as<float>()[i] = static_cast<float>(rng.Normal() * scale);
  };
  core::Buffer xb(n_tok * n_in * 4), wb(n_out * n_in * 4), dyb(n_tok * n_out * 4);
  core::Buffer dxb(n_tok * n_in * 4), dwb(n_out * n_in * 4);
  fill(xb, n_tok * n_in, 1.0);
  fill(wb, n_out * n_in, 0.05);
  fill(dyb, n_tok * n_out, 1.0);
  fill(dwb, n_out * n_in, 0.0);
  core::Tensor x = xb.AsTensor(core::DType::kF32, {n_tok, n_in});
  core::Tensor w = wb.AsTensor(core::DType::kF32, {n_out, n_in});
  core::Tensor dy = dyb.AsTensor(core::DType::kF32, {n_tok, n_out});  // also the forward's y
  core::Tensor dx = dxb.AsTensor(core::DType::kF32, {n_tok, n_in});
  core::Tensor dw = dwb.AsTensor(core::DType::kF32, {n_out, n_in});
  Context ctx = Context::Cpu(Backend::kCpu, pool);
  if (op == kForwardGemm) ctx.set_float_matmul(FloatMatMul::kGemm);
  const MatMulOutput out{&w, nullptr, &dy};
  for (auto _ : state) {
    switch (op) {
      case kForward:
      case kForwardGemm:
        MatMul(ctx, {.x = &x, .outputs = {&out, 1}});
        break;
      case kBackwardInput:
        MatMulBackwardInput(ctx, {.dy = &dy, .w = &w, .dx = &dx});
        break;
      case kBackwardWeight:
        MatMulBackwardWeight(ctx, {.dy = &dy, .x = &x, .dw = &dw});
        break;
    }
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * n_tok * n_out * n_in * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  static const char* const kNames[] = {"forward", "forward_gemm", "backward_input",
                                       "backward_weight"};
  state.SetLabel(std::string(kNames[op]) + " " + ChosenCpuTarget() +
                 " threads=" + std::to_string(pool.size()));
}

void Shapes(benchmark::internal::Benchmark* b) {
  const int64_t shapes[][3] = {
      {2048, 768, 256}, {2048, 256, 768}, {2048, 32000, 288}, {441, 151936, 256}};
  for (const auto& s : shapes) {
    for (const int64_t threads : {1, 2}) {
      for (const int64_t op : {kForward, kForwardGemm, kBackwardInput, kBackwardWeight}) {
        b->Args({s[0], s[1], s[2], threads, op});
      }
    }
  }
  b->ArgNames({"n_tok", "n_out", "n_in", "threads", "op"});
  b->Unit(benchmark::kMillisecond);
  b->UseRealTime();
}

BENCHMARK(BM_Linear)->Apply(Shapes);

}  // namespace
}  // namespace arle::kernels
