// Integer block dot products (quant_dot.h) on the current Highway target. x86 targets from AVX2 up
// multiply 4/5/6/8-bit weights by 8-bit activations with vpmaddubsw (u8 x s8 pairs into int16,
// never saturating here: |weight quant| <= 128 and |activation quant| <= 127 keep a pair within
// 32512) and vpmaddwd (pairs times the int16 sub-block scale into int32 lanes), which Highway 1.0
// does not expose, so those paths use the intrinsics on 256-bit vectors (also on AVX-512 targets).
// Each int32 lane is ref::QuantDotRow's lane, and the float steps per block are its steps, so
// every target gives its bits. Other targets compute ref::QuantDotRow per element.
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

namespace hn = hwy::HWY_NAMESPACE;

// kernels::QuantizeGroup (quant_dot.cc) with SIMD: the max of |x| is exact in any order, and the
// products, rounding and clamps are the same IEEE operations lane by lane. Max(|x|, m) keeps m
// when x is NaN, and Max(v, -127) gives -127 for a NaN v, as the scalar code's std::max / fmax.
float QuantizeGroup(const float* x, int64_t n, int8_t* q) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(di)> d8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  auto vmax = hn::Zero(df);
  for (int64_t i = 0; i < n; i += lanes) vmax = hn::Max(hn::Abs(hn::LoadU(df, x + i)), vmax);
  const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const auto vid = hn::Set(df, id), lo = hn::Set(df, -127.0f), hi = hn::Set(df, 127.0f);
  for (int64_t i = 0; i < n; i += lanes) {
    const auto v = hn::Min(hn::Max(hn::Round(hn::Mul(hn::LoadU(df, x + i), vid)), lo), hi);
    hn::StoreU(hn::DemoteTo(d8, hn::ConvertTo(di, v)), d8, q + i);
  }
  return d;
}

void QuantizeActivationRow(core::DType w_dtype, const float* x, int64_t n_in, void* out) {
  QuantizeActivationRowWith(w_dtype, x, n_in, out, QuantizeGroup);
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2

constexpr int64_t kTokenBlock = 64;
constexpr int kTokenTile = 4;

// Computes out[0 .. T) for one weight row and T tokens (acts[t] = token t's activation row).
// Kernel::Row<T>(w_row, acts, n_in, out).
template <typename Kernel>
void RowsByTokenTiles(const MatMulParams& a, int64_t o_begin, int64_t o_end) {
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

HWY_INLINE __m256i Load32(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Pairs of u8 x s8 products summed, then multiplied by the int16 lanes of `scale` and summed in
// pairs again: int32 lane m is the scaled sum of products 4m .. 4m+3.
HWY_INLINE __m256i ScaledDot(__m256i u8, __m256i s8, __m256i scale) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u8, s8), scale);
}

// acc + d * float(s), lane by lane, rounded as the reference rounds.
HWY_INLINE __m256 AddScaled(__m256 acc, float d, __m256i s) {
  return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s)));
}

// ref's SumLanes: ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)).
HWY_INLINE float SumLanes(__m256 acc) {
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
}

// f16 to f32 (exact, as core::F16ToF32 for every non-NaN input).
HWY_INLINE float Half(uint16_t bits) { return _cvtsh_ss(bits); }

// Int16 lane j of a 128-bit vector, broadcast to all 16 int16 lanes (both halves hold `v`).
template <int j>
HWY_INLINE __m256i BroadcastI16(__m256i v) {
  return _mm256_shuffle_epi8(v, _mm256_set1_epi16(static_cast<int16_t>(((2 * j + 1) << 8) | (2 * j))));
}

// Sums of 4 consecutive u8 x s8 products in 8 int32 lanes: one vpdpbusd with AVX512-VNNI (the
// AVX3_DL target and newer), else vpmaddubsw + vpmaddwd by ones. The same integers either way
// (no intermediate saturation in the ranges used here).
//
// The instruction is written out with the {evex} prefix (%{ %} in GCC asm) because Highway 1.0
// compiles AVX3_DL with both avx512vnni and avxvnni enabled, and GCC then picks the VEX (AVX-VNNI)
// encoding of _mm256_dpbusd_epi32: an illegal instruction on AVX512-VNNI CPUs without AVX-VNNI (Ice
// Lake, Tiger Lake, Zen 4), where every quantized matmul died with SIGILL.
HWY_INLINE __m256i SumOf4Products(__m256i u8, __m256i s8) {
#if HWY_TARGET <= HWY_AVX3_DL
  __m256i acc = _mm256_setzero_si256();
  asm("%{evex%} vpdpbusd %[s8], %[u8], %[acc]" : [acc] "+v"(acc) : [u8] "v"(u8), [s8] "v"(s8));
  return acc;
#else
  return ScaledDot(u8, s8, _mm256_set1_epi16(1));
#endif
}

