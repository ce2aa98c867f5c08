// Loading a model from a GGUF file written by llama.cpp's convert_hf_to_gguf.py (qwen3, llama).
#pragma once

#include <memory>
#include <string>

#include "arle/core/status.h"
#include "arle/models/llama/llama_model.h"

namespace arle::models::llama {

// Reads the config from GGUF metadata, maps llama.cpp tensor names to Hugging Face ones, and for
// architecture llama un-permutes the q/k rows convert_hf_to_gguf.py interleaved (into owned
// buffers), so the rotate-half forward runs unchanged.
core::StatusOr<std::unique_ptr<LlamaModel>> LoadGgufModel(const std::string& path,
                                                     const LoadOptions& options);

}  // namespace arle::models::llama
