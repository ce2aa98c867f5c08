// MatMul: y = x * W^T (+ bias), the linear layer of every projection and the LM head.
#pragma once

#include <span>

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

// One product of MatMulMulti / MatMulSwiGlu: y = x * w^T + bias (bias may be null).
struct MatMulOutput {
  const core::Tensor* w = nullptr;
  const core::Tensor* bias = nullptr;
  core::Tensor* y = nullptr;
};

// An RMSNorm fused into a matmul's input pass: the products read normed = RmsNorm(x, *w, eps)
// instead of x. Each token's row is normalized and, for block weights, quantized by the same
// worker in one pass while it is in L1 (one dispatch and one pass over the input fewer than
// RmsNorm then MatMul). `normed` receives the normalized rows (the float weights and the caller
// read them); it may be x itself. Bit-identical to RmsNorm(x, *w, eps, *normed) followed by the
// matmul over *normed. REQUIRES (checked): RmsNorm's (rmsnorm.h), and MatMul's with *normed as x.
struct InputRmsNorm {
  const core::Tensor* w = nullptr;
  float eps = 0;
  core::Tensor* normed = nullptr;
};

// MatMul for several weights over the same x (q/k/v projections) as one parallel loop: block
// weights of the same activation format share one quantization of x, and the workers claim column
// blocks of all outputs from one counter (one dispatch, no barrier between the outputs). Each y is
// bit-identical to its own MatMul. Same REQUIRES, per output; no y may alias x. With `norm`, the
// input is RmsNorm(x) as InputRmsNorm says.
void MatMulMulti(const core::Tensor& x, std::span<const MatMulOutput> outputs,
                 core::ThreadPool& pool, Backend backend = Backend::kDefault,
                 const InputRmsNorm* norm = nullptr);

// The gated MLP's first half, fused: gate.y = silu(x * gate.w^T + gate.bias) * (x * up.w^T +
// up.bias), with up.y as scratch. Each column block of both products is computed by one worker,
// which applies SwiGLU to it while it is in cache. Bit-identical to MatMul(gate), MatMul(up),
// SwiGlu(gate.y, up.y, gate.y). REQUIRES (checked): MatMul's, equal widths, gate.y != up.y. With
// `norm`, the input is RmsNorm(x) as InputRmsNorm says.
void MatMulSwiGlu(const core::Tensor& x, const MatMulOutput& gate, const MatMulOutput& up,
                  core::ThreadPool& pool, Backend backend = Backend::kDefault,
                  const InputRmsNorm* norm = nullptr);

}  // namespace arle::kernels