// Q8_0 / Q4_0: signed 8-bit weights (Q4_0's nibbles minus 8), multiplied through vpmaddubsw as
// |w| x (x with w's sign).
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
    __m256 acc[T];
    for (int t = 0; t < T; ++t) {
      x[t] = reinterpret_cast<const ActBlockQ8*>(acts[t]);
      acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < n_in / kQK8_0; ++b) {
      const __m256i wv = SignedWeights(w[b]);
      const __m256i w_abs = _mm256_sign_epi8(wv, wv);
      const float d_w = Half(w[b].d);
      for (int t = 0; t < T; ++t) {
        const __m256i xs = _mm256_sign_epi8(Load32(x[t][b].q), wv);
        acc[t] = AddScaled(acc[t], d_w * x[t][b].d, SumOf4Products(w_abs, xs));
      }
    }
    for (int t = 0; t < T; ++t) out[t] = SumLanes(acc[t]);
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
  // Sub-blocks 2i (low nibbles) and 2i+1 (high nibbles) of one block against T tokens.
  template <int T, int i>
  static HWY_INLINE void Pair(const Block& blk, __m256i scales16, __m256i hbits,
                              const ActBlockQ8K* const* x, int64_t b, __m256i* sumi) {
    const __m256i low4 = _mm256_set1_epi8(15);
    const __m256i q = Load32(blk.qs + 32 * i);
    __m256i lo = _mm256_and_si256(q, low4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
    if constexpr (kFifthBit) {
      const __m256i one = _mm256_set1_epi8(1);
      lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * i), one), 4));
      hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * i + 1), one), 4));
    }
    const __m256i s_lo = BroadcastI16<2 * i>(scales16);
    const __m256i s_hi = BroadcastI16<2 * i + 1>(scales16);
    for (int t = 0; t < T; ++t) {
      const int8_t* xq = x[t][b].q + 64 * i;
      sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(ScaledDot(lo, Load32(xq), s_lo),
                                                           ScaledDot(hi, Load32(xq + 32), s_hi)));
    }
  }

  template <int T>
  static HWY_INLINE void Row(const char* w_row, const char* const* acts, int64_t n_in,
                             float* out) {
    const auto* w = reinterpret_cast<const Block*>(w_row);
    const ActBlockQ8K* x[T];
    // The accumulators live in memory, touched once per block: in registers, with the T integer
    // sums and the unpacked weights, they would not fit the 16 ymm registers and get spilled
    // inside the inner loop instead.
    alignas(32) float acc[T][8];
    for (int t = 0; t < T; ++t) {
      x[t] = reinterpret_cast<const ActBlockQ8K*>(acts[t]);
      _mm256_store_ps(acc[t], _mm256_setzero_ps());
    }
    for (int64_t b = 0; b < n_in / kQK_K; ++b) {
      const Block& blk = w[b];
      alignas(16) uint8_t sc[8], mn[8];
      ScalesMinsK4(blk.scales, sc, mn);
      __m256i sumi[T];
      for (int t = 0; t < T; ++t) sumi[t] = _mm256_setzero_si256();
      {
        const __m256i scales16 = _mm256_broadcastsi128_si256(
            _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc))));
        __m256i hbits = _mm256_setzero_si256();
        if constexpr (kFifthBit) hbits = Load32(blk.qh);
        Pair<T, 0>(blk, scales16, hbits, x, b, sumi);
        Pair<T, 1>(blk, scales16, hbits, x, b, sumi);
        Pair<T, 2>(blk, scales16, hbits, x, b, sumi);
        Pair<T, 3>(blk, scales16, hbits, x, b, sumi);
      }
      // mins per bsums lane: m0 m0 m1 m1 ... m7 m7 (two 16-value sums per 32-value sub-block).
      const __m128i m8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn));
      const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
      const float d_w = Half(blk.d), dmin_w = Half(blk.dmin);
      for (int t = 0; t < T; ++t) {
        const __m256i mins = _mm256_madd_epi16(Load32(x[t][b].bsums), mins16);
        const __m256 term = _mm256_sub_ps(
            _mm256_mul_ps(_mm256_set1_ps(d_w * x[t][b].d), _mm256_cvtepi32_ps(sumi[t])),
            _mm256_mul_ps(_mm256_set1_ps(dmin_w * x[t][b].d), _mm256_cvtepi32_ps(mins)));
        _mm256_store_ps(acc[t], _mm256_add_ps(_mm256_load_ps(acc[t]), term));
      }
    }
    for (int t = 0; t < T; ++t) out[t] = SumLanes(_mm256_load_ps(acc[t]));
  }
};

