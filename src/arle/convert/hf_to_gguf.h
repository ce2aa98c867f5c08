// Exporting a Hugging Face model directory to one GGUF file (`arle quantize DIR OUT`): config.json,
// the safetensors weights (f32/f16/bf16) and tokenizer.json, written the way
// `arle model init --format gguf` writes its models (llama.cpp's names, keys and tokenizer layout).
#pragma once

#include <string>

#include "arle/core/status.h"

namespace arle::convert {

// Writes `dir` as GGUF to `path` (atomically). Supported: Qwen3 directories whose tokenizer.json
// is byte-level BPE (what the Qwen3 releases and `arle model init --arch qwen3` ship).
// Errors: what reading the config, weights or tokenizer reports; InvalidArgument for a missing or
// misshapen weight, or one that is not f32/f16/bf16; Unimplemented for other architectures and
// tokenizers (llama.cpp's convert_hf_to_gguf.py converts those; arle then reads its GGUF).
core::Status ExportHfDirectoryToGguf(const std::string& dir, const std::string& path);

}  // namespace arle::convert
