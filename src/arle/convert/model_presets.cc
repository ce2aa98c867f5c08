// Preset configs. qwen3-0.6b and qwen3-4b are the published Qwen/Qwen3-0.6B and Qwen/Qwen3-4B
// config.json files (Apache-2.0); the tiny presets are small shapes for tests.
#include "arle/convert/model_presets.h"

#include <nlohmann/json.hpp>

namespace arle::convert {
namespace {

constexpr std::string_view kQwen3_0_6B = R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
  "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
  "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
  "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
  "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})";

constexpr std::string_view kQwen3_4B = R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
  "hidden_size": 2560, "initializer_range": 0.02, "intermediate_size": 9728,
  "max_position_embeddings": 40960, "max_window_layers": 36, "model_type": "qwen3",
  "num_attention_heads": 32, "num_hidden_layers": 36, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
  "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})";

// Tiny Qwen3: 2 layers, hidden 64, GQA 4/2, q/k norm, the real Qwen3 vocabulary.
constexpr std::string_view kQwen3Tiny = R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "bos_token_id": 151643,
  "eos_token_id": 151645, "head_dim": 16, "hidden_act": "silu", "hidden_size": 64,
  "initializer_range": 0.02, "intermediate_size": 128, "max_position_embeddings": 4096,
  "model_type": "qwen3", "num_attention_heads": 4, "num_hidden_layers": 2,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
  "tie_word_embeddings": true, "torch_dtype": "float32", "vocab_size": 151936})";

// Tiny Llama: 2 layers, hidden 64, GQA 4/2, the 512-token vocabulary of stories260K.
constexpr std::string_view kLlamaTiny = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 1,
  "eos_token_id": 2, "head_dim": 16, "hidden_act": "silu", "hidden_size": 64,
  "initializer_range": 0.02, "intermediate_size": 172, "max_position_embeddings": 2048,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0,
  "tie_word_embeddings": true, "torch_dtype": "float32", "vocab_size": 512})";

}  // namespace

std::vector<std::string> PresetNames(std::string_view arch) {
  if (arch == "qwen3") return {"tiny", "qwen3-0.6b", "qwen3-4b"};
  if (arch == "llama") return {"tiny"};
  return {};
}

core::StatusOr<std::string> PresetConfigJson(std::string_view arch, std::string_view preset,
                                             std::string_view overrides_json) {
  std::string_view base;
  if (arch == "qwen3" && preset == "tiny") base = kQwen3Tiny;
  if (arch == "qwen3" && preset == "qwen3-0.6b") base = kQwen3_0_6B;
  if (arch == "qwen3" && preset == "qwen3-4b") base = kQwen3_4B;
  if (arch == "llama" && preset == "tiny") base = kLlamaTiny;
  if (base.empty()) {
    std::string names;
    for (const auto& n : PresetNames(arch)) names += (names.empty() ? "" : ", ") + n;
    if (names.empty()) {
      return core::InvalidArgumentError("unknown architecture '" + std::string(arch) + "'",
                                        "use --arch qwen3 or --arch llama");
    }
    return core::InvalidArgumentError(
        "unknown preset '" + std::string(preset) + "' for " + std::string(arch),
        "presets for " + std::string(arch) + ": " + names);
  }
  nlohmann::json config = nlohmann::json::parse(base);
  if (!overrides_json.empty()) {
    nlohmann::json overrides = nlohmann::json::parse(overrides_json, nullptr, false);
    if (overrides.is_discarded() || !overrides.is_object()) {
      return core::InvalidArgumentError("--config must be a JSON object of config.json fields",
                                        R"(for example --config '{"vocab_size": 384}')");
    }
    config.merge_patch(overrides);
  }
  return config.dump(2);
}

}  // namespace arle::convert
