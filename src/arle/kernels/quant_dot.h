// Internal to arle_kernels: integer dot products of GGUF block weights with activations quantized
// to 8 bits per token (llama.cpp's scheme: Q8_0-style blocks for Q8_0/Q4_0 weights, Q8_K-style
// super-blocks for the K-quants).
//
// The result of a row . token dot product is defined by ref::QuantDotRow, in 8 lanes (the int32
// lanes of a 256-bit vector): lane m takes values 4m .. 4m+3 of every 32-value chunk. Per weight
// block, each lane's integer sum of quant products (times the integer sub-block scales) is exact,
// then converted to f32, scaled and added to that lane's f32 accumulator; the 8 accumulators are
// summed in a fixed tree at the end of the row. The SIMD kernels perform exactly these
// operations, so every backend and Highway target gives the same bits, and a value never depends
// on how many tokens or rows were computed with it (batch invariance).
#pragma once

#include <cstdint>

#include "arle/core/dtype.h"
#include "arle/kernels/kernel_args.h"

namespace arle::kernels {

// 32 activations for Q8_0/Q4_0 weights: x ~= d * q.
struct ActBlockQ8 {
  float d;
  int8_t q[32];
};
static_assert(sizeof(ActBlockQ8) == 36);

// 256 activations for K-quant weights: x ~= d * q; bsums[j] = sum of q[16j .. 16j + 16).
struct ActBlockQ8K {
  float d;
  int16_t bsums[16];
  int8_t q[256];
};
static_assert(sizeof(ActBlockQ8K) == 292);

// Whether weights of `w_dtype` multiply ActBlockQ8K super-blocks (the K-quants) rather than
// ActBlockQ8 blocks (Q8_0, Q4_0).
bool UsesSuperBlockActivations(core::DType w_dtype);

// Bytes of one token's quantized activations for weights of `w_dtype` (a GGUF block format)
// with n_in columns (a multiple of its block).
int64_t ActRowBytes(core::DType w_dtype, int64_t n_in);

// Quantizes one token's n_in activations for weights of `w_dtype` into ActRowBytes at `out`: per
// activation block d = max|x| / 127 and q = x * (1 / d) rounded to nearest (ties to even) and
// clamped to [-127, 127] (NaN inputs are skipped by the max and become -127). Scalar.
void QuantizeActivationRow(core::DType w_dtype, const float* x, int64_t n_in, void* out);

// The row layout of QuantizeActivationRow with the scale and quants of each activation block
// (n = 32 or 256 values) computed by `quantize_group` (which returns d): the scalar and SIMD
// versions share it.
using QuantizeGroupFn = float (*)(const float* x, int64_t n, int8_t* q);
void QuantizeActivationRowWith(core::DType w_dtype, const float* x, int64_t n_in, void* out,
                               QuantizeGroupFn quantize_group);

namespace ref {
// The dot product of one weight row (n_in values of `w_dtype` blocks) with one token's quantized
// activations: the definition every fast kernel reproduces bit for bit.
float QuantDotRow(core::DType w_dtype, const void* w_row, const void* act_row, int64_t n_in);
}  // namespace ref

namespace cpu {
// kernels::QuantizeActivationRow with SIMD, bit-identical to it on every target.
void QuantizeActivationRow(core::DType w_dtype, const float* x, int64_t n_in, void* out);

// y for output columns [o_begin, o_end) of every token of a MatMul over block weights, with
// args.xq holding every token's quantized activations (ActRowBytes apart). Bit-identical to
// ref::QuantDotRow per element on every target; AVX2 and AVX-512 targets use 8-bit integer
// multiply-adds, other targets the scalar definition.
void QuantMatMulRows(const MatMulParams& args, int64_t o_begin, int64_t o_end);
}  // namespace cpu

}  // namespace arle::kernels
