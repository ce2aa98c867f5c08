// ModelConfig <-> GGUF metadata under llama.cpp's keys (gguf-py's constants.py), written with the
// types and in the order convert_hf_to_gguf.py uses, so arle reads llama.cpp's GGUF files and
// llama.cpp reads arle's. docs/formats.md has the key table.
#pragma once

#include <string_view>
#include <vector>

#include "arle/core/status.h"
#include "arle/io/gguf.h"
#include "arle/io/hf_config.h"

namespace arle::io {

// llama.cpp's tensor for llama3-style rope scaling (MODEL_TENSOR.ROPE_FREQS).
inline constexpr std::string_view kGgufRopeFreqsTensor = "rope_freqs.weight";

// Reads the hyper-parameters of a GGUF file whose general.architecture is "qwen3" or "llama"
// (Unimplemented naming others). Required keys ({arch}.embedding_length, .block_count,
// .feed_forward_length, .context_length, .attention.head_count,
// .attention.layer_norm_rms_epsilon) missing: InvalidArgument naming the key and the file.
// Derived as llama.cpp does: head_count_kv defaults to head_count, key_length to
// embedding_length / head_count, rope.freq_base to 10000, the vocabulary size to
// {arch}.vocab_size, else the length of tokenizer.ggml.tokens, else token_embd.weight's rows.
// Tied embeddings = no output.weight tensor; attention_bias = blk.0.attn_q.bias exists;
// mlp_bias = blk.0.ffn_up.bias exists; qk_norm = blk.0.attn_q_norm.weight exists (for a file
// without tensors: arch == qwen3). eos_token_ids = tokenizer.ggml.eos,
// .eot and .eom token ids (when present, in that order). torch_dtype from general.file_type
// (0 f32, 1 f16, 32 bf16; quantized and absent file types give f32). llama3 rope scaling comes
// from rope_freqs.weight into RopeScaling::freq_factors (with factor/low/high/original filled in
// when the factors match Llama 3's published parameters low 1, high 4, original 8192).
core::StatusOr<ModelConfig> ModelConfigFromGguf(const GgufFile& gguf);

// Adds general.architecture, general.name (when `name` is not empty), the {arch}.* hyper-parameter
// keys, general.file_type (from torch_dtype) and general.quantization_version. No tokenizer keys:
// the caller adds those (tokenizer.ggml.bos_token_id / eos_token_id, read back into bos/eos). llama3 rope scaling adds the tensor rope_freqs.weight
// (Llama3RopeFreqFactors, or freq_factors when set) instead of keys, as llama.cpp expects.
// General.file_type follows torch_dtype; writers of quantized weights set it again afterwards
// (GgufWriter::Add replaces a key in place).
// REQUIRES: a config as ParseHfConfig / ModelConfigFromGguf produce it: sizes and token ids in
// [0, 2^31), llama3 scaling with high_freq_factor > low_freq_factor or head_dim / 2 freq_factors.
void AddModelConfigToGguf(const ModelConfig& config, GgufWriter* writer,
                          std::string_view name = {});

// llama3 rope scaling as convert_hf_to_gguf.py computes rope_freqs.weight (in float32, as torch
// does): for each of the head_dim / 2 frequency pairs, the divisor of its inverse frequency
// (1 for short wavelengths, `factor` for long ones, smoothly interpolated between).
// REQUIRES: rope_scaling.type == kLlama3 with high_freq_factor > low_freq_factor.
std::vector<float> Llama3RopeFreqFactors(const ModelConfig& config);

}  // namespace arle::io
