// Highway linear backward kernels: one register-tiled GEMM (MatMulBackwardInput,
// MatMulBackwardWeight and MatMul's kGemm order are all c (+)= A * B), the bias column sums, the
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
// The blocking. Per slice of k (kc rows of B), a micro-panel of B (kc x kNV vectors, about 32 KiB)
// stays in L1 while the tiles of a row block stream A past it from L2. The row block's A (rows x
// kc floats, in place or packed) is about kPackedABytes (rows a multiple of the tile's, at most
// the caller's 384-row blocks), so B is read once per that many rows of c. When A is read in
// place, c's columns go in blocks of kNC outside the k slices, so the c block (rows x kNC) stays
// in L2 between slices instead of streaming from memory once per slice.
constexpr int64_t kPackedABytes = 256 << 10;
constexpr int64_t kPanelWidth = kNV * static_cast<int64_t>(hn::MaxLanes(DF()));
constexpr int64_t kNC = 192;
// The most bytes of a row block's A (all of k) that are read in place once per column block
// rather than once: with c's block, within a 1.25-2 MiB L2 (384 rows of a 288-long k is 442 KiB).
constexpr int64_t kL2ResidentABytes = 768 << 10;

// A's view for a tile: element (r, k) at a[r * row + k], rows contiguous in k (A's own rows, or
// their StridedCopy with rows kc apart).
struct ATile {
  const float* a;
  int64_t row;
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
      const VF av = hn::Set(df, a[r][k]);
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

// dst[i * dst_row + j] = src[j * src_row + i] for i, j < kTransposeSide: a square of floats
// transposed in registers (the interleave cascade of 4 x 4 blocks, then of 128-bit lanes), or
// element by element where no such cascade is written.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr int64_t kTransposeSide = 16;
HWY_INLINE void TransposeSquare(const float* HWY_RESTRICT src, int64_t src_row,
                                float* HWY_RESTRICT dst, int64_t dst_row) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * src_row);
  for (int i = 0; i < 16; i += 2) {  // per 128-bit lane: (a0 b0 a1 b1), (a2 b2 a3 b3)
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {  // rows 4g..4g+3: lane L of r[g + e] holds column 4L + e
    const __m512d t0 = _mm512_castps_pd(t[g]), t1 = _mm512_castps_pd(t[g + 1]);
    const __m512d t2 = _mm512_castps_pd(t[g + 2]), t3 = _mm512_castps_pd(t[g + 3]);
    r[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    r[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    r[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    r[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  // Column 4L + e gathers lane L of r[e], r[4 + e], r[8 + e] and r[12 + e].
  for (int e = 0; e < 4; ++e) {
    const __m512 even_lo = _mm512_shuffle_f32x4(r[e], r[4 + e], 0x88);
    const __m512 odd_lo = _mm512_shuffle_f32x4(r[e], r[4 + e], 0xdd);
    const __m512 even_hi = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0x88);
    const __m512 odd_hi = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0xdd);
    _mm512_storeu_ps(dst + e * dst_row, _mm512_shuffle_f32x4(even_lo, even_hi, 0x88));
    _mm512_storeu_ps(dst + (4 + e) * dst_row, _mm512_shuffle_f32x4(odd_lo, odd_hi, 0x88));
    _mm512_storeu_ps(dst + (8 + e) * dst_row, _mm512_shuffle_f32x4(even_lo, even_hi, 0xdd));
    _mm512_storeu_ps(dst + (12 + e) * dst_row, _mm512_shuffle_f32x4(odd_lo, odd_hi, 0xdd));
  }
}
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
constexpr int64_t kTransposeSide = 8;
HWY_INLINE void TransposeSquare(const float* HWY_RESTRICT src, int64_t src_row,
                                float* HWY_RESTRICT dst, int64_t dst_row) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_row);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int g = 0; g < 8; g += 4) {  // lane L of r[g + e] holds column 4L + e of rows g..g+3
    r[g] = _mm256_shuffle_ps(t[g], t[g + 2], 0x44);
    r[g + 1] = _mm256_shuffle_ps(t[g], t[g + 2], 0xee);
    r[g + 2] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0x44);
    r[g + 3] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0xee);
  }
  for (int e = 0; e < 4; ++e) {
    _mm256_storeu_ps(dst + e * dst_row, _mm256_permute2f128_ps(r[e], r[4 + e], 0x20));
    _mm256_storeu_ps(dst + (4 + e) * dst_row, _mm256_permute2f128_ps(r[e], r[4 + e], 0x31));
  }
}
#else
constexpr int64_t kTransposeSide = 1;
HWY_INLINE void TransposeSquare(const float* HWY_RESTRICT src, int64_t, float* HWY_RESTRICT dst,
                                int64_t) {
  dst[0] = src[0];
}
#endif

