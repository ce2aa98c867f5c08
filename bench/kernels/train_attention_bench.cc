// Training attention micro-benchmark: CausalAttention forward + backward at a small Qwen3/Llama
// training shape (8 sequences of 256 tokens, 4 query heads over 2 KV heads of 64), on 1 and 2
// threads. Run: build/<dir>/bench/kernels/arle_bench_kernels --benchmark_filter=CausalAttention
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>

#include "arle/core/buffer.h"
#include "arle/core/random.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/attention.h"
#include "arle/kernels/context.h"

namespace arle::kernels {
namespace {

constexpr int64_t kNSeq = 8, kSeqLen = 256, kNHead = 4, kNHeadKv = 2, kHeadDim = 64;

core::Buffer RandomF32(int64_t n, core::Rng& rng) {
  core::Buffer b(n * sizeof(float));
  for (int64_t i = 0; i < n; ++i) b.as<float>()[i] = static_cast<float>(rng.Normal());
  return b;
}

// args: threads, backward (0: forward only, 1: forward + backward).
void BM_CausalAttentionTrain(benchmark::State& state) {
  core::ThreadPool pool(static_cast<int>(state.range(0)));
  const Context ctx = Context::Cpu(Backend::kCpu, pool);
  core::Rng rng(1);
  const int64_t n = kNSeq * kSeqLen, nq = n * kNHead * kHeadDim, nkv = n * kNHeadKv * kHeadDim;
  core::Buffer qb = RandomF32(nq, rng), kb = RandomF32(nkv, rng), vb = RandomF32(nkv, rng);
  core::Buffer db = RandomF32(nq, rng), ob(nq * 4), lb(n * kNHead * 4), dqb(nq * 4), dkb(nkv * 4),
      dvb(nkv * 4);
  const core::Tensor q = qb.AsTensor(core::DType::kF32, {n, kNHead, kHeadDim});
  const core::Tensor k = kb.AsTensor(core::DType::kF32, {n, kNHeadKv, kHeadDim});
  const core::Tensor v = vb.AsTensor(core::DType::kF32, {n, kNHeadKv, kHeadDim});
  const core::Tensor dout = db.AsTensor(core::DType::kF32, {n, kNHead, kHeadDim});
  core::Tensor out = ob.AsTensor(core::DType::kF32, {n, kNHead, kHeadDim});
  core::Tensor lse = lb.AsTensor(core::DType::kF32, {n, kNHead});
  core::Tensor dq = dqb.AsTensor(core::DType::kF32, {n, kNHead, kHeadDim});
  core::Tensor dk = dkb.AsTensor(core::DType::kF32, {n, kNHeadKv, kHeadDim});
  core::Tensor dv = dvb.AsTensor(core::DType::kF32, {n, kNHeadKv, kHeadDim});
  const float scale = 0.125f;
  for (auto _ : state) {
    CausalAttention(ctx, {.q = &q, .k = &k, .v = &v, .n_seq = kNSeq, .seq_len = kSeqLen,
                          .scale = scale, .out = &out, .lse = &lse});
    if (state.range(1) != 0) {
      CausalAttentionBackward(ctx, {.q = &q, .k = &k, .v = &v, .out = &out, .lse = &lse,
                                    .dout = &dout, .n_seq = kNSeq, .seq_len = kSeqLen,
                                    .scale = scale, .dq = &dq, .dk = &dk, .dv = &dv});
    }
    benchmark::DoNotOptimize(dv.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(n) * state.iterations(),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CausalAttentionTrain)
    ->ArgsProduct({{1, 2}, {0, 1}})
    ->ArgNames({"threads", "backward"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace arle::kernels
