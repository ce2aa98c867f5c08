// Highway matmul y = x * W^T for f32 activations and f32/f16/bf16 weights (GGUF block weights go
// to quant_dot_cpu.cc). Tiles of 4 weight rows x 3 tokens share weight loads; each output element
// keeps its own vector accumulator, so its value does not depend on the tile it falls in (batch
// invariance).
#include <algorithm>
#include <type_traits>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/check.h"
#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/ref/ref_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "arle/kernels/cpu/matmul_cpu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// After highway.h, per target:
#include "arle/kernels/cpu/widen-inl.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Output columns o0 .. o0+R-1 of tokens t0 .. t0+T-1.
// `w` points at weight row o0 (rows w_stride elements apart).
template <int R, int T, typename WT>
HWY_INLINE void Tile(const MatMulParams& a, const WT* w, int64_t w_stride, int64_t o0,
                     int64_t t0) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const int64_t n_in = a.n_in;
  const float* x = a.x + t0 * a.x_stride;
  VF acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = hn::Zero(df);
  int64_t i = 0;
  for (; i + n <= n_in; i += n) {
    VF wv[R];
    for (int r = 0; r < R; ++r) wv[r] = WidenLoad(df, w + r * w_stride + i);
    for (int t = 0; t < T; ++t) {
      const VF xv = hn::LoadU(df, x + t * a.x_stride + i);
      for (int r = 0; r < R; ++r) acc[r][t] = hn::MulAdd(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[r][t]));
      const float* xt = x + t * a.x_stride;
      for (int64_t j = i; j < n_in; ++j) s += xt[j] * WidenAt(w + r * w_stride + j, 0);
      if (a.bias != nullptr) s += ref::LoadAsF32(a.bias, a.bias_dtype, o0 + r);
      a.y[(t0 + t) * a.y_stride + o0 + r] = s;
    }
  }
}

// Tokens [tb, te) against weight rows [o, o + R) at `w` (row o). Three tokens per tile: 4 x 3
// accumulators, 4 weight vectors and one activation vector are one more than AVX2's 16
// registers, which the compiler covers with a memory operand (measured on a 2-core EPYC: 4 x 2 is
// 25 % slower, 4 x 4 spills and is slower still).
template <int R, typename WT>
HWY_INLINE void TokenBlock(const MatMulParams& a, const WT* w, int64_t w_stride, int64_t o,
                           int64_t tb, int64_t te) {
  int64_t t = tb;
  for (; t + 3 <= te; t += 3) Tile<R, 3, WT>(a, w, w_stride, o, t);
  for (; t + 2 <= te; t += 2) Tile<R, 2, WT>(a, w, w_stride, o, t);
  if (t < te) Tile<R, 1, WT>(a, w, w_stride, o, t);
}

// Widens `rows` rows of n_in 16-bit weights to f32 (exact, so results are unchanged).
template <typename WT>
HWY_INLINE void WidenRows(const WT* w, int64_t rows, int64_t n_in, float* out,
                          int64_t out_stride) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t r = 0; r < rows; ++r) {
    const WT* src = w + r * n_in;
    float* dst = out + r * out_stride;
    int64_t i = 0;
    for (; i + n <= n_in; i += n) hn::StoreU(WidenLoad(df, src + i), df, dst + i);
    for (; i < n_in; ++i) dst[i] = WidenAt(src + i, 0);
  }
}

// Token blocks keep a slab of activations in L2 while the weight rows stream past.
constexpr int64_t kTokenBlock = 64;

// 16-bit weight rows [o_begin, o_end) against tokens [tb, te): each 4-row block (and each
// remaining row) is first widened to f32 into a per-thread scratch, then multiplied by the f32
// tiles; each element sees the same f32 weights in the same order as with f32 storage.
template <typename WT>
void WidenedRows(const MatMulParams& a, const WT* w, int64_t o_begin, int64_t o_end, int64_t tb,
                 int64_t te) {
  // The scratch is cache-line aligned: the tiles load every widened vector many times, and a
  // std::vector's alignment depends on the malloc arena of the thread (a 32-byte offset made
  // every 64-byte load split two lines, 20 % of BF16 prefill on AVX-512).
  thread_local core::Buffer scratch;
  // Widened rows 64 bytes more than n_in apart: with n_in a multiple of 1024 the four rows (and
  // the activation rows, n_in apart) would otherwise share L1 sets and 4K-alias each other.
  const int64_t stride = a.n_in + 16;
  if (static_cast<int64_t>(scratch.size()) < 4 * stride * 4) {
    scratch = core::Buffer(static_cast<size_t>(4 * stride * 4));
  }
  float* rows = scratch.as<float>();
  int64_t o = o_begin;
  for (; o + 4 <= o_end; o += 4) {
    WidenRows(w + o * a.n_in, 4, a.n_in, rows, stride);
    TokenBlock<4, float>(a, rows, stride, o, tb, te);
  }
  for (; o < o_end; ++o) {
    WidenRows(w + o * a.n_in, 1, a.n_in, rows, stride);
    TokenBlock<1, float>(a, rows, stride, o, tb, te);
  }
}

template <typename WT>
void MatMulRowsT(const MatMulParams& a, int64_t o_begin, int64_t o_end) {
  const WT* w = static_cast<const WT*>(a.w);
  const int64_t n_in = a.n_in;
  for (int64_t tb = 0; tb < a.n_tok; tb += kTokenBlock) {
    const int64_t te = std::min(a.n_tok, tb + kTokenBlock);
    // With several tokens per block, 16-bit weights are widened once per 4-row block instead of
    // once per tile.
    if (!std::is_same_v<WT, float> && te - tb >= 4) {
      WidenedRows(a, w, o_begin, o_end, tb, te);
      continue;
    }
    int64_t o = o_begin;
    for (; o + 4 <= o_end; o += 4) TokenBlock<4, WT>(a, w + o * n_in, n_in, o, tb, te);
    for (; o < o_end; ++o) TokenBlock<1, WT>(a, w + o * n_in, n_in, o, tb, te);
  }
}

void MatMulRows(const MatMulParams& a, int64_t o_begin, int64_t o_end) {
  switch (a.w_dtype) {
    case core::DType::kF32:
      MatMulRowsT<float>(a, o_begin, o_end);
      break;
    case core::DType::kF16:
      MatMulRowsT<hwy::float16_t>(a, o_begin, o_end);
      break;
    case core::DType::kBF16:
      MatMulRowsT<hwy::bfloat16_t>(a, o_begin, o_end);
      break;
    default:
      ARLE_CHECK(false) << "cpu::MatMulRows: " << core::DTypeName(a.w_dtype);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace arle::kernels::cpu {

HWY_EXPORT(MatMulRows);

void MatMulRows(const MatMulParams& args, int64_t o_begin, int64_t o_end) {
  HWY_DYNAMIC_DISPATCH(MatMulRows)(args, o_begin, o_end);
}

const char* ChosenTargetName() {
  // The lowest set bit of the supported-and-compiled mask is the best target (Highway's order).
  const int64_t targets = hwy::SupportedTargets() & HWY_TARGETS;
  for (int64_t bit = 1; bit != 0 && bit <= targets; bit <<= 1) {
    if (targets & bit) return hwy::TargetName(bit);
  }
  return "none";
}

}  // namespace arle::kernels::cpu
#endif  // HWY_ONCE
