// Integer block dot products (quant_dot.h) on the current Highway target. x86 targets from AVX2 up
// multiply 4/5/6/8-bit weights by 8-bit activations with vpmaddubsw (u8 x s8 pairs into int16,
// never saturating here: |weight quant| <= 128 and |activation quant| <= 127 keep a pair within
// 32512) and vpmaddwd (pairs times the int16 sub-block scale into int32), which Highway 1.0 does
// not expose, so those paths use the intrinsics on Highway's vectors. The integer sums are exact,
// and the float epilogue per block is the scalar code of ref::QuantDotRow, so every target gives
// its bits. Other targets compute ref::QuantDotRow per element.
//
// Tiling: one weight row against up to 4 tokens, so each weight block is loaded and unpacked once
// per 4 tokens; tokens come in blocks of 64 so their activations stay in L2 while rows stream.
#include <algorithm>
#include <cstring>

#include "arle/core/half.h"
#include "arle/kernels/quant.h"
#include "arle/kernels/quant_dot.h"
#include "arle/kernels/ref/ref_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "arle/kernels/cpu/quant_dot_cpu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace arle::kernels::cpu {
namespace HWY_NAMESPACE {

constexpr int64_t kTokenBlock = 64;
constexpr int kTokenTile = 4;

// Computes out[0 .. T) for one weight row and T tokens (acts[t] = token t's activation row).
// Kernel::Row<T>(w_row, acts, n_in, out).
template <typename Kernel>
void RowsByTokenTiles(const MatMulArgs& a, int64_t o_begin, int64_t o_end) {
  const int64_t row_bytes = *core::DTypeBytes(a.w_dtype, a.n_in);
  const int64_t act_bytes = ActRowBytes(a.w_dtype, a.n_in);
  const auto* xq = static_cast<const char*>(a.xq);
  auto store = [&](int64_t t, int64_t o, float v) {
    if (a.bias != nullptr) v += ref::LoadAsF32(a.bias, a.bias_dtype, o);
    a.y[t * a.y_stride + o] = v;
  };
  for (int64_t tb = 0; tb < a.n_tok; tb += kTokenBlock) {
    const int64_t te = std::min(a.n_tok, tb + kTokenBlock);
    for (int64_t o = o_begin; o < o_end; ++o) {
      const char* w = static_cast<const char*>(a.w) + o * row_bytes;
      int64_t t = tb;
      for (; t + kTokenTile <= te; t += kTokenTile) {
        const char* acts[kTokenTile];
        for (int k = 0; k < kTokenTile; ++k) acts[k] = xq + (t + k) * act_bytes;
        float out[kTokenTile];
        Kernel::template Row<kTokenTile>(w, acts, a.n_in, out);
        for (int k = 0; k < kTokenTile; ++k) store(t + k, o, out[k]);
      }
      for (; t < te; ++t) {
        const char* acts[1] = {xq + t * act_bytes};
        float out[1];
        Kernel::template Row<1>(w, acts, a.n_in, out);
        store(t, o, out[0]);
      }
    }
  }
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2

HWY_INLINE __m256i Load32(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Pairs of u8 x s8 products summed, then multiplied by the int16 lanes of `scale` and summed in
// pairs again: 8 int32 lanes, each the scaled sum of 4 products.
HWY_INLINE __m256i ScaledDot(__m256i u8, __m256i s8, __m256i scale) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u8, s8), scale);
}

// The exact sums of the lanes of a and of b.
HWY_INLINE void SumLanes2(__m256i a, __m256i b, int32_t* sum_a, int32_t* sum_b) {
  const __m256i h = _mm256_hadd_epi32(a, b);
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  s = _mm_hadd_epi32(s, s);
  *sum_a = _mm_cvtsi128_si32(s);
  *sum_b = _mm_extract_epi32(s, 1);
}

