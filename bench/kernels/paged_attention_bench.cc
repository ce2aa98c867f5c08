// Paged attention micro-benchmarks at Qwen3-0.6B head shapes: a decode step (one token per
// sequence) against contiguous Attention over the same rows (one call per sequence), and a
// prefill chunk at the end of a long cached context.
// Run: build/<dir>/bench/kernels/arle_bench_kernels --benchmark_filter=Attention
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/half.h"
#include "arle/core/random.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/attention.h"
#include "arle/kernels/context.h"
#include "arle/kernels/cpu_targets.h"
#include "arle/kernels/paged_attention.h"

namespace arle::kernels {
namespace {

constexpr int64_t kNHead = 16, kNHeadKv = 8, kHeadDim = 128, kBlockSize = 16;

// Threads: $ARLE_THREADS when set, else one per physical core.
core::ThreadPool& AttnPool() {
  static core::ThreadPool pool([] {
    const char* env = std::getenv("ARLE_THREADS");
    return env != nullptr ? std::atoi(env) : 0;
  }());
  return pool;
}

const Context& AttnCtx() {
  static const Context ctx = Context::Cpu(Backend::kCpu, AttnPool());
  return ctx;
}

void Fill(core::Buffer& buf, core::DType dtype, int64_t n, core::Rng& rng) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(rng.Normal());
    if (dtype == core::DType::kF32) {
      buf.as<float>()[i] = v;
    } else if (dtype == core::DType::kBF16) {
      buf.as<uint16_t>()[i] = core::F32ToBF16(v);
    } else {
      buf.as<uint16_t>()[i] = core::F32ToF16(v);
    }
  }
}

// A paged K/V cache of n_blocks random blocks, with the block ids in a shuffled order (`perm`), so
// tables point all over the cache as they do in a long-running server.
struct RandomPagedCache {
  RandomPagedCache(core::DType dtype, int64_t n_blocks, core::Rng& rng)
      : n_kv(n_blocks * kBlockSize * kNHeadKv * kHeadDim),
        kb(n_kv * core::ElementSize(dtype)),
        vb(n_kv * core::ElementSize(dtype)),
        layer{kb.data(), vb.data(), dtype, n_blocks, kBlockSize, kNHeadKv, kHeadDim},
        perm(n_blocks) {
    Fill(kb, dtype, n_kv, rng);
    Fill(vb, dtype, n_kv, rng);
    std::iota(perm.begin(), perm.end(), 0);
    for (size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[rng.NextU64() % i]);
  }
  int64_t n_kv;
  core::Buffer kb, vb;
  PagedKvLayer layer;
  std::vector<int32_t> perm;
};

// args: n_seq, n_ctx, dtype (0 f32, 1 bf16, 2 f16).
void BM_PagedAttentionDecode(benchmark::State& state) {
  const int64_t n_seq = state.range(0), n_ctx = state.range(1);
  const core::DType dtype = state.range(2) == 0   ? core::DType::kF32
                            : state.range(2) == 1 ? core::DType::kBF16
                                                  : core::DType::kF16;
  const int64_t blocks_per_seq = (n_ctx + kBlockSize - 1) / kBlockSize;
  core::Rng rng(1);
  RandomPagedCache cache(dtype, n_seq * blocks_per_seq, rng);
  std::vector<const int32_t*> tables(n_seq);
  for (int64_t s = 0; s < n_seq; ++s) tables[s] = cache.perm.data() + s * blocks_per_seq;
  const std::vector<int32_t> positions(n_seq, static_cast<int32_t>(n_ctx - 1));
  core::Buffer qb(n_seq * kNHead * kHeadDim * 4), ob(n_seq * kNHead * kHeadDim * 4);
  Fill(qb, core::DType::kF32, n_seq * kNHead * kHeadDim, rng);
  core::Tensor q = qb.AsTensor(core::DType::kF32, {n_seq, kNHead, kHeadDim});
  core::Tensor out = ob.AsTensor(core::DType::kF32, {n_seq, kNHead, kHeadDim});
  for (auto _ : state) {
    PagedAttention(AttnCtx(), {.q = &q,
                               .layer = &cache.layer,
                               .block_tables = tables,
                               .positions = positions,
                               .scale = 0.088f,
                               .out = &out});
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * n_seq * n_ctx * kNHeadKv * kHeadDim *
                          core::ElementSize(dtype));
  state.SetLabel(std::string(core::DTypeName(dtype)) + " " + ChosenCpuTarget() +
                 " threads=" + std::to_string(AttnPool().size()));
}

