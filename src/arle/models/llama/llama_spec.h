// The llama family's spec: the hyper-parameters of Llama and Qwen3 (LlamaConfig), read from a
// Hugging Face config.json (LlamaForCausalLM, Qwen3ForCausalLM; defaults as transformers'
// LlamaConfig and Qwen3Config) or from GGUF metadata under llama.cpp's keys, and written back as
// config.json, generation_config.json or GGUF keys. docs/formats.md has the key tables.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/dtype.h"
#include "arle/core/status.h"
#include "arle/io/gguf.h"

namespace arle::models::llama {

// The architectures of the family; one forward with switches (LlamaConfig's qk_norm, biases).
enum class Architecture { kQwen3, kLlama };
std::string_view ArchitectureName(Architecture arch);  // "qwen3", "llama" (GGUF, model_type)
// "Qwen3ForCausalLM", "LlamaForCausalLM".
std::string_view HfArchitectureName(Architecture arch);
// Inverse of ArchitectureName; nullopt for names the family does not serve.
std::optional<Architecture> ArchitectureFromName(std::string_view name);

struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3, kYarn };
  Type type = Type::kNone;
  double factor = 1.0;
  // llama3
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 0;
  // yarn
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double attention_factor = 0.0;  // 0 = derive from factor (0.1 * ln(factor) + 1)
  // llama3 as GGUF stores it: llama.cpp keeps no llama3 keys, only the tensor `rope_freqs.weight`
  // ([head_dim / 2] f32), the divisor of each pair's inverse frequency. ConfigFromGguf fills it
  // (type kLlama3, factor = the largest divisor, the other llama3 fields unknown: 0); when it is
  // non-empty it is authoritative. Config.json parsing leaves it empty.
  std::vector<float> freq_factors;
};

// A Llama or Qwen3 model's hyper-parameters (transformers' LlamaConfig / Qwen3Config).
struct LlamaConfig {
  Architecture arch = Architecture::kLlama;
  std::string hf_architecture;  // "Qwen3ForCausalLM"
  int64_t n_vocab = 0;
  int64_t n_embd = 0;           // hidden_size
  int64_t n_layer = 0;          // num_hidden_layers
  int64_t n_head = 0;           // num_attention_heads
  int64_t n_head_kv = 0;        // num_key_value_heads (defaults: see ParseHfConfig)
  int64_t head_dim = 0;         // head_dim (defaults: see ParseHfConfig)
  int64_t n_ff = 0;             // intermediate_size
  int64_t n_ctx_train = 0;      // max_position_embeddings
  double norm_eps = 1e-6;       // rms_norm_eps
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v (and o for llama's attention_bias) projections have bias
  bool mlp_bias = false;
  bool qk_norm = false;         // per-head RMSNorm on q and k (Qwen3)
  int64_t bos_token_id = -1;    // -1: none
  std::vector<int64_t> eos_token_ids;
  core::DType torch_dtype = core::DType::kF32;
};

// ---------------------------------------------------------------- Hugging Face config.json

// Parses config.json text. `source` names the file in errors. Missing required fields, unknown
// architectures and inconsistent sizes (n_head % n_head_kv != 0, non-positive sizes) are errors.
// Required: vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size
// (InvalidArgument naming the field and `source`). The rest defaults as transformers does:
//   LlamaForCausalLM: num_key_value_heads = num_attention_heads, head_dim = hidden_size /
//     num_attention_heads, max_position_embeddings 2048;
//   Qwen3ForCausalLM: num_key_value_heads 32 (null: num_attention_heads), head_dim 128,
//     max_position_embeddings 32768, qk_norm on;
//   both: rms_norm_eps 1e-6, rope_theta 10000, tie_word_embeddings false, biases off, f32.
// rope_scaling (or transformers 5's rope_parameters) may be null or {"rope_type"/"type": "default",
// "linear", "llama3", "yarn"}; other types, hidden_act other than silu and sliding-window attention
// are Unimplemented. Unknown architectures are Unimplemented and list the supported ones.
core::StatusOr<LlamaConfig> ParseHfConfig(std::string_view json_text, const std::string& source);
// Adds eos ids from generation_config.json text (eos_token_id: int or list), keeping order and
// dropping duplicates; also sets bos_token_id when present.
core::Status MergeGenerationConfig(std::string_view json_text, const std::string& source,
                                   LlamaConfig* config);
// Serialises to config.json text in Hugging Face's field names (what transformers would write).
std::string ToHfConfigJson(const LlamaConfig& config);
// The first config.json field (Hugging Face name) in which `a` and `b` differ in what the forward
// computes, as "hidden_size: 256 vs 128"; empty when they describe the same network. Token ids,
// max_position_embeddings and the stored dtype are not compared.
std::string ConfigDifference(const LlamaConfig& a, const LlamaConfig& b);
// generation_config.json text with bos/eos ids.
std::string ToGenerationConfigJson(const LlamaConfig& config);

// Reads DIR/config.json and, when present, DIR/generation_config.json.
core::StatusOr<LlamaConfig> LoadHfConfig(const std::string& dir);

// ---------------------------------------------------------------- GGUF metadata
// Keys under llama.cpp's names (gguf-py's constants.py), written with the types and in the order
// convert_hf_to_gguf.py uses, so arle reads llama.cpp's GGUF files and llama.cpp reads arle's.

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
core::StatusOr<LlamaConfig> ConfigFromGguf(const io::GgufFile& gguf);

// Adds general.architecture, general.name (when `name` is not empty), the {arch}.* hyper-parameter
// keys, general.file_type (from torch_dtype) and general.quantization_version. No tokenizer keys:
// the caller adds those (tokenizer.ggml.bos_token_id / eos_token_id, read back into bos/eos).
// llama3 rope scaling adds the tensor rope_freqs.weight (Llama3RopeFreqFactors, or freq_factors
// when set) instead of keys, as llama.cpp expects.
// General.file_type follows torch_dtype; writers of quantized weights set it again afterwards
// (GgufWriter::Add replaces a key in place).
// REQUIRES: a config as ParseHfConfig / ConfigFromGguf produce it: sizes and token ids in
// [0, 2^31), llama3 scaling with high_freq_factor > low_freq_factor or head_dim / 2 freq_factors.
void AddConfigToGguf(const LlamaConfig& config, io::GgufWriter* writer,
                     std::string_view name = {});

// llama3 rope scaling as convert_hf_to_gguf.py computes rope_freqs.weight (in float32, as torch
// does): for each of the head_dim / 2 frequency pairs, the divisor of its inverse frequency
// (1 for short wavelengths, `factor` for long ones, smoothly interpolated between).
// REQUIRES: rope_scaling.type == kLlama3 with high_freq_factor > low_freq_factor.
std::vector<float> Llama3RopeFreqFactors(const LlamaConfig& config);

}  // namespace arle::models::llama
