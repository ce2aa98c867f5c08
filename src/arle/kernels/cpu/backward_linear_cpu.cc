// Highway linear backward kernels: one register-tiled GEMM (MatMulBackwardInput and
// MatMulBackwardWeight are both c (+)= A * b with b row-major), the bias column sums, the
// embedding scatter-add and the cross-entropy rows. Every c element is one FMA chain over k in
// ascending order; blocking over k stores the running sum in c and reloads it (exact), so the
// bits depend only on the SIMD target, never on blocking, rows or threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/check.h"
#include "arle/kernels/cpu/cpu_kernels.h"
#include "arle/kernels/cross_entropy.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "arle/kernels/cpu/backward_linear_cpu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// After highway.h, per target:
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Register tile: kMR rows of c x kNV vectors. AVX-512 has 32 vector registers: 6 x 4
// accumulators + 4 b vectors + 1 broadcast = 29. Elsewhere (AVX2, SSE4, NEON as compiled here)
// 16 are assumed: 6 x 2 + 2 + 1 = 15.
constexpr int kMR = 6;
#if HWY_TARGET <= HWY_AVX3
constexpr int kNV = 4;
#else
constexpr int kNV = 2;
#endif
// Bytes of the packed A block (rows x kc floats), which stays in L2 while B's micro-panels stream
// past it: rows as many as fit (a multiple of the tile's, at most the caller's 384-row blocks),
// so B is read once per that many rows of c.
constexpr int64_t kPackedABytes = 256 << 10;

// A's view for a tile: element (r, k) at a[r * row + k * col] (packed k-major: row 1, col mr;
// A's own rows when they are contiguous in k: row a_row, col 1).
struct ATile {
  const float* a;
  int64_t row, col;
};

// c[0..MR) x [0..NV vectors) (+)= A (MR x kc) * b (kc rows, ldb apart).
template <int MR, int NV>
HWY_INLINE void Tile(ATile at, const float* HWY_RESTRICT b, int64_t ldb, float* HWY_RESTRICT c,
                     int64_t ldc, int64_t kc, bool zero) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF acc[MR][NV];
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < NV; ++v) {
      acc[r][v] = zero ? hn::Zero(df) : hn::LoadU(df, c + r * ldc + v * lanes);
    }
  }
  const float* HWY_RESTRICT a[MR];
  for (int r = 0; r < MR; ++r) a[r] = at.a + r * at.row;
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * ldb;
    VF bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = hn::LoadU(df, bk + v * lanes);
    for (int r = 0; r < MR; ++r) {
      const VF av = hn::Set(df, a[r][k * at.col]);
      for (int v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < NV; ++v) hn::StoreU(acc[r][v], df, c + r * ldc + v * lanes);
  }
}

template <int MR>
HWY_INLINE void TileNv(int nv, ATile at, const float* b, int64_t ldb, float* c, int64_t ldc,
                       int64_t kc, bool zero) {
  if constexpr (kNV >= 4) {
    if (nv == 4) return Tile<MR, 4>(at, b, ldb, c, ldc, kc, zero);
    if (nv == 3) return Tile<MR, 3>(at, b, ldb, c, ldc, kc, zero);
  }
  if (nv == 2) return Tile<MR, 2>(at, b, ldb, c, ldc, kc, zero);
  Tile<MR, 1>(at, b, ldb, c, ldc, kc, zero);
}

// A tile of mr (1..kMR) rows and nv (1..kNV) vectors.
HWY_INLINE void AnyTile(int64_t mr, int nv, ATile at, const float* b, int64_t ldb, float* c,
                        int64_t ldc, int64_t kc, bool zero) {
  switch (mr) {
    case 6:
      return TileNv<6>(nv, at, b, ldb, c, ldc, kc, zero);
    case 5:
      return TileNv<5>(nv, at, b, ldb, c, ldc, kc, zero);
    case 4:
      return TileNv<4>(nv, at, b, ldb, c, ldc, kc, zero);
    case 3:
      return TileNv<3>(nv, at, b, ldb, c, ldc, kc, zero);
    case 2:
      return TileNv<2>(nv, at, b, ldb, c, ldc, kc, zero);
    default:
      return TileNv<1>(nv, at, b, ldb, c, ldc, kc, zero);
  }
}

// B's rows [k0, k0 + kc) x columns [n0, n0 + width) into dst, row-major with rows `width` apart:
// the micro-panel the tiles read when B is not row-major in memory (MatMul's w transposed, read
// here one weight row at a time).
void PackB(const GemmParams<float>& p, int64_t k0, int64_t kc, int64_t n0, int64_t width,
           float* HWY_RESTRICT dst) {
  for (int64_t j = 0; j < width; ++j) {
    const float* src = p.b + k0 * p.b_row + (n0 + j) * p.b_col;
    for (int64_t k = 0; k < kc; ++k) dst[k * width + j] = src[k * p.b_row];
  }
}

