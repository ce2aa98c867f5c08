// The llama family's import of a karpathy/llama2.c checkpoint (legacy version-0 `.bin`) and its
// tokenizer (`tokenizer.bin`) as a Hugging Face LlamaForCausalLM directory: what
// `arle convert llama2c` runs and how the built-in stories260K model is loaded.
#pragma once

#include <string>

#include "arle/core/status.h"

namespace arle::models::llama {

// Converts `model_bin` + `tokenizer_bin` into `out_dir` (created when missing): config.json,
// generation_config.json, model.safetensors (f32; q/k rows permuted from llama2.c's interleaved
// RoPE pairs to rotate_half order), tokenizer.json and tokenizer_config.json. Files are written
// atomically. Errors name the offending file.
core::Status ConvertLlama2c(const std::string& model_bin, const std::string& tokenizer_bin,
                            const std::string& out_dir);

}  // namespace arle::models::llama
