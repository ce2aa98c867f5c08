// karpathy/llama2.c files: checkpoints (legacy version-0 `.bin`: header and weight layout) and
// tokenizers (`tokenizer.bin`), plus the Hugging Face tokenizer files (a SentencePiece-style BPE
// `tokenizer.json`) of a llama2.c vocabulary. Turning a checkpoint into a model directory is the
// llama family's import (models/llama/llama2c_import.h, what `arle convert llama2c` runs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "arle/core/status.h"

namespace arle::io {

// The 7-int32 header of a version-0 llama2.c checkpoint.
struct Llama2cConfig {
  int32_t dim = 0;         // n_embd
  int32_t hidden_dim = 0;  // n_ff
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // absolute value; the file stores it negated when wcls is separate
  int32_t seq_len = 0;
  bool shared_classifier = true;  // false: a separate wcls [vocab_size, dim] follows the weights

  int64_t head_dim() const { return dim / n_heads; }
};

// Bytes of the header; the weights follow it.
inline constexpr size_t kLlama2cHeaderBytes = 7 * sizeof(int32_t);

// Parses and validates the header of a checkpoint held in `bytes` (the whole file): positive
// sizes, dim divisible by n_heads into an even head size, n_heads divisible by n_kv_heads, and a
// file size equal to what the header implies. Version-1+ exports (magic "ak42") are Unimplemented.
// Errors are DataLoss/InvalidArgument/Unimplemented and name `name`.
core::StatusOr<Llama2cConfig> ParseLlama2cHeader(std::span<const uint8_t> bytes,
                                                 const std::string& name);

// The float32 arrays of a version-0 checkpoint in file order, pointing into its bytes (the
// freq_cis tables between rms_final and wcls are skipped: every runtime recomputes them).
// Shapes are outermost first; per-layer arrays are the layers' matrices back to back.
struct Llama2cWeights {
  const float* token_embedding = nullptr;  // [vocab_size, dim]
  const float* rms_att = nullptr;          // [n_layers, dim]
  const float* wq = nullptr;               // [n_layers, n_heads * head_dim, dim]
  const float* wk = nullptr;               // [n_layers, n_kv_heads * head_dim, dim]
  const float* wv = nullptr;               // [n_layers, n_kv_heads * head_dim, dim]
  const float* wo = nullptr;               // [n_layers, dim, n_heads * head_dim]
  const float* rms_ffn = nullptr;          // [n_layers, dim]
  const float* w1 = nullptr;               // [n_layers, hidden_dim, dim] (gate)
  const float* w2 = nullptr;               // [n_layers, dim, hidden_dim] (down)
  const float* w3 = nullptr;               // [n_layers, hidden_dim, dim] (up)
  const float* rms_final = nullptr;        // [dim]
  const float* wcls = nullptr;             // [vocab_size, dim]; null when shared_classifier
};

// The arrays of `bytes`, the whole checkpoint. The pointers live as long as `bytes`.
// REQUIRES: `config` is what ParseLlama2cHeader returned for `bytes` (so the size matches) and
// `bytes` is 4-byte aligned (a mapped file is).
Llama2cWeights Llama2cWeightArrays(const Llama2cConfig& config, std::span<const uint8_t> bytes);

// One entry of a llama2.c tokenizer.bin, as stored (spaces, not "▁"; "\n<s>\n" for BOS).
struct Llama2cToken {
  std::string piece;
  float score = 0.0f;
};

// Parses a tokenizer.bin (int32 max_token_length, then per token: f32 score, int32 length, bytes)
// holding exactly `vocab_size` tokens. Errors name `name`: truncation, negative or over-long
// lengths, trailing bytes.
core::StatusOr<std::vector<Llama2cToken>> ParseLlama2cTokenizer(std::span<const uint8_t> bytes,
                                                                int32_t vocab_size,
                                                                const std::string& name);

// Hugging Face tokenizer.json text for a llama2.c vocabulary: model BPE (byte_fallback, unk
// "<unk>", vocab with " " turned back into "▁", ids 0/1/2 named <unk>/<s>/</s>; merges for every
// piece that splits into two vocabulary pieces, ordered by the merged piece's score, highest first,
// as transformers' SentencePieceExtractor does), normalizer Prepend("▁") + Replace(" ", "▁"),
// post-processor adding <s>, decoder Replace("▁", " ") + ByteFallback + Fuse + Strip(" ", 1, 0).
// REQUIRES: tokens.size() >= 3. InvalidArgument when a piece is not valid UTF-8 or is duplicated.
core::StatusOr<std::string> Llama2cTokenizerJson(const std::vector<Llama2cToken>& tokens);

// tokenizer_config.json text for a llama2.c vocabulary (LlamaTokenizer with <unk>, <s>, </s> as
// ids 0, 1, 2, adding BOS), with `model_max_length`.
std::string Llama2cTokenizerConfigJson(int32_t model_max_length);

}  // namespace arle::io