// A prefill chunk of one sequence: n_new query tokens at the end of an n_ctx context (a chat turn
// whose earlier turns come from the prefix cache). Every query reads the K/V rows before it, so
// the kernel's row reuse across tokens decides the speed. args: n_new, n_ctx, dtype.
void BM_PagedAttentionPrefill(benchmark::State& state) {
  const int64_t n_new = state.range(0), n_ctx = state.range(1);
  const core::DType dtype = state.range(2) == 0 ? core::DType::kF32 : core::DType::kBF16;
  core::Rng rng(2);
  RandomPagedCache cache(dtype, (n_ctx + kBlockSize - 1) / kBlockSize, rng);
  const std::vector<int32_t>& table = cache.perm;
  const std::vector<const int32_t*> tables(n_new, table.data());
  std::vector<int32_t> positions(n_new);
  std::iota(positions.begin(), positions.end(), static_cast<int32_t>(n_ctx - n_new));
  core::Buffer qb(n_new * kNHead * kHeadDim * 4), ob(n_new * kNHead * kHeadDim * 4);
  Fill(qb, core::DType::kF32, n_new * kNHead * kHeadDim, rng);
  core::Tensor q = qb.AsTensor(core::DType::kF32, {n_new, kNHead, kHeadDim});
  core::Tensor out = ob.AsTensor(core::DType::kF32, {n_new, kNHead, kHeadDim});
  for (auto _ : state) {
    PagedAttention(AttnCtx(), {.q = &q,
                               .layer = &cache.layer,
                               .block_tables = tables,
                               .positions = positions,
                               .scale = 0.088f,
                               .out = &out});
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  // Query-key pairs per second (each is a head_dim dot product and a head_dim weighted add).
  int64_t pairs = 0;
  for (int32_t p : positions) pairs += (p + 1) * kNHead;
  state.counters["pairs/s"] = benchmark::Counter(static_cast<double>(pairs * state.iterations()),
                                                 benchmark::Counter::kIsRate);
  state.SetLabel(std::string(core::DTypeName(dtype)) + " " + ChosenCpuTarget() +
                 " threads=" + std::to_string(AttnPool().size()));
}

// The contiguous baseline: the same decode, one Attention call per sequence over f32 rows.
void BM_ContiguousAttentionDecode(benchmark::State& state) {
  const int64_t n_seq = state.range(0), n_ctx = state.range(1);
  const int64_t n_kv = n_ctx * kNHeadKv * kHeadDim;
  core::Rng rng(1);
  std::vector<core::Buffer> ks, vs;
  for (int64_t s = 0; s < n_seq; ++s) {
    ks.emplace_back(n_kv * 4);
    vs.emplace_back(n_kv * 4);
    Fill(ks.back(), core::DType::kF32, n_kv, rng);
    Fill(vs.back(), core::DType::kF32, n_kv, rng);
  }
  core::Buffer qb(n_seq * kNHead * kHeadDim * 4), ob(n_seq * kNHead * kHeadDim * 4);
  Fill(qb, core::DType::kF32, n_seq * kNHead * kHeadDim, rng);
  const std::vector<int32_t> position = {static_cast<int32_t>(n_ctx - 1)};
  core::Tensor q = qb.AsTensor(core::DType::kF32, {n_seq, kNHead, kHeadDim});
  core::Tensor out = ob.AsTensor(core::DType::kF32, {n_seq, kNHead, kHeadDim});
  for (auto _ : state) {
    for (int64_t s = 0; s < n_seq; ++s) {
      core::Tensor o = out.Slice(s, s + 1);
      const core::Tensor q1 = q.Slice(s, s + 1);
      const core::Tensor k = ks[s].AsTensor(core::DType::kF32, {n_ctx, kNHeadKv, kHeadDim});
      const core::Tensor v = vs[s].AsTensor(core::DType::kF32, {n_ctx, kNHeadKv, kHeadDim});
      Attention(AttnCtx(),
                {.q = &q1, .k = &k, .v = &v, .positions = position, .scale = 0.088f, .out = &o});
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * n_seq * n_kv * 4);
}

BENCHMARK(BM_PagedAttentionDecode)
    ->ArgsProduct({{1, 16}, {1024}, {0, 1, 2}})
    ->ArgNames({"n_seq", "n_ctx", "dtype"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_PagedAttentionPrefill)
    ->ArgsProduct({{80}, {736}, {0, 1}})
    ->ArgNames({"n_new", "n_ctx", "dtype"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_ContiguousAttentionDecode)
    ->ArgsProduct({{1, 16}, {1024}})
    ->ArgNames({"n_seq", "n_ctx"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace arle::kernels
