// `arle quantize`: a GGUF model (f32/f16/bf16 matrices) rewritten with GGUF block-format matrices,
// choosing each tensor's type with llama.cpp's rules for the same file types (llama-quantize's
// Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K). Metadata is copied unchanged; tensors that are not quantized
// are too, except that norms and biases held in f16/bf16 are written in F32 (llama.cpp's
// converter rule, io::GgufStoresAsF32; llama-quantize itself would copy them, and llama.cpp then
// fails on them at the first forward).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "arle/core/dtype.h"
#include "arle/core/status.h"

namespace arle::convert {

enum class QuantFileType { kQ8_0, kQ4_0, kQ4_K_M, kQ5_K_M, kQ6_K };

// "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k" (case-insensitive); nullopt otherwise.
std::optional<QuantFileType> ParseQuantFileType(std::string_view name);
std::string_view QuantFileTypeName(QuantFileType type);
// llama.cpp's general.file_type value (LLAMA_FTYPE_MOSTLY_*).
uint32_t GgufFileTypeId(QuantFileType type);

// What the tensor `name` (llama.cpp's names: "blk.3.attn_v.weight") of row-major shape `shape`
// ([rows, cols], as core::Tensor has it) becomes, as llama.cpp chooses it:
// - the output matrix (token_embd when there is no output.weight) takes Q6_K, or Q8_0 for Q8_0;
// - with _M types, attn_v and ffn_down of the layers use_more_bits() picks (the first and last
//   eighth, and every third layer between) take Q6_K;
// - everything else takes the file type's base type;
// - a matrix whose rows are not whole blocks of that type falls back to Q8_0 (llama.cpp uses
//   Q5_0/Q5_1 for K types there, which arle does not implement), or stays as it is when not even
//   Q8_0 fits.
// nullopt = not quantized: 1-D tensors, names not ending in ".weight", "_norm.weight" tensors.
std::optional<core::DType> ChooseQuantType(QuantFileType type, const std::string& name,
                                           std::span<const int64_t> shape, int64_t n_layer,
                                           bool has_output);

// Reads the GGUF model `in`, writes `out` (atomically) using `n_threads` threads (< 1: one per
// physical core). Prints nothing; returns what it did.
struct QuantizeSummary {
  int64_t n_quantized = 0;
  int64_t n_kept = 0;
  int64_t bytes_in = 0;   // tensor data
  int64_t bytes_out = 0;
};
core::StatusOr<QuantizeSummary> QuantizeGguf(const std::string& in, const std::string& out,
                                             QuantFileType type, int n_threads);

// QuantizeGguf for a GGUF file `in`; a Hugging Face directory is first exported to a temporary
// GGUF next to `out` (hf_to_gguf.h), which is removed afterwards.
core::StatusOr<QuantizeSummary> QuantizeModel(const std::string& in, const std::string& out,
                                              QuantFileType type, int n_threads);

}  // namespace arle::convert
