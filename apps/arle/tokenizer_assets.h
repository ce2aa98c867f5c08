// The tokenizer files `arle model init` ships with each architecture: the real Qwen3 tokenizer for
// qwen3 presets and stories260K's 512-token SentencePiece-style vocabulary for llama presets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arle/core/status.h"

namespace arle::app {

struct TokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
  int64_t vocab_size = 0;  // tokens including added tokens
  // For GGUF export: "gpt2" (byte-level BPE) or "llama" (SentencePiece-style with scores).
  std::string gguf_model;
  std::vector<float> scores;  // per id, only for "llama"
};

core::StatusOr<TokenizerFiles> TokenizerFilesForArch(const std::string& arch);

// Tokens of a tokenizer.json (the largest id in model.vocab and added_tokens, plus one), checking
// the JSON shape on the way. InvalidArgument naming `source` when it is not such a file.
core::StatusOr<int64_t> CountTokenizerTokens(const std::string& tokenizer_json,
                                             const std::string& source);

}  // namespace arle::app
