// Scalar GGUF block conversions: the dequantization formulas of the GGUF definition, operation for
// operation, and the quantizers behind `arle quantize` (see kernels/quant.h).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "arle/core/half.h"
#include "arle/kernels/quant.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels::ref {
namespace {

float Half(uint16_t bits) { return core::F16ToF32(bits); }

// The inverse of ScaleMinK4. REQUIRES: `s` zeroed first; sc, m in [0, 63].
void PackScaleMinK4(int j, int sc, int m, uint8_t* s) {
  if (j < 4) {
    s[j] = static_cast<uint8_t>(s[j] | sc);
    s[j + 4] = static_cast<uint8_t>(s[j + 4] | m);
  } else {
    s[j + 4] = static_cast<uint8_t>((sc & 0xF) | ((m & 0xF) << 4));
    s[j - 4] = static_cast<uint8_t>(s[j - 4] | ((sc >> 4) << 6));
    s[j] = static_cast<uint8_t>(s[j] | ((m >> 4) << 6));
  }
}

int RoundToInt(float x) { return static_cast<int>(std::nearbyint(x)); }

// ---- dequantization ----

void DequantQ8_0(const BlockQ8_0& b, float* y) {
  const float d = Half(b.d);
  for (int i = 0; i < kQK8_0; ++i) y[i] = static_cast<float>(b.qs[i]) * d;
}

void DequantQ4_0(const BlockQ4_0& b, float* y) {
  const float d = Half(b.d);
  for (int i = 0; i < kQK8_0 / 2; ++i) {
    y[i] = static_cast<float>((b.qs[i] & 15) - 8) * d;
    y[i + kQK8_0 / 2] = static_cast<float>((b.qs[i] >> 4) - 8) * d;
  }
}

// Q4_K and Q5_K share everything but the fifth bit (qh == nullptr for Q4_K).
void DequantK4K5(uint16_t d_bits, uint16_t dmin_bits, const uint8_t* scales, const uint8_t* qh,
                 const uint8_t* qs, float* y) {
  const float d = Half(d_bits), dmin = Half(dmin_bits);
  for (int i = 0; i < 4; ++i) {
    int sc1, m1, sc2, m2;
    ScaleMinK4(2 * i, scales, &sc1, &m1);
    ScaleMinK4(2 * i + 1, scales, &sc2, &m2);
    const float d1 = d * static_cast<float>(sc1), mm1 = dmin * static_cast<float>(m1);
    const float d2 = d * static_cast<float>(sc2), mm2 = dmin * static_cast<float>(m2);
    const uint8_t* q = qs + 32 * i;
    for (int l = 0; l < 32; ++l) {
      int lo = q[l] & 15, hi = q[l] >> 4;
      if (qh != nullptr) {
        lo += (qh[l] >> (2 * i)) & 1 ? 16 : 0;
        hi += (qh[l] >> (2 * i + 1)) & 1 ? 16 : 0;
      }
      y[64 * i + l] = d1 * static_cast<float>(lo) - mm1;
      y[64 * i + 32 + l] = d2 * static_cast<float>(hi) - mm2;
    }
  }
}

void DequantQ6_K(const BlockQ6_K& b, float* y) {
  const float d = Half(b.d);
  for (int n = 0; n < 2; ++n) {
    const uint8_t* ql = b.ql + 64 * n;
    const uint8_t* qh = b.qh + 32 * n;
    const int8_t* sc = b.scales + 8 * n;
    float* out = y + 128 * n;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      out[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      out[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      out[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

// ---- quantization ----

// llama.cpp's quantize_row_q8_0_ref: d = amax / 127, q = round(x / d).
void QuantQ8_0(const float* x, BlockQ8_0* b) {
  float amax = 0.0f;
  for (int i = 0; i < kQK8_0; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b->d = core::F32ToF16(d);
  for (int i = 0; i < kQK8_0; ++i) b->qs[i] = static_cast<int8_t>(std::round(x[i] * id));
}

// llama.cpp's quantize_row_q4_0_ref: the value of largest magnitude maps to -8.
void QuantQ4_0(const float* x, BlockQ4_0* b) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < kQK8_0; ++i) {
    if (amax < std::fabs(x[i])) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b->d = core::F32ToF16(d);
  for (int i = 0; i < kQK8_0 / 2; ++i) {
    const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x[i] * id + 8.5f)));
    const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x[i + 16] * id + 8.5f)));
    b->qs[i] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

// x ~= scale * q - min for q in [0, nmax], min >= 0: start from the range, then refit scale and
// min by least squares on the rounded q a few times (each refit can only lower the error for the
// current q; the best pair seen is kept).
void FitScaleMin(const float* x, int n, int nmax, float* scale, float* min) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo = std::min(lo, 0.0f);
  if (hi <= lo) {
    *scale = 0.0f;
    *min = -lo;
    return;
  }
  float s = (hi - lo) / static_cast<float>(nmax), m = -lo;
  auto error = [&](float sc, float mn) {
    double e = 0;
    for (int i = 0; i < n; ++i) {
      const int q = std::clamp(RoundToInt((x[i] + mn) / sc), 0, nmax);
      const double r = static_cast<double>(sc) * q - mn - x[i];
      e += r * r;
    }
    return e;
  };
  float best_s = s, best_m = m;
  double best = error(s, m);
  for (int iter = 0; iter < 4; ++iter) {
    double sq = 0, sq2 = 0, sx = 0, sqx = 0;
    for (int i = 0; i < n; ++i) {
      const double q = std::clamp(RoundToInt((x[i] + m) / s), 0, nmax);
      sq += q;
      sq2 += q * q;
      sx += x[i];
      sqx += q * x[i];
    }
    const double det = n * sq2 - sq * sq;
    if (det <= 0) break;
    double ns = (n * sqx - sq * sx) / det;
    double nm = (sq * sqx - sq2 * sx) / det;  // x = ns * q - nm
    if (nm < 0) {  // mins are stored as non-negative offsets: refit the scale alone
      nm = 0;
      ns = sq2 > 0 ? sqx / sq2 : 0;
    }
    if (ns <= 0) break;
    s = static_cast<float>(ns);
    m = static_cast<float>(nm);
    const double e = error(s, m);
    if (e < best) {
      best = e;
      best_s = s;
      best_m = m;
    }
  }
  *scale = best_s;
  *min = best_m;
}

// Shared by Q4_K (nmax 15, qh == nullptr) and Q5_K (nmax 31).
void QuantK4K5(const float* x, int nmax, uint16_t* d_bits, uint16_t* dmin_bits, uint8_t* scales,
               uint8_t* qh, uint8_t* qs) {
  float sub_scale[8], sub_min[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    FitScaleMin(x + 32 * j, 32, nmax, &sub_scale[j], &sub_min[j]);
    max_scale = std::max(max_scale, sub_scale[j]);
    max_min = std::max(max_min, sub_min[j]);
  }
  const float d = max_scale / 63.0f, dmin = max_min / 63.0f;
  *d_bits = core::F32ToF16(d);
  *dmin_bits = core::F32ToF16(dmin);
  const float d_h = Half(*d_bits), dmin_h = Half(*dmin_bits);
  std::memset(scales, 0, 12);
  if (qh != nullptr) std::memset(qh, 0, kQK_K / 8);
  int q[kQK_K];
  for (int j = 0; j < 8; ++j) {
    const int sc = d_h > 0 ? std::clamp(RoundToInt(sub_scale[j] / d_h), 0, 63) : 0;
    const int m = dmin_h > 0 ? std::clamp(RoundToInt(sub_min[j] / dmin_h), 0, 63) : 0;
    PackScaleMinK4(j, sc, m, scales);
    // The values are rounded against the scale and min as they will be decoded.
    const float ds = d_h * static_cast<float>(sc), dm = dmin_h * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      q[32 * j + l] = ds > 0 ? std::clamp(RoundToInt((x[32 * j + l] + dm) / ds), 0, nmax) : 0;
    }
  }
  for (int i = 0; i < 4; ++i) {
    for (int l = 0; l < 32; ++l) {
      const int lo = q[64 * i + l], hi = q[64 * i + 32 + l];
      qs[32 * i + l] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
      if (qh != nullptr) {
        qh[l] = static_cast<uint8_t>(qh[l] | ((lo >> 4) << (2 * i)) | ((hi >> 4) << (2 * i + 1)));
      }
    }
  }
}

