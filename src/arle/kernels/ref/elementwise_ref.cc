// Scalar RoPE rotation, SwiGLU and dtype conversion (these have no SIMD twin yet: they are a
// small share of the forward's time next to the matmuls).
#include <cmath>
#include <cstring>

#include "arle/core/half.h"
#include "arle/kernels/quant.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels::ref {

void RopeRows(const float* cos, const float* sin, float* x, int64_t n_head, int64_t head_dim,
              int64_t t_begin, int64_t t_end) {
  const int64_t half = head_dim / 2;
  for (int64_t t = t_begin; t < t_end; ++t) {
    const float* c = cos + t * half;
    const float* s = sin + t * half;
    for (int64_t h = 0; h < n_head; ++h) {
      float* v = x + (t * n_head + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float x0 = v[i];
        const float x1 = v[i + half];
        // transformers: q * cos + rotate_half(q) * sin, rotate_half(q) = cat(-q2, q1).
        v[i] = x0 * c[i] + (-x1) * s[i];
        v[i + half] = x1 * c[i] + x0 * s[i];
      }
    }
  }
}

void SwiGluRange(const float* gate, const float* up, float* out, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float g = gate[i];
    out[i] = (g / (1.0f + std::exp(-g))) * up[i];
  }
}

void ConvertRow(const void* row, core::DType dtype, int64_t n, float* out) {
  switch (dtype) {
    case core::DType::kF32:
      std::memcpy(out, row, n * sizeof(float));
      break;
    case core::DType::kF16: {
      const uint16_t* p = static_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < n; ++i) out[i] = core::F16ToF32(p[i]);
      break;
    }
    case core::DType::kBF16: {
      const uint16_t* p = static_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < n; ++i) out[i] = core::BF16ToF32(p[i]);
      break;
    }
    default:
      ARLE_CHECK(IsSupportedQuant(dtype)) << "ConvertRow: unsupported dtype " << core::DTypeName(dtype);
      DequantizeRow(dtype, row, n, out);  // n is whole blocks (the caller's tensor guarantees it)
  }
}

}  // namespace arle::kernels::ref
