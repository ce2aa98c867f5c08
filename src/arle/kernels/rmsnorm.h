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

// Backward of RmsNorm (y = x * r * w, r = 1/sqrt(mean(x^2) + eps) per row of n), all f32:
//   dx = r * (g - xhat * sum(g * xhat) / n) with g = dy * w, xhat = x * r   (= or += per
//   accumulate_dx), and dw += sum over rows of dy * xhat.
// r is recomputed exactly as RmsNorm computes it on the same backend. Per-head q/k norm is x viewed
// as [n_tok * n_head, head_dim], as for the forward.
struct RmsNormBackwardArgs {
  const core::Tensor* x = nullptr;   // f32 [..., n] contiguous: the forward's input
  const core::Tensor* w = nullptr;   // f32 [n]
  float eps = 0;
  const core::Tensor* dy = nullptr;  // f32, x's shape
  core::Tensor* dx = nullptr;        // f32, x's shape; may alias dy (not x)
  bool accumulate_dx = false;        // true: dx += ... (residual-stream grads add)
  core::Tensor* dw = nullptr;        // f32 [n]; always accumulates (+=); must not alias the others;
                                     // null: the weight is frozen, no dw is computed
};
// Deterministic: dx rows are independent, and each dw column is one sum over the rows in
// ascending order (the work is split by columns), so the bits do not depend on the thread count.
// Uses ctx's scratch slot 0. REQUIRES (checked): the shapes and dtypes above. CPU backends only.
void RmsNormBackward(const Context& ctx, const RmsNormBackwardArgs& args);

}  // namespace arle::kernels