// Q6_K: in each sub-block of 16 the value of largest magnitude maps to -32; the sub-block scales
// are then stored as int8 against the super-block scale, the one of largest magnitude at -128.
void QuantQ6_K(const float* x, BlockQ6_K* b) {
  float sub_scale[16];
  float max_scale = 0.0f, max_abs_scale = 0.0f;
  for (int j = 0; j < 16; ++j) {
    float amax = 0.0f, max = 0.0f;
    for (int l = 0; l < 16; ++l) {
      const float v = x[16 * j + l];
      if (amax < std::fabs(v)) {
        amax = std::fabs(v);
        max = v;
      }
    }
    sub_scale[j] = max / -32.0f;
    if (std::fabs(sub_scale[j]) > max_abs_scale) {
      max_abs_scale = std::fabs(sub_scale[j]);
      max_scale = sub_scale[j];
    }
  }
  const float d = max_scale / -128.0f;
  b->d = core::F32ToF16(d);
  const float d_h = Half(b->d);
  int q[kQK_K];
  for (int j = 0; j < 16; ++j) {
    const int sc = d_h != 0.0f ? std::clamp(RoundToInt(sub_scale[j] / d_h), -128, 127) : 0;
    b->scales[j] = static_cast<int8_t>(sc);
    const float ds = d_h * static_cast<float>(sc);
    for (int l = 0; l < 16; ++l) {
      const int v = ds != 0.0f ? std::clamp(RoundToInt(x[16 * j + l] / ds), -32, 31) : 0;
      q[16 * j + l] = v + 32;
    }
  }
  for (int n = 0; n < 2; ++n) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = q[128 * n + l], q2 = q[128 * n + l + 32];
      const int q3 = q[128 * n + l + 64], q4 = q[128 * n + l + 96];
      b->ql[64 * n + l] = static_cast<uint8_t>((q1 & 15) | ((q3 & 15) << 4));
      b->ql[64 * n + l + 32] = static_cast<uint8_t>((q2 & 15) | ((q4 & 15) << 4));
      b->qh[32 * n + l] =
          static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

// Runs fn(block, values) over the n / kValues blocks of a row. Blocks are copied out (memcpy), so
// rows need no alignment (GGUF tensors are 32-byte aligned, their rows need not be).
template <typename Block, int64_t kValues, typename Fn>
void EachBlockIn(const void* src, int64_t n, float* dst, Fn fn) {
  const auto* bytes = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kValues; ++i) {
    Block b;
    std::memcpy(&b, bytes + i * sizeof(Block), sizeof(Block));
    fn(b, dst + i * kValues);
  }
}

