// MatMul: y = x * W^T (+ bias) for one or several weights over the same input, optionally with an
// RMSNorm fused into the input pass, and the gated MLP's fused gate/up/SwiGLU.
#pragma once

#include <span>

#include "arle/core/tensor.h"
#include "arle/kernels/context.h"

namespace arle::kernels {

// One product y = x * w^T (+ bias), the linear layer of every projection and the LM head.
// y[t, o] = sum_i x[t, i] * w[o, i] + bias[o], accumulated in f32.
// w: f32/f16/bf16 or a GGUF block format of kernels/quant.h (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K; n_in a
// multiple of its block) [n_out, n_in] contiguous, used in place. Block weights are multiplied in
// integers with each token's activations quantized to 8 bits (llama.cpp's scheme,
// kernels/quant_dot.h): within the activation rounding of MatMul over the dequantized f32 weights,
// and the same bits on both CPU backends and every SIMD target. bias: null or f32/f16/bf16
// [n_out]. y: f32 [n_tok, n_out] contiguous, must not alias x.
struct MatMulOutput {
  const core::Tensor* w = nullptr;
  const core::Tensor* bias = nullptr;
  core::Tensor* y = nullptr;
};

// An RMSNorm fused into a matmul's input pass: the products read normed = RmsNorm(x, *w, eps)
// instead of x. Each token's row is normalized and, for block weights, quantized by the same
// worker in one pass while it is in L1 (one dispatch and one pass over the input fewer than
// RmsNorm then MatMul). `normed` receives the normalized rows (the float weights and the caller
// read them); it may be x itself (inference), or a separate tensor so x survives (training).
// Bit-identical to RmsNorm(x, *w, eps, *normed) followed by the matmul over *normed.
// REQUIRES (checked): RmsNorm's (rmsnorm.h), and MatMul's with *normed as x.
struct InputRmsNorm {
  const core::Tensor* w = nullptr;
  float eps = 0;
  core::Tensor* normed = nullptr;
};

// One or more products over the same x (the q/k/v projections are three), as one parallel loop:
// block weights of the same activation format share one quantization of x, and the workers claim
// column blocks of all outputs from one counter (one dispatch, no barrier between the outputs).
struct MatMulArgs {
  const core::Tensor* x = nullptr;  // f32 [n_tok, n_in] contiguous
  std::span<const MatMulOutput> outputs;
  const InputRmsNorm* norm = nullptr;  // when set, the input is RmsNorm(x) as InputRmsNorm says
};

// Each y is bit-identical to its own single-output MatMul. Determinism: y[t, o] is a single dot
// product whose reduction order depends only on n_in and the SIMD target, so it is bit-identical
// whatever n_tok, the other rows of x, or the pool size (batch invariance). With f32 weights and
// ctx.float_matmul() == kGemm (context.h) it is instead one multiply-add chain over n_in
// ascending (the backward kernels' GEMM below, bias added after): batch-invariant too, but not
// the same bits as the dot order.
// REQUIRES (checked): the shapes and dtypes above, per output; no y may alias x. CUDA: float
// weights only.
void MatMul(const Context& ctx, const MatMulArgs& args);

// The gated MLP's first half, fused: gate.y = silu(x * gate.w^T + gate.bias) * (x * up.w^T +
// up.bias), with up.y receiving the up product.
struct MatMulSwiGluArgs {
  const core::Tensor* x = nullptr;  // f32 [n_tok, n_in] contiguous
  MatMulOutput gate, up;
  const InputRmsNorm* norm = nullptr;
};

// Each column block of both products is computed by one worker, which applies SwiGLU to it while
// it is in cache (in the kGemm order: both products, then SwiGLU). Bit-identical to
// MatMul(gate), MatMul(up), SwiGlu(gate.y, up.y, gate.y) on the same context.
// REQUIRES (checked): MatMul's, equal widths, gate.y != up.y. CPU backends only.
void MatMulSwiGlu(const Context& ctx, const MatMulSwiGluArgs& args);

// ---- Backward (training) ----
// Both are GEMMs in f32 on every CPU backend. Determinism: each output element is one chain of
// multiply-adds over the contracted index in ascending order, starting from 0 (accumulate false)
// or from the element's old value (accumulate true); the work is split by output rows only, so
// results are bit-identical for every pool size and run, and a row of dx does not depend on the
// other rows of dy (batch invariance). CUDA: no kernel yet.

// dx = dy * w: dx[t, i] (+)= sum_o dy[t, o] * w[o, i], o ascending.
// REQUIRES (checked): the shapes below; dx aliases neither dy nor w.
struct MatMulBackwardInputArgs {
  const core::Tensor* dy = nullptr;  // f32 [n_tok, n_out] contiguous
  const core::Tensor* w = nullptr;   // f32 [n_out, n_in] contiguous (the forward's weight)
  core::Tensor* dx = nullptr;        // f32 [n_tok, n_in] contiguous; must not alias dy
  bool accumulate = false;           // true: dx += ..., false: dx = ...
};
void MatMulBackwardInput(const Context& ctx, const MatMulBackwardInputArgs& args);

// dw[o, i] (+)= sum_t dy[t, o] * x[t, i], t ascending; dbias[o] (+)= sum_t dy[t, o] (adds in t
// order) when dbias is set. REQUIRES (checked): the shapes below; dw and dbias alias no input.
struct MatMulBackwardWeightArgs {
  const core::Tensor* dy = nullptr;  // f32 [n_tok, n_out] contiguous
  const core::Tensor* x = nullptr;   // f32 [n_tok, n_in] contiguous (the forward's input)
  core::Tensor* dw = nullptr;        // f32 [n_out, n_in] contiguous
  core::Tensor* dbias = nullptr;     // null or f32 [n_out]
  bool accumulate = true;            // gradient accumulation across micro-batches adds
};
void MatMulBackwardWeight(const Context& ctx, const MatMulBackwardWeightArgs& args);

}  // namespace arle::kernels
