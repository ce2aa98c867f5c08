// Reference kernels: plain scalar C++ with f32 accumulation in sequential index order. They are
// the oracle the SIMD kernels are tested against; each processes a range of independent work
// items so the dispatcher can thread them without changing any result.
#pragma once

#include <cstdint>
#include <span>

#include "arle/core/check.h"
#include "arle/core/dtype.h"
#include "arle/kernels/kernel_args.h"

namespace arle::kernels::ref {

// Output columns [o_begin, o_end) of every token.
void MatMulRows(const MatMulParams& args, int64_t o_begin, int64_t o_end);
// Rows [begin, end).
void RmsNormRows(const RmsNormParams& args, int64_t begin, int64_t end);
// Work items (t * n_head + h) in [begin, end).
void AttentionRows(const AttentionParams& args, int64_t begin, int64_t end);

// Element i of a f32/f16/bf16 array as f32.
float LoadAsF32(const void* data, core::DType dtype, int64_t i);

// GGUF block rows <-> f32 (contracts in kernels/quant.h; arguments already checked there).
void DequantizeRow(core::DType dtype, const void* src, int64_t n, float* dst);
void QuantizeRow(core::DType dtype, const float* src, int64_t n, void* dst);

}  // namespace arle::kernels::ref

namespace arle::kernels::ref {

// Tokens [t_begin, t_end) of x [n_tok, n_head, head_dim] rotated with cos/sin [n_tok, head_dim/2].
void RopeRows(const float* cos, const float* sin, float* x, int64_t n_head, int64_t head_dim,
              int64_t t_begin, int64_t t_end);
// out[i] = silu(gate[i]) * up[i] for i in [begin, end).
void SwiGluRange(const float* gate, const float* up, float* out, int64_t begin, int64_t end);
// out[i] = f32(row[i]) for i < n: f32/f16/bf16, or a GGUF block format of kernels/quant.h (n whole
// blocks, dequantized as DequantizeRow).
void ConvertRow(const void* row, core::DType dtype, int64_t n, float* out);

}  // namespace arle::kernels::ref

namespace arle::kernels::ref {

// Work items (t * n_head + h) in [begin, end) of paged attention: AttentionRows with the row
// lookup through the block table and 16-bit rows widened to f32 first (so bit-identical to
// AttentionRows over the widened rows laid out contiguously).
void PagedAttentionRows(const PagedAttentionParams& args, int64_t begin, int64_t end);

}  // namespace arle::kernels::ref