// dst[r * dst_row + c] = src[r * r_stride + c * c_stride] for r < rows, c < cols: row copies
// when c_stride is 1; squares transposed in registers when r_stride is 1 (a transposed view:
// whole cache lines of its rows are read), element by element for the rest.
void StridedCopy(const float* HWY_RESTRICT src, int64_t r_stride, int64_t c_stride, int64_t rows,
                 int64_t cols, float* HWY_RESTRICT dst, int64_t dst_row) {
  if (c_stride == 1) {
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(dst + r * dst_row, src + r * r_stride, cols * sizeof(float));
    }
    return;
  }
  int64_t r_done = 0, c_done = 0;
  if (kTransposeSide > 1 && r_stride == 1) {
    r_done = rows / kTransposeSide * kTransposeSide;
    c_done = cols / kTransposeSide * kTransposeSide;
    for (int64_t r = 0; r < r_done; r += kTransposeSide) {
      for (int64_t c = 0; c < c_done; c += kTransposeSide) {
        TransposeSquare(src + r + c * c_stride, c_stride, dst + r * dst_row + c, dst_row);
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = r < r_done ? c_done : 0; c < cols; ++c) {
      dst[r * dst_row + c] = src[r * r_stride + c * c_stride];
    }
  }
}

// Columns [n_begin, n_end) of B, all k, into micro-panels (contract in cpu_kernels.h).
void PackGemmB(const GemmParams<float>& p, int64_t n_begin, int64_t n_end,
               float* HWY_RESTRICT dst) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
  const int64_t n_vec = std::min(n_end, p.n / lanes * lanes);
  for (int64_t j0 = n_begin; j0 < n_vec; j0 += kPanelWidth) {
    const int64_t w = std::min(kPanelWidth, n_vec - j0);
    StridedCopy(p.b + j0 * p.b_col, p.b_row, p.b_col, p.k, w, dst + j0 * p.k, w);
  }
}

int64_t GemmPanelWidth() { return kPanelWidth; }