struct Q6KRow {
  // Values 32k .. 32k+32 of half n of a block: chunk k's stored 6-bit quants (q + 32).
  template <int k>
  static HWY_INLINE __m256i Quants(__m256i l0, __m256i l1, __m256i h) {
    const __m256i low4 = _mm256_set1_epi8(15);
    const __m256i low2 = _mm256_set1_epi8(3);
    const __m256i l = k % 2 == 0 ? l0 : l1;
    const __m256i low = k < 2 ? _mm256_and_si256(l, low4)
                              : _mm256_and_si256(_mm256_srli_epi16(l, 4), low4);
    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(h, 2 * k), low2);
    return _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
  }

  // Int16 scales for chunk k of a half whose 8 scales (as int16) are in both halves of `sc16`:
  // sc[2k] in the low 128 bits (values 0..15), sc[2k + 1] in the high.
  template <int k>
  static HWY_INLINE __m256i ChunkScale(__m256i sc16) {
    const int16_t lo = static_cast<int16_t>(((4 * k + 1) << 8) | (4 * k));
    const int16_t hi = static_cast<int16_t>(((4 * k + 3) << 8) | (4 * k + 2));
    return _mm256_shuffle_epi8(sc16, _mm256_setr_epi16(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi,
                                                       hi, hi, hi, hi, hi));
  }

  template <int T, int k>
  static HWY_INLINE void Chunk(__m256i l0, __m256i l1, __m256i h, __m256i sc16,
                               const int8_t* const* xq, __m256i* sumi) {
    const __m256i q = Quants<k>(l0, l1, h);
    const __m256i s = ChunkScale<k>(sc16);
    for (int t = 0; t < T; ++t) {
      sumi[t] = _mm256_add_epi32(sumi[t], ScaledDot(q, Load32(xq[t] + 32 * k), s));
    }
  }

  template <int T>
  static HWY_INLINE void Row(const char* w_row, const char* const* acts, int64_t n_in,
                             float* out) {
    const auto* w = reinterpret_cast<const BlockQ6_K*>(w_row);
    const ActBlockQ8K* x[T];
    alignas(32) float acc[T][8];  // in memory, as in K4K5Row
    for (int t = 0; t < T; ++t) {
      x[t] = reinterpret_cast<const ActBlockQ8K*>(acts[t]);
      _mm256_store_ps(acc[t], _mm256_setzero_ps());
    }
    for (int64_t b = 0; b < n_in / kQK_K; ++b) {
      const BlockQ6_K& blk = w[b];
      const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales));
      __m256i sumi[T];
      for (int t = 0; t < T; ++t) sumi[t] = _mm256_setzero_si256();
      for (int n = 0; n < 2; ++n) {
        const __m256i h = Load32(blk.qh + 32 * n);
        const __m256i l0 = Load32(blk.ql + 64 * n), l1 = Load32(blk.ql + 64 * n + 32);
        const __m256i sc16 = _mm256_broadcastsi128_si256(
            _mm_cvtepi8_epi16(n == 0 ? sc8 : _mm_srli_si128(sc8, 8)));
        const int8_t* xq[T];
        for (int t = 0; t < T; ++t) xq[t] = x[t][b].q + 128 * n;
        Chunk<T, 0>(l0, l1, h, sc16, xq, sumi);
        Chunk<T, 1>(l0, l1, h, sc16, xq, sumi);
        Chunk<T, 2>(l0, l1, h, sc16, xq, sumi);
        Chunk<T, 3>(l0, l1, h, sc16, xq, sumi);
      }
      // Lane m's share of the +32 offset: sub-blocks 2m and 2m+1.
      const __m256i scales16 = _mm256_cvtepi8_epi16(sc8);
      const float d_w = Half(blk.d);
      for (int t = 0; t < T; ++t) {
        const __m256i offset = _mm256_madd_epi16(Load32(x[t][b].bsums), scales16);
        const __m256i s = _mm256_sub_epi32(sumi[t], _mm256_slli_epi32(offset, 5));
        _mm256_store_ps(acc[t], AddScaled(_mm256_load_ps(acc[t]), d_w * x[t][b].d, s));
      }
    }
    for (int t = 0; t < T; ++t) out[t] = SumLanes(_mm256_load_ps(acc[t]));
  }
};

void QuantMatMulRows(const MatMulParams& a, int64_t o_begin, int64_t o_end) {
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

void QuantMatMulRows(const MatMulParams& a, int64_t o_begin, int64_t o_end) {
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
HWY_EXPORT(QuantizeActivationRow);

void QuantizeActivationRow(core::DType w_dtype, const float* x, int64_t n_in, void* out) {
  HWY_DYNAMIC_DISPATCH(QuantizeActivationRow)(w_dtype, x, n_in, out);
}

void QuantMatMulRows(const MatMulParams& args, int64_t o_begin, int64_t o_end) {
  HWY_DYNAMIC_DISPATCH(QuantMatMulRows)(args, o_begin, o_end);
}

}  // namespace arle::kernels::cpu
#endif  // HWY_ONCE
