// Activation quantization for the integer block dot products (quant_dot.h).
#include "arle/kernels/quant_dot.h"

#include <algorithm>
#include <cmath>

#include "arle/core/check.h"
#include "arle/kernels/quant.h"

namespace arle::kernels {
namespace {

// Scale and 8-bit values of n activations: d = max|x| / 127, q = x / d rounded (ties to even).
// cpu::QuantizeActivationRow computes the same bits with SIMD.
float QuantizeGroup(const float* x, int64_t n, int8_t* q) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));  // NaNs are skipped
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    // fmax first: a NaN becomes -127 (as the SIMD twin's max does), never an undefined cast.
    q[i] = static_cast<int8_t>(std::fmin(std::fmax(std::nearbyint(x[i] * id), -127.0f), 127.0f));
  }
  return d;
}

}  // namespace

bool UsesSuperBlockActivations(core::DType w_dtype) {
  return w_dtype == core::DType::kQ4_K || w_dtype == core::DType::kQ5_K ||
         w_dtype == core::DType::kQ6_K;
}

int64_t ActRowBytes(core::DType w_dtype, int64_t n_in) {
  return UsesSuperBlockActivations(w_dtype) ? n_in / kQK_K * static_cast<int64_t>(sizeof(ActBlockQ8K))
                           : n_in / kQK8_0 * static_cast<int64_t>(sizeof(ActBlockQ8));
}

void QuantizeActivationRowWith(core::DType w_dtype, const float* x, int64_t n_in, void* out,
                               QuantizeGroupFn quantize_group) {
  ARLE_CHECK(IsSupportedQuant(w_dtype)) << "QuantizeActivationRow: " << core::DTypeName(w_dtype);
  if (UsesSuperBlockActivations(w_dtype)) {
    ARLE_CHECK_EQ(n_in % kQK_K, 0);
    auto* blocks = static_cast<ActBlockQ8K*>(out);
    for (int64_t b = 0; b < n_in / kQK_K; ++b) {
      ActBlockQ8K& a = blocks[b];
      a.d = quantize_group(x + b * kQK_K, kQK_K, a.q);
      for (int j = 0; j < 16; ++j) {
        int sum = 0;
        for (int l = 0; l < 16; ++l) sum += a.q[16 * j + l];
        a.bsums[j] = static_cast<int16_t>(sum);
      }
    }
    return;
  }
  ARLE_CHECK_EQ(n_in % kQK8_0, 0);
  auto* blocks = static_cast<ActBlockQ8*>(out);
  for (int64_t b = 0; b < n_in / kQK8_0; ++b) {
    blocks[b].d = quantize_group(x + b * kQK8_0, kQK8_0, blocks[b].q);
  }
}

void QuantizeActivationRow(core::DType w_dtype, const float* x, int64_t n_in, void* out) {
  QuantizeActivationRowWith(w_dtype, x, n_in, out, QuantizeGroup);
}

}  // namespace arle::kernels
