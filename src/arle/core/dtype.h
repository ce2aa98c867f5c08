// DType: element types of tensors, including the GGUF block-quantized formats byte for byte, so
// GGUF weights can be used straight from mmap. Block formats pack `block_elems` values into
// `block_bytes` bytes; plain types have block_elems == 1.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace arle::core {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kF64,
  kI8,
  kI16,
  kI32,
  kI64,
  kU8,
  kBool,
  // GGUF block formats (ggml's block_* structs).
  kQ4_0,
  kQ4_1,
  kQ5_0,
  kQ5_1,
  kQ8_0,
  kQ8_1,
  kQ2_K,
  kQ3_K,
  kQ4_K,
  kQ5_K,
  kQ6_K,
  kQ8_K,
  kIQ2_XXS,
  kIQ2_XS,
  kIQ3_XXS,
  kIQ1_S,
  kIQ4_NL,
  kIQ3_S,
  kIQ2_S,
  kIQ4_XS,
  kIQ1_M,
  kTQ1_0,
  kTQ2_0,
  kMXFP4,
};

struct DTypeInfo {
  std::string_view name;  // lowercase, as printed: "f32", "bf16", "q4_k"
  int64_t block_elems;    // values per block (1 for plain types)
  int64_t block_bytes;    // bytes per block
  bool is_float;          // f32/f16/bf16/f64
  bool is_quantized;      // a GGUF block format
};

// Returns the static description of `dtype`.
const DTypeInfo& GetDTypeInfo(DType dtype);
inline std::string_view DTypeName(DType dtype) { return GetDTypeInfo(dtype).name; }
// Parses a name as printed by DTypeName (case-insensitive); also accepts "float32", "float16",
// "bfloat16". Returns nullopt for unknown names.
std::optional<DType> DTypeFromName(std::string_view name);

// Returns the bytes needed for `n_elems` values. For block formats, n_elems must be a multiple of
// block_elems (returns nullopt otherwise, or on overflow).
std::optional<int64_t> DTypeBytes(DType dtype, int64_t n_elems);

// Size of one element of a plain (non-block) type.
inline int64_t ElementSize(DType dtype) { return GetDTypeInfo(dtype).block_bytes; }

}  // namespace arle::core
