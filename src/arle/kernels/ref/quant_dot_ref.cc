// The definition of the integer block dot products (quant_dot.h), scalar, in 8 lanes: lane m
// takes values 4m .. 4m+3 of each 32-value chunk. Per weight block and lane, with exact int32
// sums S (quant products times integer sub-block scales) and M (mins times activation sums):
//   Q8_0, Q4_0:   acc[m] += (d_w * d_x) * S
//   Q4_K, Q5_K:   acc[m] += (d_w * d_x) * S - (dmin_w * d_x) * M    (M: sub-block m's min)
//   Q6_K:         acc[m] += (d_w * d_x) * (S - 32 * O)              (O: the stored +32 offset)
// each product and sum rounded on its own (no fused multiply-add), then SumLanes. The cpu kernels
// (cpu/quant_dot_cpu.cc) do the same operations with vpmaddubsw / vpmaddwd.
#include "arle/core/check.h"
#include "arle/core/half.h"
#include "arle/kernels/quant.h"
#include "arle/kernels/quant_dot.h"

namespace arle::kernels::ref {
namespace {

constexpr int kLanes = 8;

float Half(uint16_t bits) { return core::F16ToF32(bits); }

// The tree the SIMD kernels reduce their accumulator with: halves, then quarters, then pairs.
float SumLanes(const float* acc) {
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// Adds lane m's share of a 32-value chunk: sum over e in [4m, 4m+4) of w(e) * x[e], times scale(m).
template <typename W, typename Scale>
void AddChunk(const W& w, const int8_t* x, const Scale& scale, int32_t* s) {
  for (int m = 0; m < kLanes; ++m) {
    int32_t p = 0;
    for (int e = 4 * m; e < 4 * m + 4; ++e) p += w(e) * x[e];
    s[m] += scale(m) * p;
  }
}

template <typename Block, typename WeightAt>
float DotQ8Family(const Block* w, const ActBlockQ8* x, int64_t n_blocks, const WeightAt& at) {
  float acc[kLanes] = {};
  for (int64_t b = 0; b < n_blocks; ++b) {
    int32_t s[kLanes] = {};
    AddChunk([&](int e) { return at(w[b], e); }, x[b].q, [](int) { return 1; }, s);
    const float d = Half(w[b].d) * x[b].d;
    for (int m = 0; m < kLanes; ++m) acc[m] = acc[m] + d * static_cast<float>(s[m]);
  }
  return SumLanes(acc);
}

// Q4_K (qh == nullptr) and Q5_K: sub-blocks 2i and 2i+1 are the low and high nibbles of
// qs[32i .. 32i+32), plus bits 2i and 2i+1 of qh[l] as the fifth bit.
void AddK4K5(uint16_t d_bits, uint16_t dmin_bits, const uint8_t* scales, const uint8_t* qh,
             const uint8_t* qs, const ActBlockQ8K& x, float* acc) {
  int32_t s[kLanes] = {}, mins[kLanes] = {};
  for (int i = 0; i < 4; ++i) {
    int sc_lo, m_lo, sc_hi, m_hi;
    ScaleMinK4(2 * i, scales, &sc_lo, &m_lo);
    ScaleMinK4(2 * i + 1, scales, &sc_hi, &m_hi);
    const uint8_t* q = qs + 32 * i;
    auto lo = [&](int e) {
      return (q[e] & 15) | (qh != nullptr ? ((qh[e] >> (2 * i)) & 1) << 4 : 0);
    };
    auto hi = [&](int e) {
      return (q[e] >> 4) | (qh != nullptr ? ((qh[e] >> (2 * i + 1)) & 1) << 4 : 0);
    };
    AddChunk(lo, x.q + 64 * i, [&](int) { return sc_lo; }, s);
    AddChunk(hi, x.q + 64 * i + 32, [&](int) { return sc_hi; }, s);
  }
  for (int m = 0; m < kLanes; ++m) {
    int sc, mn;
    ScaleMinK4(m, scales, &sc, &mn);
    mins[m] = x.bsums[2 * m] * mn + x.bsums[2 * m + 1] * mn;
  }
  const float d = Half(d_bits) * x.d, dmin = Half(dmin_bits) * x.d;
  for (int m = 0; m < kLanes; ++m) {
    acc[m] = acc[m] + (d * static_cast<float>(s[m]) - dmin * static_cast<float>(mins[m]));
  }
}

void AddQ6_K(const BlockQ6_K& w, const ActBlockQ8K& x, float* acc) {
  int32_t s[kLanes] = {};
  for (int n = 0; n < 2; ++n) {
    const uint8_t* ql = w.ql + 64 * n;
    const uint8_t* qh = w.qh + 32 * n;
    const int8_t* sc = w.scales + 8 * n;
    // Chunk k holds values 32k .. 32k+32 of this half; its first 16 have scale sc[2k], the
    // rest sc[2k + 1] (lanes 4..7).
    for (int k = 0; k < 4; ++k) {
      const uint8_t* low = ql + (k % 2 == 0 ? 0 : 32);
      const int low_shift = k < 2 ? 0 : 4;
      auto q = [&](int e) { return ((low[e] >> low_shift) & 15) | (((qh[e] >> (2 * k)) & 3) << 4); };
      AddChunk(q, x.q + 128 * n + 32 * k, [&](int m) { return sc[2 * k + (m >= 4 ? 1 : 0)]; }, s);
    }
  }
  const float d = Half(w.d) * x.d;
  for (int m = 0; m < kLanes; ++m) {
    // The stored quants are q + 32: lane m takes sub-blocks 2m and 2m+1's share of the offset.
    const int32_t offset = x.bsums[2 * m] * w.scales[2 * m] + x.bsums[2 * m + 1] * w.scales[2 * m + 1];
    acc[m] = acc[m] + d * static_cast<float>(s[m] - 32 * offset);
  }
}

template <typename Block, typename Add>
float DotK(const void* w_row, const void* act_row, int64_t n_in, const Add& add) {
  const auto* w = static_cast<const Block*>(w_row);
  const auto* x = static_cast<const ActBlockQ8K*>(act_row);
  float acc[kLanes] = {};
  for (int64_t b = 0; b < n_in / kQK_K; ++b) add(w[b], x[b], acc);
  return SumLanes(acc);
}

}  // namespace

float QuantDotRow(core::DType w_dtype, const void* w_row, const void* act_row, int64_t n_in) {
  switch (w_dtype) {
    case core::DType::kQ8_0:
      return DotQ8Family(static_cast<const BlockQ8_0*>(w_row),
                         static_cast<const ActBlockQ8*>(act_row), n_in / kQK8_0,
                         [](const BlockQ8_0& b, int e) { return static_cast<int>(b.qs[e]); });
    case core::DType::kQ4_0:
      return DotQ8Family(static_cast<const BlockQ4_0*>(w_row),
                         static_cast<const ActBlockQ8*>(act_row), n_in / kQK8_0,
                         [](const BlockQ4_0& b, int e) {
                           return (e < 16 ? b.qs[e] & 15 : b.qs[e - 16] >> 4) - 8;
                         });
    case core::DType::kQ4_K:
      return DotK<BlockQ4_K>(w_row, act_row, n_in,
                             [](const BlockQ4_K& b, const ActBlockQ8K& x, float* acc) {
                               AddK4K5(b.d, b.dmin, b.scales, nullptr, b.qs, x, acc);
                             });
    case core::DType::kQ5_K:
      return DotK<BlockQ5_K>(w_row, act_row, n_in,
                             [](const BlockQ5_K& b, const ActBlockQ8K& x, float* acc) {
                               AddK4K5(b.d, b.dmin, b.scales, b.qh, b.qs, x, acc);
                             });
    case core::DType::kQ6_K:
      return DotK<BlockQ6_K>(w_row, act_row, n_in, AddQ6_K);
    default:
      ARLE_CHECK(false) << "QuantDotRow: " << core::DTypeName(w_dtype);
      return 0.0f;
  }
}

}  // namespace arle::kernels::ref
