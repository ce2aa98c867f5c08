// The definition of the integer block dot products (quant_dot.h), scalar. Per weight block: the
// exact int32 sum of quant products (scaled by the integer sub-block scales), then
//   Q8_0, Q4_0:        acc += (d_w * d_x) * isum
//   Q4_K, Q5_K:        acc += (d_w * d_x) * isum - (dmin_w * d_x) * msum
//   Q6_K:              acc += (d_w * d_x) * isum        (isum includes the -32 offset)
// with msum = sum_j m_j * (sum of the sub-block's activation quants). Each product and sum is
// rounded on its own (no fused multiply-add); the cpu kernels do the same operations.
#include <cstring>

#include "arle/core/check.h"
#include "arle/core/half.h"
#include "arle/kernels/quant.h"
#include "arle/kernels/quant_dot.h"

namespace arle::kernels::ref {
namespace {

float Half(uint16_t bits) { return core::F16ToF32(bits); }

float DotQ8_0(const BlockQ8_0* w, const ActBlockQ8* x, int64_t n_blocks) {
  float acc = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b) {
    int32_t isum = 0;
    for (int i = 0; i < 32; ++i) isum += w[b].qs[i] * x[b].q[i];
    const float d = Half(w[b].d) * x[b].d;
    acc += d * static_cast<float>(isum);
  }
  return acc;
}

float DotQ4_0(const BlockQ4_0* w, const ActBlockQ8* x, int64_t n_blocks) {
  float acc = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b) {
    int32_t isum = 0;
    for (int i = 0; i < 16; ++i) {
      isum += ((w[b].qs[i] & 15) - 8) * x[b].q[i];
      isum += ((w[b].qs[i] >> 4) - 8) * x[b].q[i + 16];
    }
    const float d = Half(w[b].d) * x[b].d;
    acc += d * static_cast<float>(isum);
  }
  return acc;
}

// Q4_K (qh == nullptr) and Q5_K: sub-blocks 2i and 2i+1 are the low and high nibbles of
// qs[32i .. 32i+32), plus bits 2i and 2i+1 of qh[l] as the fifth bit.
float AddK4K5(uint16_t d_bits, uint16_t dmin_bits, const uint8_t* scales, const uint8_t* qh,
              const uint8_t* qs, const ActBlockQ8K& x, float acc) {
  int32_t isum = 0, msum = 0;
  for (int i = 0; i < 4; ++i) {
    int sc1, m1, sc2, m2;
    ScaleMinK4(2 * i, scales, &sc1, &m1);
    ScaleMinK4(2 * i + 1, scales, &sc2, &m2);
    int32_t s1 = 0, s2 = 0;
    for (int l = 0; l < 32; ++l) {
      int lo = qs[32 * i + l] & 15, hi = qs[32 * i + l] >> 4;
      if (qh != nullptr) {
        lo |= ((qh[l] >> (2 * i)) & 1) << 4;
        hi |= ((qh[l] >> (2 * i + 1)) & 1) << 4;
      }
      s1 += lo * x.q[64 * i + l];
      s2 += hi * x.q[64 * i + 32 + l];
    }
    isum += sc1 * s1 + sc2 * s2;
    msum += m1 * (x.bsums[4 * i] + x.bsums[4 * i + 1]) + m2 * (x.bsums[4 * i + 2] + x.bsums[4 * i + 3]);
  }
  const float d = Half(d_bits) * x.d, dmin = Half(dmin_bits) * x.d;
  const float term = d * static_cast<float>(isum) - dmin * static_cast<float>(msum);
  return acc + term;
}

float AddQ6_K(const BlockQ6_K& w, const ActBlockQ8K& x, float acc) {
  int32_t isum = 0, offset = 0;
  for (int n = 0; n < 2; ++n) {
    const uint8_t* ql = w.ql + 64 * n;
    const uint8_t* qh = w.qh + 32 * n;
    const int8_t* sc = w.scales + 8 * n;
    const int8_t* q = x.q + 128 * n;
    for (int half = 0; half < 2; ++half) {  // l in [16 half, 16 half + 16): scales sc[half + 2k]
      int32_t s[4] = {0, 0, 0, 0};
      for (int l = 16 * half; l < 16 * half + 16; ++l) {
        s[0] += ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) * q[l];
        s[1] += ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) * q[l + 32];
        s[2] += ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) * q[l + 64];
        s[3] += ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) * q[l + 96];
      }
      for (int k = 0; k < 4; ++k) isum += sc[half + 2 * k] * s[k];
    }
  }
  // The stored quants are q + 32: subtract 32 * scale * (sum of the sub-block's activations).
  for (int j = 0; j < 16; ++j) offset += w.scales[j] * x.bsums[j];
  isum -= 32 * offset;
  const float d = Half(w.d) * x.d;
  return acc + d * static_cast<float>(isum);
}

}  // namespace

float QuantDotRow(core::DType w_dtype, const void* w_row, const void* act_row, int64_t n_in) {
  switch (w_dtype) {
    case core::DType::kQ8_0:
      return DotQ8_0(static_cast<const BlockQ8_0*>(w_row), static_cast<const ActBlockQ8*>(act_row),
                     n_in / kQK8_0);
    case core::DType::kQ4_0:
      return DotQ4_0(static_cast<const BlockQ4_0*>(w_row), static_cast<const ActBlockQ8*>(act_row),
                     n_in / kQK8_0);
    case core::DType::kQ4_K: {
      const auto* w = static_cast<const BlockQ4_K*>(w_row);
      const auto* x = static_cast<const ActBlockQ8K*>(act_row);
      float acc = 0.0f;
      for (int64_t b = 0; b < n_in / kQK_K; ++b) {
        acc = AddK4K5(w[b].d, w[b].dmin, w[b].scales, nullptr, w[b].qs, x[b], acc);
      }
      return acc;
    }
    case core::DType::kQ5_K: {
      const auto* w = static_cast<const BlockQ5_K*>(w_row);
      const auto* x = static_cast<const ActBlockQ8K*>(act_row);
      float acc = 0.0f;
      for (int64_t b = 0; b < n_in / kQK_K; ++b) {
        acc = AddK4K5(w[b].d, w[b].dmin, w[b].scales, w[b].qh, w[b].qs, x[b], acc);
      }
      return acc;
    }
    case core::DType::kQ6_K: {
      const auto* w = static_cast<const BlockQ6_K*>(w_row);
      const auto* x = static_cast<const ActBlockQ8K*>(act_row);
      float acc = 0.0f;
      for (int64_t b = 0; b < n_in / kQK_K; ++b) acc = AddQ6_K(w[b], x[b], acc);
      return acc;
    }
    default:
      ARLE_CHECK(false) << "QuantDotRow: " << core::DTypeName(w_dtype);
      return 0.0f;
  }
}

}  // namespace arle::kernels::ref