// Q8_0 / Q4_0: signed 8-bit weights (Q4_0's nibbles minus 8). The product of signed bytes goes
// through vpmaddubsw as |w| x (x with w's sign).
struct SignedBlockDot {
  static HWY_INLINE __m256i Dot(__m256i w, const int8_t* x) {
    const __m256i xs = _mm256_sign_epi8(Load32(x), w);
    return ScaledDot(_mm256_sign_epi8(w, w), xs, _mm256_set1_epi16(1));
  }
};

template <typename Block>
HWY_INLINE __m256i SignedWeights(const Block& b);

template <>
HWY_INLINE __m256i SignedWeights(const BlockQ8_0& b) {
  return Load32(b.qs);
}

template <>
HWY_INLINE __m256i SignedWeights(const BlockQ4_0& b) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m128i low4 = _mm_set1_epi8(15);
  const __m128i lo = _mm_and_si128(packed, low4);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), low4);
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

template <typename Block>
struct Q8Row {
  template <int T>
  static HWY_INLINE void Row(const char* w_row, const char* const* acts, int64_t n_in,
                             float* out) {
    const auto* w = reinterpret_cast<const Block*>(w_row);
    const ActBlockQ8* x[T];
    float acc[T];
    for (int t = 0; t < T; ++t) {
      x[t] = reinterpret_cast<const ActBlockQ8*>(acts[t]);
      acc[t] = 0.0f;
    }
    const int64_t n_blocks = n_in / kQK8_0;
    int64_t b = 0;
    // Four blocks at a time: their four integer sums come out of one reduction.
    for (; b + 4 <= n_blocks; b += 4) {
      __m256i wv[4];
      float dw[4];
      for (int k = 0; k < 4; ++k) {
        wv[k] = SignedWeights(w[b + k]);
        dw[k] = core::F16ToF32(w[b + k].d);
      }
      for (int t = 0; t < T; ++t) {
        __m256i v[4];
        for (int k = 0; k < 4; ++k) v[k] = SignedBlockDot::Dot(wv[k], x[t][b + k].q);
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]),
                                            _mm256_hadd_epi32(v[2], v[3]));
        alignas(16) int32_t isum[4];
        _mm_store_si128(reinterpret_cast<__m128i*>(isum),
                        _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
        for (int k = 0; k < 4; ++k) {
          const float d = dw[k] * x[t][b + k].d;
          acc[t] += d * static_cast<float>(isum[k]);
        }
      }
    }
    for (; b < n_blocks; ++b) {
      const __m256i wv = SignedWeights(w[b]);
      const float dw = core::F16ToF32(w[b].d);
      for (int t = 0; t < T; ++t) {
        int32_t isum, unused;
        SumLanes2(SignedBlockDot::Dot(wv, x[t][b].q), _mm256_setzero_si256(), &isum, &unused);
        const float d = dw * x[t][b].d;
        acc[t] += d * static_cast<float>(isum);
      }
    }
    for (int t = 0; t < T; ++t) out[t] = acc[t];
  }
};

// The 8 sub-block scales and mins of a Q4_K/Q5_K super-block (ScaleMinK4 for all j at once).
HWY_INLINE void ScalesMinsK4(const uint8_t* scales, uint8_t* sc, uint8_t* m) {
  uint32_t u[3];
  std::memcpy(u, scales, 12);
  const uint32_t sc_lo = u[0] & 0x3f3f3f3fu, m_lo = u[1] & 0x3f3f3f3fu;
  const uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
  const uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
  std::memcpy(sc, &sc_lo, 4);
  std::memcpy(sc + 4, &sc_hi, 4);
  std::memcpy(m, &m_lo, 4);
  std::memcpy(m + 4, &m_hi, 4);
}