template <typename Block, int64_t kValues, typename Fn>
void EachBlockOut(const float* src, int64_t n, void* dst, Fn fn) {
  auto* bytes = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kValues; ++i) {
    Block b{};
    fn(src + i * kValues, &b);
    std::memcpy(bytes + i * sizeof(Block), &b, sizeof(Block));
  }
}

}  // namespace

void DequantizeRow(core::DType dtype, const void* src, int64_t n, float* dst) {
  switch (dtype) {
    case core::DType::kQ8_0:
      return EachBlockIn<BlockQ8_0, kQK8_0>(src, n, dst, DequantQ8_0);
    case core::DType::kQ4_0:
      return EachBlockIn<BlockQ4_0, kQK8_0>(src, n, dst, DequantQ4_0);
    case core::DType::kQ4_K:
      return EachBlockIn<BlockQ4_K, kQK_K>(src, n, dst, [](const BlockQ4_K& b, float* y) {
        DequantK4K5(b.d, b.dmin, b.scales, nullptr, b.qs, y);
      });
    case core::DType::kQ5_K:
      return EachBlockIn<BlockQ5_K, kQK_K>(src, n, dst, [](const BlockQ5_K& b, float* y) {
        DequantK4K5(b.d, b.dmin, b.scales, b.qh, b.qs, y);
      });
    case core::DType::kQ6_K:
      return EachBlockIn<BlockQ6_K, kQK_K>(src, n, dst, DequantQ6_K);
    default:
      return;  // rejected by kernels::DequantizeRow
  }
}

void QuantizeRow(core::DType dtype, const float* src, int64_t n, void* dst) {
  switch (dtype) {
    case core::DType::kQ8_0:
      return EachBlockOut<BlockQ8_0, kQK8_0>(src, n, dst, QuantQ8_0);
    case core::DType::kQ4_0:
      return EachBlockOut<BlockQ4_0, kQK8_0>(src, n, dst, QuantQ4_0);
    case core::DType::kQ4_K:
      return EachBlockOut<BlockQ4_K, kQK_K>(src, n, dst, [](const float* x, BlockQ4_K* b) {
        QuantK4K5(x, 15, &b->d, &b->dmin, b->scales, nullptr, b->qs);
      });
    case core::DType::kQ5_K:
      return EachBlockOut<BlockQ5_K, kQK_K>(src, n, dst, [](const float* x, BlockQ5_K* b) {
        QuantK4K5(x, 31, &b->d, &b->dmin, b->scales, b->qh, b->qs);
      });
    case core::DType::kQ6_K:
      return EachBlockOut<BlockQ6_K, kQK_K>(src, n, dst, QuantQ6_K);
    default:
      return;  // rejected by kernels::QuantizeRow
  }
}

}  // namespace arle::kernels::ref
