// The tokenizer files `arle model init` ships with each architecture: the real Qwen3 tokenizer for
// qwen3 presets and a llama2.c vocabulary (stories260K's 512 tokens in the arle binary) for llama
// presets, built from bytes the caller holds (the binary's: apps/arle/embedded_assets).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "arle/core/status.h"

namespace arle::convert {

struct TokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
  int64_t vocab_size = 0;  // tokens including added tokens
  // For GGUF export: "gpt2" (byte-level BPE) or "llama" (SentencePiece-style with scores).
  std::string gguf_model;
  std::vector<float> scores;  // per id, only for "llama"
};

// The sources of TokenizerFilesForArch, held in memory by the caller.
struct TokenizerAssets {
  std::span<const uint8_t> qwen3_tokenizer_json_gz;      // Qwen3's tokenizer.json, gzip
  std::span<const uint8_t> qwen3_tokenizer_config_json;  // Qwen3's tokenizer_config.json
  std::span<const uint8_t> llama2c_tokenizer;            // a llama2.c tokenizer.bin
  int32_t llama2c_vocab_size = 0;                        // tokens in llama2c_tokenizer
};

// The files for `arch` ("qwen3" or "llama") from `assets`. InvalidArgument for other
// architectures; what parsing the assets reports when they are damaged.
core::StatusOr<TokenizerFiles> TokenizerFilesForArch(const std::string& arch,
                                                     const TokenizerAssets& assets);

// Tokens of a tokenizer.json (the largest id in model.vocab and added_tokens, plus one), checking
// the JSON shape on the way. InvalidArgument naming `source` when it is not such a file.
core::StatusOr<int64_t> CountTokenizerTokens(const std::string& tokenizer_json,
                                             const std::string& source);

}  // namespace arle::convert