void GemmBlock(const GemmParams<float>& p, const float* packed_b, int64_t m_begin, int64_t m_end,
               int64_t n_begin, int64_t n_end) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  if (p.k == 0) {
    if (p.accumulate) return;
    for (int64_t m = m_begin; m < m_end; ++m) {
      std::fill(p.c + m * p.n + n_begin, p.c + m * p.n + n_end, 0.0f);
    }
    return;
  }
  // k per slice: a b micro-panel (kc x kNV vectors) of about 32 KiB stays in L1 across the tiles.
  const int64_t kc_max = std::max<int64_t>(16, 8192 / kPanelWidth);
  // Whole vectors up to the last of the matrix (not of the block: a column's code must not
  // depend on the split), then the scalar tail.
  const int64_t n_all_vec = p.n / lanes * lanes;
  const int64_t n_vec = std::min(n_end, n_all_vec);
  const bool pack_a = p.a_col != 1;
  const int64_t mc_rows =
      std::clamp<int64_t>(kPackedABytes / (4 * kc_max) / kMR * kMR, kMR, kGemmBlockRows);
  // Cache-line aligned (core::Buffer, as the widened rows of matmul_cpu.cc): a std::vector's
  // alignment follows the thread's malloc arena.
  thread_local core::Buffer packed_a_buffer;
  if (pack_a && static_cast<int64_t>(packed_a_buffer.size()) < mc_rows * kc_max * 4) {
    packed_a_buffer = core::Buffer(static_cast<size_t>(mc_rows * kc_max * 4));
  }
  float* const packed_a = packed_a_buffer.as<float>();
  // The tiles of rows [m0, m1) x panels [n0, n1) for the slice [k0, k0 + kc).
  auto slice = [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t k0, int64_t kc) {
    const bool zero = !p.accumulate && k0 == 0;
    for (int64_t j = n0; j < n1; j += kPanelWidth) {
      const int nv = static_cast<int>(std::min(kPanelWidth, n1 - j) / lanes);
      // B in place (row-major) or PackGemmB's panel of columns [j, j + w): j starts a panel, as
      // n_begin is a multiple of kGemmColumnAlign and so of every target's panel width.
      const int64_t w = std::min(kPanelWidth, n_all_vec - j);
      const float* b = packed_b != nullptr ? packed_b + j * p.k + k0 * w : p.b + k0 * p.b_row + j;
      const int64_t ldb = packed_b != nullptr ? w : p.b_row;
      for (int64_t m = m0; m < m1; m += kMR) {
        const int64_t mr = std::min<int64_t>(kMR, m1 - m);
        const ATile at =
            pack_a ? ATile{packed_a + (m - m0) * kc, kc} : ATile{p.a + m * p.a_row + k0, p.a_row};
        AnyTile(mr, nv, at, b, ldb, p.c + m * p.n + j, p.n, kc, zero);
      }
    }
  };
  for (int64_t m0 = m_begin; n_begin < n_vec && m0 < m_end; m0 += mc_rows) {
    const int64_t m1 = std::min(m_end, m0 + mc_rows);
    // A's rows of the block in place, small enough to stay in L2 (a short k: the forward's x):
    // column blocks outermost, so c's block (rows x kNC) also stays in L2 across the slices.
    // Otherwise (a long k, whose A streams from memory, or A packed) the slices are outermost, so
    // A is read or packed once and the block's c, all its columns, is revisited per slice.
    const bool columns_outer = !pack_a && (m1 - m0) * p.k * 4 <= kL2ResidentABytes;
    if (!columns_outer) {
      for (int64_t k0 = 0; k0 < p.k; k0 += kc_max) {
        const int64_t kc = std::min(p.k - k0, kc_max);
        // A's rows [m0, m1) x the slice, rows kc apart (dy transposed in the weight gradient).
        if (pack_a) {
          StridedCopy(p.a + m0 * p.a_row + k0 * p.a_col, p.a_row, p.a_col, m1 - m0, kc, packed_a,
                      kc);
        }
        slice(m0, m1, n_begin, n_vec, k0, kc);
      }
      continue;
    }
    for (int64_t nb = n_begin; nb < n_vec; nb += kNC) {
      const int64_t nb_end = std::min(n_vec, nb + kNC);
      for (int64_t k0 = 0; k0 < p.k; k0 += kc_max) {
        slice(m0, m1, nb, nb_end, k0, std::min(p.k - k0, kc_max));
      }
    }
  }
  // Columns past the last whole vector: scalar multiply-adds, k ascending.
  for (int64_t m = m_begin; m < m_end; ++m) {
    float* c = p.c + m * p.n;
    const float* a = p.a + m * p.a_row;
    for (int64_t j = std::max(n_begin, n_vec); j < n_end; ++j) {
      const float* b = p.b + j * p.b_col;
      float acc = p.accumulate ? c[j] : 0.0f;
      for (int64_t k = 0; k < p.k; ++k) acc += a[k * p.a_col] * b[k * p.b_row];
      c[j] = acc;
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
    if (p.temperature != 1.0f) {
      const VF vt = hn::Set(df, p.temperature);
      for (int64_t j = 0; j < n_vec; j += lanes) {
        hn::StoreU(hn::Div(hn::LoadU(df, row + j), vt), df, row + j);
      }
      for (int64_t j = n_vec; j < n; ++j) row[j] /= p.temperature;
    }
    // d loss / d z = (softmax(z / T) - onehot) * g / T.
    const float g = p.grad_scale * (p.row_scales ? p.row_scales[r] : 1.0f) / p.temperature;
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
    const float scale = g / sum;
    const VF vs = hn::Set(df, scale);
    for (int64_t j = 0; j < n_vec; j += lanes) {
      hn::StoreU(hn::Mul(hn::LoadU(df, row + j), vs), df, row + j);
    }
    for (int64_t j = n_vec; j < n; ++j) row[j] *= scale;
    row[target] -= g;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace arle::kernels::cpu {

HWY_EXPORT(PackGemmB);
HWY_EXPORT(GemmPanelWidth);
HWY_EXPORT(GemmBlock);
HWY_EXPORT(ColumnSums);
HWY_EXPORT(EmbeddingBackwardColumns);
HWY_EXPORT(CrossEntropyRows);

void PackGemmB(const GemmParams<float>& p, int64_t n_begin, int64_t n_end, float* dst) {
  HWY_DYNAMIC_DISPATCH(PackGemmB)(p, n_begin, n_end, dst);
}

int64_t GemmPanelWidth() { return HWY_DYNAMIC_DISPATCH(GemmPanelWidth)(); }

float* GemmPackedBBuffer(int64_t floats) {
  thread_local core::Buffer buffer;
  if (static_cast<int64_t>(buffer.size()) < floats * 4) {
    buffer = core::Buffer(static_cast<size_t>(floats * 4));
  }
  return buffer.as<float>();
}

void GemmBlock(const GemmParams<float>& p, const float* packed_b, int64_t m_begin, int64_t m_end,
               int64_t n_begin, int64_t n_end) {
  HWY_DYNAMIC_DISPATCH(GemmBlock)(p, packed_b, m_begin, m_end, n_begin, n_end);
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
