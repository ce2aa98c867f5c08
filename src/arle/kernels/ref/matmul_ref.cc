// Scalar reference matmul: one f32 accumulator per output element, indices in ascending order.
// GGUF block weights use the integer dot products of quant_dot.h.
#include <vector>

#include "arle/core/half.h"
#include "arle/kernels/quant_dot.h"
#include "arle/kernels/ref/ref_kernels.h"

namespace arle::kernels::ref {
namespace {

template <typename Load>
void MatMulTyped(const MatMulParams& a, int64_t o_begin, int64_t o_end, Load load) {
  for (int64_t t = 0; t < a.n_tok; ++t) {
    const float* x = a.x + t * a.x_stride;
    float* y = a.y + t * a.y_stride;
    for (int64_t o = o_begin; o < o_end; ++o) {
      const int64_t w_row = o * a.n_in;
      float acc = 0.0f;
      for (int64_t i = 0; i < a.n_in; ++i) acc += x[i] * load(w_row + i);
      if (a.bias != nullptr) acc += LoadAsF32(a.bias, a.bias_dtype, o);
      y[o] = acc;
    }
  }
}

}  // namespace

float LoadAsF32(const void* data, core::DType dtype, int64_t i) {
  switch (dtype) {
    case core::DType::kF32:
      return static_cast<const float*>(data)[i];
    case core::DType::kF16:
      return core::F16ToF32(static_cast<const uint16_t*>(data)[i]);
    case core::DType::kBF16:
      return core::BF16ToF32(static_cast<const uint16_t*>(data)[i]);
    default:
      ARLE_CHECK(false) << "LoadAsF32: unsupported dtype " << core::DTypeName(dtype);
  }
  return 0.0f;
}

void MatMulRows(const MatMulParams& a, int64_t o_begin, int64_t o_end) {
  switch (a.w_dtype) {
    case core::DType::kF32: {
      const float* w = static_cast<const float*>(a.w);
      MatMulTyped(a, o_begin, o_end, [w](int64_t j) { return w[j]; });
      break;
    }
    case core::DType::kF16: {
      const uint16_t* w = static_cast<const uint16_t*>(a.w);
      MatMulTyped(a, o_begin, o_end, [w](int64_t j) { return core::F16ToF32(w[j]); });
      break;
    }
    case core::DType::kBF16: {
      const uint16_t* w = static_cast<const uint16_t*>(a.w);
      MatMulTyped(a, o_begin, o_end, [w](int64_t j) { return core::BF16ToF32(w[j]); });
      break;
    }
    default: {
      // A GGUF block format (checked by MatMul): integer dot products with the activations MatMul
      // quantized (quant_dot.h).
      const int64_t row_bytes = *core::DTypeBytes(a.w_dtype, a.n_in);
      const int64_t act_bytes = ActRowBytes(a.w_dtype, a.n_in);
      for (int64_t o = o_begin; o < o_end; ++o) {
        const char* w = static_cast<const char*>(a.w) + o * row_bytes;
        for (int64_t t = 0; t < a.n_tok; ++t) {
          float acc =
              QuantDotRow(a.w_dtype, w, static_cast<const char*>(a.xq) + t * act_bytes, a.n_in);
          if (a.bias != nullptr) acc += LoadAsF32(a.bias, a.bias_dtype, o);
          a.y[t * a.y_stride + o] = acc;
        }
      }
    }
  }
}

}  // namespace arle::kernels::ref
