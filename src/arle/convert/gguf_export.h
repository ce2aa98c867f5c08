// Writing a model as one GGUF file the way llama.cpp's convert_hf_to_gguf.py does: its tensor
// names, its metadata keys, the Q/K row permutation for the llama architecture, and the tokenizer
// as tokenizer.ggml.* keys.
#pragma once

#include <string>
#include <vector>

#include "arle/convert/tokenizer_files.h"
#include "arle/core/status.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/io/safetensors.h"

namespace arle::convert {

// Maps a Hugging Face tensor name to llama.cpp's ("model.layers.3.mlp.up_proj.weight" ->
// "blk.3.ffn_up.weight"). InvalidArgument for names outside Qwen3/Llama.
core::StatusOr<std::string> GgufTensorName(const std::string& hf_name);

// Writes `tensors` (HF names, contiguous) with `config` and `tokenizer` into `path` atomically.
core::Status WriteModelGguf(const std::string& path, const models::llama::LlamaConfig& config,
                            const std::vector<io::NamedTensor>& tensors,
                            const TokenizerFiles& tokenizer);

}  // namespace arle::convert
