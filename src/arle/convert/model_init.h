// `arle model init`: random-weight models in Hugging Face layout (config.json, model.safetensors,
// tokenizer files, generation_config.json) or as one GGUF file, for tests and benchmarks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arle/core/dtype.h"
#include "arle/convert/tokenizer_files.h"
#include "arle/core/status.h"
#include "arle/models/llama/llama_spec.h"

namespace arle::convert {

struct ModelInitOptions {
  std::string arch = "qwen3";        // qwen3 | llama
  std::string preset = "tiny";
  std::string config_overrides;      // JSON object merged into the preset's config.json
  std::string dtype;                 // f32 | bf16 | f16; empty = the preset's torch_dtype
  uint64_t seed = 0;
  std::string out;                   // directory (or a .gguf path with format gguf)
  std::string format = "safetensors";  // safetensors | gguf
};

// One weight of a model in Hugging Face naming.
struct WeightSpec {
  std::string name;             // "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;   // outermost first
  enum class Kind { kMatrix, kNorm, kBias } kind;
};

// Every weight a model with `config` has, in the order transformers lists them.
std::vector<WeightSpec> HfWeightSpecs(const models::llama::LlamaConfig& config);

// Creates the model described by `options`, with the tokenizer TokenizerFilesForArch takes from
// `tokenizers`. Returns the path written (directory or .gguf file).
core::StatusOr<std::string> InitModel(const ModelInitOptions& options,
                                      const TokenizerAssets& tokenizers);

}  // namespace arle::convert
