// GGUF block formats, byte for byte: the block layouts of ggml's Q8_0, Q4_0, Q4_K, Q5_K and Q6_K,
// and conversions of whole rows between them and f32. Weights in these formats are used straight
// from the mmap'd file; these conversions are the definition every fast kernel is tested against
// (see tests/kernels/quant_test.cc and tests/reference/make_quant_goldens.py).
#pragma once

#include <cstdint>

#include "arle/core/dtype.h"

namespace arle::kernels {

// f16 fields hold raw IEEE half bits (core::F16ToF32).
inline constexpr int64_t kQK8_0 = 32;  // values per Q8_0 / Q4_0 block
inline constexpr int64_t kQK_K = 256;  // values per K-quant super-block

// 32 values: x = d * qs[i].
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

// 32 values: x[i] = d * ((qs[i] & 15) - 8), x[i + 16] = d * ((qs[i] >> 4) - 8).
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK8_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// 256 values in 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min packed in `scales`:
// x = d * sc_j * q - dmin * m_j, q a 4-bit value. Sub-blocks 2i and 2i+1 share bytes
// qs[32i .. 32i+32) (low and high nibbles).
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Scale and min (6 bits each) of sub-block j (0..7) of a Q4_K or Q5_K super-block, unpacked from
// its 12 `scales` bytes as the GGUF definition packs them.
inline void ScaleMinK4(int j, const uint8_t* scales, int* sc, int* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
    *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// As Q4_K with a fifth bit per value in qh: bit 2i of qh[l] for sub-block 2i, bit 2i+1 for 2i+1.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

// 256 values in 16 sub-blocks of 16 with signed 8-bit scales: x = d * scales[j] * (q - 32), q a
// 6-bit value split into 4 low bits (ql) and 2 high bits (qh).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// Whether DequantizeRow / QuantizeRow handle `dtype` (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K).
bool IsSupportedQuant(core::DType dtype);

// dst[0 .. n) = the n values stored as `dtype` blocks at src, computed exactly as the GGUF
// definition does in f32 (each product and difference rounded on its own, no fused multiply-add).
// REQUIRES (checked): IsSupportedQuant(dtype); n a multiple of the block size.
void DequantizeRow(core::DType dtype, const void* src, int64_t n, float* dst);

// dst[0 .. n) = the n values of `dtype` at src in f32: f32/f16/bf16 exactly, block formats as
// DequantizeRow. REQUIRES (checked): a float dtype or IsSupportedQuant(dtype) with n a multiple of
// its block size.
void ConvertRowToF32(core::DType dtype, const void* src, int64_t n, float* dst);

// Quantizes src[0 .. n) into core::DTypeBytes(dtype, n) bytes of `dtype` blocks at dst.
// Deterministic. Q8_0 and Q4_0 follow llama.cpp's reference quantizers; the K-quants choose each
// sub-block's scale and min by a least-squares refit of the rounded values (arle's own; llama.cpp
// searches differently, so files differ in bytes, not in format). Non-finite inputs are a caller
// bug. Same REQUIRES as DequantizeRow.
void QuantizeRow(core::DType dtype, const float* src, int64_t n, void* dst);

}  // namespace arle::kernels
