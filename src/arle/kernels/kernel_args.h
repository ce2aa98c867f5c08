// Raw argument blocks shared by the dispatchers (kernels/*.cc) and the backends (ref/, cpu/).
// Internal to kernels/: other modules call the Tensor entry points in kernels/*.h.
#pragma once

#include <cstdint>

#include "arle/core/dtype.h"
#include "arle/kernels/paged_attention.h"  // PagedKvElement: the public layout

namespace arle::kernels {

// y[t, o] = sum_i x[t, i] * w[o, i] (+ bias[o]).
struct MatMulParams {
  const float* x = nullptr;  // [n_tok, n_in], rows x_stride floats apart
  int64_t x_stride = 0;
  const void* w = nullptr;  // [n_out, n_in] contiguous, f32/f16/bf16 or a GGUF block format
  // Block-format weights only: every token's activations quantized by QuantizeActivationRow
  // (quant_dot.h), ActRowBytes apart.
  const void* xq = nullptr;
  core::DType w_dtype = core::DType::kF32;
  const void* bias = nullptr;  // [n_out] f32/f16/bf16, or null
  core::DType bias_dtype = core::DType::kF32;
  float* y = nullptr;  // [n_tok, n_out], rows y_stride floats apart
  int64_t y_stride = 0;
  int64_t n_tok = 0;
  int64_t n_in = 0;
  int64_t n_out = 0;
};

// y[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w.
struct RmsNormParams {
  const float* x = nullptr;  // [n_rows, n]
  const void* w = nullptr;   // [n] f32/f16/bf16
  core::DType w_dtype = core::DType::kF32;
  float* y = nullptr;  // [n_rows, n] (may alias x)
  int64_t n_rows = 0;
  int64_t n = 0;
  float eps = 0;
};

// Causal grouped-query attention of n_tok queries over a KV cache; query t sees cache rows
// 0 .. positions[t] (inclusive). Work items are the n_tok * n_head (token, head) pairs, in an
// order each backend chooses.
struct AttentionParams {
  const float* q = nullptr;  // [n_tok, n_head, head_dim]
  const float* k = nullptr;  // [n_ctx, n_head_kv, head_dim]
  const float* v = nullptr;  // [n_ctx, n_head_kv, head_dim]
  float* out = nullptr;      // [n_tok, n_head, head_dim]
  const int32_t* positions = nullptr;  // [n_tok], each < n_ctx
  int64_t n_tok = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t n_ctx = 0;
  float scale = 0;
};

// Attention's softmax is online: keys are taken in steps of this many, step s covering keys
// [s * kAttentionKeyStep, (s + 1) * kAttentionKeyStep) of the query's sequence. After each step
// the running maximum, the running sum of exponentials and the unnormalized output are updated
// (rescaled by exp(old max - new max) when the maximum grew), and the output is divided by the sum
// once at the end. Step boundaries depend only on the key index, never on the batch, the block
// table or the thread, and a step's K and V rows are used while they are in L1.
inline constexpr int64_t kAttentionKeyStep = 16;

}  // namespace arle::kernels

namespace arle::kernels {

// Causal grouped-query attention of n_tok queries over a paged KV cache; query t sees rows
// 0 .. positions[t] (inclusive) of its sequence, row j living in block block_tables[t][j /
// block_size] at offset j % block_size. Work items as for AttentionParams.
struct PagedAttentionParams {
  const float* q = nullptr;  // [n_tok, n_head, head_dim]
  const void* k = nullptr;   // [n_blocks, n_head_kv, block_size, head_dim] in kv_dtype
  const void* v = nullptr;   // [n_blocks, n_head_kv, block_size, head_dim] in kv_dtype
  core::DType kv_dtype = core::DType::kF32;  // f32, bf16 or f16
  float* out = nullptr;                      // [n_tok, n_head, head_dim]
  const int32_t* const* block_tables = nullptr;  // [n_tok], each covering row positions[t]
  const int32_t* positions = nullptr;            // [n_tok]
  int64_t n_tok = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t block_size = 0;
  float scale = 0;
};

}  // namespace arle::kernels