// Q4_K and Q5_K (kFifthBit).
template <typename Block, bool kFifthBit>
struct K4K5Row {
  template <int T>
  static HWY_INLINE void Row(const char* w_row, const char* const* acts, int64_t n_in,
                             float* out) {
    const auto* w = reinterpret_cast<const Block*>(w_row);
    const ActBlockQ8K* x[T];
    float acc[T];
    for (int t = 0; t < T; ++t) {
      x[t] = reinterpret_cast<const ActBlockQ8K*>(acts[t]);
      acc[t] = 0.0f;
    }
    const __m256i low4 = _mm256_set1_epi8(15);
    const __m256i one = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < n_in / kQK_K; ++b) {
      const Block& blk = w[b];
      alignas(16) uint8_t sc[8], mn[8];
      ScalesMinsK4(blk.scales, sc, mn);
      // mins per bsums lane: m0 m0 m1 m1 ... m7 m7 (two 16-value bsums per 32-value sub-block).
      const __m128i m8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn));
      const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
      __m256i hbits = _mm256_setzero_si256();
      if constexpr (kFifthBit) hbits = Load32(blk.qh);
      __m256i sumi[T];
      for (int t = 0; t < T; ++t) sumi[t] = _mm256_setzero_si256();
      for (int i = 0; i < 4; ++i) {
        const __m256i q = Load32(blk.qs + 32 * i);
        __m256i lo = _mm256_and_si256(q, low4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        if constexpr (kFifthBit) {
          const __m256i b_lo =
              _mm256_and_si256(_mm256_srl_epi16(hbits, _mm_cvtsi32_si128(2 * i)), one);
          const __m256i b_hi =
              _mm256_and_si256(_mm256_srl_epi16(hbits, _mm_cvtsi32_si128(2 * i + 1)), one);
          lo = _mm256_or_si256(lo, _mm256_slli_epi16(b_lo, 4));
          hi = _mm256_or_si256(hi, _mm256_slli_epi16(b_hi, 4));
        }
        const __m256i s_lo = _mm256_set1_epi16(sc[2 * i]);
        const __m256i s_hi = _mm256_set1_epi16(sc[2 * i + 1]);
        for (int t = 0; t < T; ++t) {
          const int8_t* xq = x[t][b].q + 64 * i;
          sumi[t] = _mm256_add_epi32(
              sumi[t], _mm256_add_epi32(ScaledDot(lo, Load32(xq), s_lo),
                                        ScaledDot(hi, Load32(xq + 32), s_hi)));
        }
      }
      const float d_w = core::F16ToF32(blk.d), dmin_w = core::F16ToF32(blk.dmin);
      for (int t = 0; t < T; ++t) {
        int32_t isum, msum;
        SumLanes2(sumi[t], _mm256_madd_epi16(Load32(x[t][b].bsums), mins16), &isum, &msum);
        const float d = d_w * x[t][b].d, dmin = dmin_w * x[t][b].d;
        const float term = d * static_cast<float>(isum) - dmin * static_cast<float>(msum);
        acc[t] = acc[t] + term;
      }
    }
    for (int t = 0; t < T; ++t) out[t] = acc[t];
  }
};

