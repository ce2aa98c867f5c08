// Importer for karpathy/llama2.c checkpoints (legacy version-0 `.bin`) and tokenizers
// (`tokenizer.bin`): writes a Hugging Face LlamaForCausalLM directory with a SentencePiece-style
// BPE `tokenizer.json` (what `arle convert llama2c` runs).
#pragma once

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

// Parses and validates the header of a checkpoint held in `bytes` (the whole file): positive
// sizes, dim divisible by n_heads into an even head size, n_heads divisible by n_kv_heads, and a
// file size equal to what the header implies. Version-1+ exports (magic "ak42") are Unimplemented.
// Errors are DataLoss/InvalidArgument/Unimplemented and name `name`.
core::StatusOr<Llama2cConfig> ParseLlama2cHeader(std::span<const uint8_t> bytes,
                                                 const std::string& name);

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

// Converts `model_bin` + `tokenizer_bin` into `out_dir` (created when missing): config.json,
// generation_config.json, model.safetensors (f32; q/k rows permuted from llama2.c's interleaved
// RoPE pairs to rotate_half order), tokenizer.json and tokenizer_config.json. Files are written
// atomically. Errors name the offending file.
core::Status ConvertLlama2c(const std::string& model_bin, const std::string& tokenizer_bin,
                            const std::string& out_dir);

}  // namespace arle::io
