// MatMul: y = x * W^T (+ bias), the linear layer of every projection and the LM head.
#pragma once

#include "arle/core/tensor.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/backend.h"

namespace arle::kernels {

// y[t, o] = sum_i x[t, i] * w[o, i] + bias[o], accumulated in f32.
// x: f32 [n_tok, n_in] contiguous. w: f32/f16/bf16 or a GGUF block format of kernels/quant.h
// (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K; n_in a multiple of its block) [n_out, n_in] contiguous, used in
// place. Block weights are multiplied in integers with each token's activations quantized to 8
// bits (llama.cpp's scheme, kernels/quant_dot.h): within the activation rounding of MatMul over
// the dequantized f32 weights, and the same bits on both backends and every SIMD target.
// bias: null or f32/f16/bf16 [n_out]. y: f32 [n_tok, n_out] contiguous, must not alias x.
// Threads split the output columns. Determinism: y[t, o] is a single dot product whose reduction
// order depends only on n_in and the SIMD target, so it is bit-identical whatever n_tok, the other
// rows of x, or the pool size (batch invariance).
// REQUIRES (checked): the shapes and dtypes above.
void MatMul(const core::Tensor& x, const core::Tensor& w, const core::Tensor* bias, core::Tensor& y,
            core::ThreadPool& pool, Backend backend = Backend::kDefault);

}  // namespace arle::kernels