struct Q6KRow {
  template <int T>
  static HWY_INLINE void Row(const char* w_row, const char* const* acts, int64_t n_in,
                             float* out) {
    const auto* w = reinterpret_cast<const BlockQ6_K*>(w_row);
    const ActBlockQ8K* x[T];
    float acc[T];
    for (int t = 0; t < T; ++t) {
      x[t] = reinterpret_cast<const ActBlockQ8K*>(acts[t]);
      acc[t] = 0.0f;
    }
    const __m256i low4 = _mm256_set1_epi8(15);
    const __m256i low2 = _mm256_set1_epi8(3);
    for (int64_t b = 0; b < n_in / kQK_K; ++b) {
      const BlockQ6_K& blk = w[b];
      const __m256i scales16 =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales)));
      __m256i sumi[T];
      for (int t = 0; t < T; ++t) sumi[t] = _mm256_setzero_si256();
      for (int n = 0; n < 2; ++n) {
        const __m256i h = Load32(blk.qh + 32 * n);
        const __m256i l0 = Load32(blk.ql + 64 * n), l1 = Load32(blk.ql + 64 * n + 32);
        // The stored 6-bit values (q + 32) of values 32k .. 32k+32 of this half.
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4),
                               _mm256_slli_epi16(_mm256_and_si256(h, low2), 4));
        q[1] = _mm256_or_si256(
            _mm256_and_si256(l1, low4),
            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), low2), 4));
        q[2] = _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), low2), 4));
        q[3] = _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), low2), 4));
        // Values 32k .. 32k+16 have scale sc[2k], the next 16 sc[2k + 1].
        const int8_t* sc = blk.scales + 8 * n;
        __m256i s[4];
        for (int k = 0; k < 4; ++k) {
          s[k] = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
        }
        for (int t = 0; t < T; ++t) {
          const int8_t* xq = x[t][b].q + 128 * n;
          for (int k = 0; k < 4; ++k) {
            sumi[t] = _mm256_add_epi32(sumi[t], ScaledDot(q[k], Load32(xq + 32 * k), s[k]));
          }
        }
      }
      const float d_w = core::F16ToF32(blk.d);
      for (int t = 0; t < T; ++t) {
        int32_t isum, offset;
        SumLanes2(sumi[t], _mm256_madd_epi16(Load32(x[t][b].bsums), scales16), &isum, &offset);
        isum -= 32 * offset;
        const float d = d_w * x[t][b].d;
        acc[t] = acc[t] + d * static_cast<float>(isum);
      }
    }
    for (int t = 0; t < T; ++t) out[t] = acc[t];
  }
};

void QuantMatMulRows(const MatMulArgs& a, int64_t o_begin, int64_t o_end) {
  switch (a.w_dtype) {
    case core::DType::kQ8_0:
      return RowsByTokenTiles<Q8Row<BlockQ8_0>>(a, o_begin, o_end);
    case core::DType::kQ4_0:
      return RowsByTokenTiles<Q8Row<BlockQ4_0>>(a, o_begin, o_end);
    case core::DType::kQ4_K:
      return RowsByTokenTiles<K4K5Row<BlockQ4_K, false>>(a, o_begin, o_end);
    case core::DType::kQ5_K:
      return RowsByTokenTiles<K4K5Row<BlockQ5_K, true>>(a, o_begin, o_end);
    case core::DType::kQ6_K:
      return RowsByTokenTiles<Q6KRow>(a, o_begin, o_end);
    default:
      return;  // MatMul admits only the formats above
  }
}

#else  // not x86 with AVX2: the definition, element by element

void QuantMatMulRows(const MatMulArgs& a, int64_t o_begin, int64_t o_end) {
  const int64_t row_bytes = *core::DTypeBytes(a.w_dtype, a.n_in);
  const int64_t act_bytes = ActRowBytes(a.w_dtype, a.n_in);
  for (int64_t t = 0; t < a.n_tok; ++t) {
    const char* act = static_cast<const char*>(a.xq) + t * act_bytes;
    for (int64_t o = o_begin; o < o_end; ++o) {
      float v = ref::QuantDotRow(a.w_dtype, static_cast<const char*>(a.w) + o * row_bytes, act,
                                 a.n_in);
      if (a.bias != nullptr) v += ref::LoadAsF32(a.bias, a.bias_dtype, o);
      a.y[t * a.y_stride + o] = v;
    }
  }
}

#endif

}  // namespace HWY_NAMESPACE
}  // namespace arle::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace arle::kernels::cpu {

HWY_EXPORT(QuantMatMulRows);

void QuantMatMulRows(const MatMulArgs& args, int64_t o_begin, int64_t o_end) {
  HWY_DYNAMIC_DISPATCH(QuantMatMulRows)(args, o_begin, o_end);
}

}  // namespace arle::kernels::cpu
#endif  // HWY_ONCE
