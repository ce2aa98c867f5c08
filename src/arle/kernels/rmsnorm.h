// RmsNorm: y = x * rsqrt(mean(x^2) + eps) * w over the last dimension, in f32 (HF's
// Qwen3RMSNorm / LlamaRMSNorm with f32 activations).
#pragma once

#include "arle/core/tensor.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/backend.h"

namespace arle::kernels {

// x: f32 [..., n] contiguous (any rank; every row of n values is normalised on its own, so
// per-head q/k norm is x viewed as [n_tok * n_head, head_dim]). w: f32/f16/bf16 [n].
// y: f32 with x's element count; may be x itself. Rows are independent (batch invariant).
void RmsNorm(const core::Tensor& x, const core::Tensor& w, float eps, core::Tensor& y,
             core::ThreadPool& pool, Backend backend = Backend::kDefault);

}  // namespace arle::kernels
