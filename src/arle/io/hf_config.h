// Model hyper-parameters: ModelConfig, parsed from a Hugging Face config.json (Qwen3ForCausalLM,
// LlamaForCausalLM) or from GGUF metadata, plus generation_config.json eos ids.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/dtype.h"
#include "arle/core/status.h"

namespace arle::io {

enum class Architecture { kQwen3, kLlama };
std::string_view ArchitectureName(Architecture arch);  // "qwen3", "llama"
// "Qwen3ForCausalLM", "LlamaForCausalLM".
std::string_view HfArchitectureName(Architecture arch);
// Inverse of ArchitectureName; nullopt for names arle does not support.
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
  // ([head_dim / 2] f32), the divisor of each pair's inverse frequency. ModelConfigFromGguf fills
  // it (type kLlama3, factor = the largest divisor, the other llama3 fields unknown: 0); when it is
  // non-empty it is authoritative. Config.json parsing leaves it empty.
  std::vector<float> freq_factors;
};

struct ModelConfig {
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
core::StatusOr<ModelConfig> ParseHfConfig(std::string_view json_text, const std::string& source);
// Adds eos ids from generation_config.json text (eos_token_id: int or list), keeping order and
// dropping duplicates; also sets bos_token_id when present.
core::Status MergeGenerationConfig(std::string_view json_text, const std::string& source,
                                   ModelConfig* config);
// Serialises to config.json text in Hugging Face's field names (what transformers would write).
std::string ToHfConfigJson(const ModelConfig& config);
// generation_config.json text with bos/eos ids.
std::string ToGenerationConfigJson(const ModelConfig& config);

// Reads DIR/config.json and, when present, DIR/generation_config.json.
core::StatusOr<ModelConfig> LoadHfModelConfig(const std::string& dir);

// Resolves "ORG/NAME" (or a bare legacy "NAME") in the Hugging Face cache:
// CACHE/models--ORG--NAME/snapshots/<rev> where rev comes from refs/main when present, else the
// only/newest snapshot. CACHE is tried in huggingface_hub's order: $HF_HUB_CACHE,
// $HUGGINGFACE_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub
// (every one that is set, first hit wins). InvalidArgument for ids that are not ORG/NAME; NotFound
// lists the places searched, or says refs/main names a missing snapshot.
core::StatusOr<std::string> ResolveHfCacheModel(std::string_view repo_id);

}  // namespace arle::io