void GemmBlock(const GemmParams<float>& p, int64_t m_begin, int64_t m_end, int64_t n_begin,
               int64_t n_end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  if (p.k == 0) {
    if (p.accumulate) return;
    for (int64_t m = m_begin; m < m_end; ++m) {
      std::fill(p.c + m * p.n + n_begin, p.c + m * p.n + n_end, 0.0f);
    }
    return;
  }
  // k per block: a b micro-panel (kc x kNV vectors) of about 32 KiB stays in L1 across the tiles.
  const int64_t kc_max = std::max<int64_t>(16, 8192 / (kNV * lanes));
  // Whole vectors up to the last of the matrix (not of the block: a column's code must not
  // depend on the split), then the scalar tail.
  const int64_t n_vec = std::min(n_end, p.n / lanes * lanes);
  const bool pack_b = p.b_col != 1;
  const bool pack_a = p.a_col != 1;
  const int64_t mc_rows =
      std::clamp<int64_t>(kPackedABytes / (4 * kc_max) / kMR * kMR, kMR, kGemmBlockRows);
  // Cache-line-aligned panels (core::Buffer, as the widened rows of matmul_cpu.cc): a
  // std::vector's alignment follows the thread's malloc arena.
  thread_local core::Buffer packed_a_buffer, packed_b_buffer;
  auto grow = [](core::Buffer& b, int64_t floats) {
    if (static_cast<int64_t>(b.size()) < floats * 4)
      b = core::Buffer(static_cast<size_t>(floats * 4));
    return b.as<float>();
  };
  float* const packed = grow(packed_a_buffer, mc_rows * kc_max);
  float* const packed_b = pack_b ? grow(packed_b_buffer, kc_max * kNV * lanes) : nullptr;
  for (int64_t m0 = m_begin; m0 < m_end; m0 += mc_rows) {
    const int64_t m1 = std::min(m_end, m0 + mc_rows);
    for (int64_t k0 = 0; k0 < p.k; k0 += kc_max) {
      const int64_t kc = std::min(p.k - k0, kc_max);
      const bool zero = !p.accumulate && k0 == 0;
      // A's rows [m0, m1) x [k0, k0 + kc): read in place when they are contiguous in k (x, dy),
      // else packed tile by tile, k-major within a tile, so the broadcasts read one stream
      // (dy transposed).
      if (pack_a) {
        for (int64_t m = m0; m < m1; m += kMR) {
          const int64_t mr = std::min<int64_t>(kMR, m1 - m);
          float* dst = packed + (m - m0) * kc;
          if (p.a_row == 1) {  // dy transposed: a tile's rows are adjacent in each of A's columns
            for (int64_t k = 0; k < kc; ++k) {
              std::memcpy(dst + k * mr, p.a + m + (k0 + k) * p.a_col, mr * sizeof(float));
            }
            continue;
          }
          for (int64_t k = 0; k < kc; ++k) {
            const float* src = p.a + m * p.a_row + (k0 + k) * p.a_col;
            for (int64_t r = 0; r < mr; ++r) dst[k * mr + r] = src[r * p.a_row];
          }
        }
      }
      auto a_tile = [&](int64_t m) -> ATile {
        if (!pack_a) return {p.a + m * p.a_row + k0, p.a_row, 1};
        return {packed + (m - m0) * kc, 1, std::min<int64_t>(kMR, m1 - m)};
      };
      for (int64_t n0 = n_begin; n0 < n_vec;) {
        const int nv = static_cast<int>(std::min<int64_t>(kNV, (n_vec - n0) / lanes));
        const float* b = p.b + k0 * p.b_row + n0;
        int64_t ldb = p.b_row;
        if (pack_b) {
          PackB(p, k0, kc, n0, nv * lanes, packed_b);
          b = packed_b;
          ldb = nv * lanes;
        }
        for (int64_t m = m0; m < m1; m += kMR) {
          AnyTile(std::min<int64_t>(kMR, m1 - m), nv, a_tile(m), b, ldb, p.c + m * p.n + n0, p.n,
                  kc, zero);
        }
        n0 += nv * lanes;
      }
      // Columns past the last whole vector: scalar multiply-adds, k ascending.
      for (int64_t m = m0; m < m1; m += kMR) {
        const int64_t mr = std::min<int64_t>(kMR, m1 - m);
        const ATile at = a_tile(m);
        for (int64_t r = 0; r < mr; ++r) {
          float* c = p.c + (m + r) * p.n;
          for (int64_t j = std::max(n_begin, n_vec); j < n_end; ++j) {
            const float* b = p.b + k0 * p.b_row + j * p.b_col;
            float acc = zero ? 0.0f : c[j];
            for (int64_t k = 0; k < kc; ++k) acc += at.a[r * at.row + k * at.col] * b[k * p.b_row];
            c[j] = acc;
          }
        }
      }
    }
  }
}

