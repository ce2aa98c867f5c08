// RmsNorm: y = x * rsqrt(mean(x^2) + eps) * w over the last dimension, in f32 (HF's
// Qwen3RMSNorm / LlamaRMSNorm with f32 activations).
#pragma once

#include "arle/core/tensor.h"
#include "arle/kernels/context.h"

namespace arle::kernels {

struct RmsNormArgs {
  const core::Tensor* x = nullptr;  // f32 [..., n] contiguous (any rank)
  const core::Tensor* w = nullptr;  // f32/f16/bf16 [n]
  float eps = 0;
  core::Tensor* y = nullptr;  // f32 with x's element count; may be x itself
};

// Every row of n values is normalised on its own (per-head q/k norm is x viewed as
// [n_tok * n_head, head_dim]), so rows are independent (batch invariant). REQUIRES (checked): the
// shapes and dtypes above.
void RmsNorm(const Context& ctx, const RmsNormArgs& args);

}  // namespace arle::kernels