// Plain f32 additions in t order: the same bits as ref::ColumnSums.
void ColumnSums(const float* a, int64_t a_row, int64_t n_rows, bool accumulate, float* sum,
                int64_t begin, int64_t end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t j = begin;
  for (; j + lanes <= end; j += lanes) {
    VF acc = accumulate ? hn::LoadU(df, sum + j) : hn::Zero(df);
    for (int64_t t = 0; t < n_rows; ++t) acc = hn::Add(acc, hn::LoadU(df, a + t * a_row + j));
    hn::StoreU(acc, df, sum + j);
  }
  for (; j < end; ++j) {
    float acc = accumulate ? sum[j] : 0.0f;
    for (int64_t t = 0; t < n_rows; ++t) acc += a[t * a_row + j];
    sum[j] = acc;
  }
}

// Plain f32 additions in token order: the same bits as ref::EmbeddingBackwardColumns.
void EmbeddingBackwardColumns(const EmbeddingBackwardParams<float>& p, int64_t c_begin,
                              int64_t c_end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t t = 0; t < p.n_tok; ++t) {
    const float* src = p.dout + t * p.n_embd;
    float* dst = p.dtable + static_cast<int64_t>(p.ids[t]) * p.n_embd;
    int64_t j = c_begin;
    for (; j + lanes <= c_end; j += lanes) {
      hn::StoreU(hn::Add(hn::LoadU(df, dst + j), hn::LoadU(df, src + j)), df, dst + j);
    }
    for (; j < c_end; ++j) dst[j] += src[j];
  }
}

// Three passes over the row: max, exp(x - max) stored in place with its sum (Highway's Exp,
// within a few ulp of std::exp), then the scale.
void CrossEntropyRows(const CrossEntropyParams<float>& p, int64_t begin, int64_t end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t n = p.n_vocab;
  const int64_t n_vec = n / lanes * lanes;
  for (int64_t r = begin; r < end; ++r) {
    float* row = p.logits + r * n;
    const int32_t target = p.targets[r];
    if (target == kIgnoreIndex) {
      std::fill(row, row + n, 0.0f);
      p.losses[r] = 0;
      continue;
    }
    float max = -INFINITY;
    if (n_vec > 0) {
      VF vmax = hn::LoadU(df, row);
      for (int64_t j = lanes; j < n_vec; j += lanes) vmax = hn::Max(vmax, hn::LoadU(df, row + j));
      max = hn::GetLane(hn::MaxOfLanes(df, vmax));
    }
    for (int64_t j = n_vec; j < n; ++j) max = std::max(max, row[j]);
    const float x_target = row[target];
    const VF vm = hn::Set(df, max);
    VF vsum = hn::Zero(df);
    for (int64_t j = 0; j < n_vec; j += lanes) {
      const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, row + j), vm));
      hn::StoreU(e, df, row + j);
      vsum = hn::Add(vsum, e);
    }
    float sum = hn::GetLane(hn::SumOfLanes(df, vsum));
    for (int64_t j = n_vec; j < n; ++j) {
      row[j] = std::exp(row[j] - max);
      sum += row[j];
    }
    p.losses[r] = (max + std::log(sum)) - x_target;
    const float scale = p.grad_scale / sum;
    const VF vs = hn::Set(df, scale);
    for (int64_t j = 0; j < n_vec; j += lanes) {
      hn::StoreU(hn::Mul(hn::LoadU(df, row + j), vs), df, row + j);
    }
    for (int64_t j = n_vec; j < n; ++j) row[j] *= scale;
    row[target] -= p.grad_scale;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace arle::kernels::cpu {

HWY_EXPORT(GemmBlock);
HWY_EXPORT(ColumnSums);
HWY_EXPORT(EmbeddingBackwardColumns);
HWY_EXPORT(CrossEntropyRows);

void GemmBlock(const GemmParams<float>& p, int64_t m_begin, int64_t m_end, int64_t n_begin,
               int64_t n_end) {
  HWY_DYNAMIC_DISPATCH(GemmBlock)(p, m_begin, m_end, n_begin, n_end);
}

void ColumnSums(const float* a, int64_t a_row, int64_t n_rows, bool accumulate, float* sum,
                int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(ColumnSums)(a, a_row, n_rows, accumulate, sum, begin, end);
}

void EmbeddingBackwardColumns(const EmbeddingBackwardParams<float>& p, int64_t c_begin,
                              int64_t c_end) {
  HWY_DYNAMIC_DISPATCH(EmbeddingBackwardColumns)(p, c_begin, c_end);
}

void CrossEntropyRows(const CrossEntropyParams<float>& p, int64_t begin, int64_t end) {
  HWY_DYNAMIC_DISPATCH(CrossEntropyRows)(p, begin, end);
}

}  // namespace arle::kernels::cpu
#endif  // HWY_ONCE
