// config.json / generation_config.json <-> LlamaConfig. Defaults follow transformers'
// LlamaConfig and Qwen3Config so that a config parsed here means what it means to transformers.
#include "arle/models/llama/llama_spec.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "arle/core/file_util.h"
#include "arle/io/generation_config.h"
#include "arle/io/json_fields.h"

namespace arle::models::llama {
namespace {

using nlohmann::json;
using Fields = io::JsonFields;
using io::JsonTypeName;
using io::ParseJsonObject;

constexpr std::string_view kSupported = "Qwen3ForCausalLM, LlamaForCausalLM";
// Sizes and token ids are bounded so every value fits GGUF's u32 keys and int32 token ids.
constexpr int64_t kMaxValue = std::numeric_limits<int32_t>::max();

core::StatusOr<RopeScaling> ParseRopeScaling(const json& object, const std::string& source,
                                             const std::string& field, int64_t n_ctx_train) {
  RopeScaling rope;
  if (object.is_null()) return rope;
  if (!object.is_object()) {
    return core::InvalidArgumentError(fmt::format("{}: field \"{}\" must be an object or null, "
                                                  "got {}", source, field, JsonTypeName(object)));
  }
  const Fields f(object, source, field + ".");
  ARLE_ASSIGN_OR_RETURN(std::optional<std::string> type, f.OptString("rope_type"));
  if (!type) {
    ARLE_ASSIGN_OR_RETURN(type, f.OptString("type"));
  }
  if (!type) {
    return core::InvalidArgumentError(
        fmt::format("{}: field \"{}\" has neither \"rope_type\" nor \"type\"", source, field));
  }
  const auto positive = [&](std::string_view key, double v) -> core::Status {
    if (!(v > 0) || !std::isfinite(v)) {
      return core::InvalidArgumentError(
          fmt::format("{}: field \"{}.{}\" must be positive, got {}", source, field, key, v));
    }
    return core::OkStatus();
  };
  if (*type == "default") return rope;
  if (*type == "linear") {
    rope.type = RopeScaling::Type::kLinear;
    ARLE_ASSIGN_OR_RETURN(rope.factor, f.Number("factor"));
    ARLE_RETURN_IF_ERROR(positive("factor", rope.factor));
    return rope;
  }
  if (*type == "llama3") {
    // transformers requires all four keys for llama3.
    rope.type = RopeScaling::Type::kLlama3;
    ARLE_ASSIGN_OR_RETURN(rope.factor, f.Number("factor"));
    ARLE_ASSIGN_OR_RETURN(rope.low_freq_factor, f.Number("low_freq_factor"));
    ARLE_ASSIGN_OR_RETURN(rope.high_freq_factor, f.Number("high_freq_factor"));
    ARLE_ASSIGN_OR_RETURN(rope.original_max_position_embeddings,
                          f.Int("original_max_position_embeddings"));
    ARLE_RETURN_IF_ERROR(positive("factor", rope.factor));
    ARLE_RETURN_IF_ERROR(positive("low_freq_factor", rope.low_freq_factor));
    if (!(rope.high_freq_factor > rope.low_freq_factor)) {
      return core::InvalidArgumentError(fmt::format(
          "{}: field \"{}.high_freq_factor\" ({}) must be larger than low_freq_factor ({})",
          source, field, rope.high_freq_factor, rope.low_freq_factor));
    }
    ARLE_RETURN_IF_ERROR(positive("original_max_position_embeddings",
                                  static_cast<double>(rope.original_max_position_embeddings)));
    return rope;
  }
  if (*type == "yarn") {
    rope.type = RopeScaling::Type::kYarn;
    ARLE_ASSIGN_OR_RETURN(rope.factor, f.Number("factor"));
    ARLE_RETURN_IF_ERROR(positive("factor", rope.factor));
    ARLE_ASSIGN_OR_RETURN(rope.original_max_position_embeddings,
                          f.IntOr("original_max_position_embeddings", n_ctx_train));
    ARLE_RETURN_IF_ERROR(positive("original_max_position_embeddings",
                                  static_cast<double>(rope.original_max_position_embeddings)));
    ARLE_ASSIGN_OR_RETURN(rope.beta_fast, f.NumberOr("beta_fast", 32.0));
    ARLE_ASSIGN_OR_RETURN(rope.beta_slow, f.NumberOr("beta_slow", 1.0));
    ARLE_ASSIGN_OR_RETURN(rope.attention_factor, f.NumberOr("attention_factor", 0.0));
    for (std::string_view key : {"mscale", "mscale_all_dim"}) {
      if (f.Has(key)) {
        return core::UnimplementedError(fmt::format(
            "{}: yarn with \"{}.{}\" (DeepSeek's variant) is not supported", source, field, key));
      }
    }
    return rope;
  }
  return core::UnimplementedError(fmt::format(
      "{}: rope scaling type \"{}\" is not supported (supported: default, linear, llama3, yarn)",
      source, *type));
}

core::StatusOr<core::DType> ParseTorchDType(const Fields& f) {
  std::optional<std::string> name;
  for (std::string_view key : {"torch_dtype", "dtype"}) {
    ARLE_ASSIGN_OR_RETURN(name, f.OptString(key));
    if (name) break;
  }
  if (!name) return core::DType::kF32;
  std::string_view n = *name;
  if (n.substr(0, 6) == "torch.") n.remove_prefix(6);
  if (n == "float32") return core::DType::kF32;
  if (n == "float16") return core::DType::kF16;
  if (n == "bfloat16") return core::DType::kBF16;
  return core::UnimplementedError(fmt::format(
      "{}: torch_dtype \"{}\" is not supported (float32, float16, bfloat16)", f.source(), *name));
}

// bos_token_id is -1 (none) or a valid id; eos ids are valid ids.
core::Status CheckTokenIds(const LlamaConfig& c, const std::string& source) {
  const auto bad = [&](int64_t id) {
    return core::InvalidArgumentError(
        fmt::format("{}: token id {} is outside [0, {}]", source, id, kMaxValue));
  };
  if (c.bos_token_id < -1 || c.bos_token_id > kMaxValue) return bad(c.bos_token_id);
  for (int64_t id : c.eos_token_ids) {
    if (id < 0 || id > kMaxValue) return bad(id);
  }
  return core::OkStatus();
}

void AppendUnique(std::vector<int64_t>* ids, const std::vector<int64_t>& more) {
  for (int64_t id : more) {
    if (std::find(ids->begin(), ids->end(), id) == ids->end()) ids->push_back(id);
  }
}

std::string_view TorchDTypeName(core::DType dtype) {
  switch (dtype) {
    case core::DType::kF16: return "float16";
    case core::DType::kBF16: return "bfloat16";
    default: return "float32";
  }
}

}  // namespace

std::string_view ArchitectureName(Architecture arch) {
  switch (arch) {
    case Architecture::kQwen3: return "qwen3";
    case Architecture::kLlama: return "llama";
  }
  return "unknown";
}

std::string_view HfArchitectureName(Architecture arch) {
  switch (arch) {
    case Architecture::kQwen3: return "Qwen3ForCausalLM";
    case Architecture::kLlama: return "LlamaForCausalLM";
  }
  return "unknown";
}

std::optional<Architecture> ArchitectureFromName(std::string_view name) {
  if (name == "qwen3") return Architecture::kQwen3;
  if (name == "llama") return Architecture::kLlama;
  return std::nullopt;
}

core::StatusOr<LlamaConfig> ParseHfConfig(std::string_view json_text, const std::string& source) {
  ARLE_ASSIGN_OR_RETURN(json j, ParseJsonObject(json_text, source));
  const Fields f(j, source);
  LlamaConfig c;

  // Architecture: the first entry of "architectures", else inferred from "model_type".
  std::string hf_arch;
  if (f.Has("architectures")) {
    const json& archs = j.at("architectures");
    if (!archs.is_array() || archs.empty() || !archs[0].is_string()) {
      return f.WrongType("architectures", "a non-empty list of strings");
    }
    hf_arch = archs[0].get<std::string>();
  } else {
    ARLE_ASSIGN_OR_RETURN(std::optional<std::string> model_type, f.OptString("model_type"));
    if (!model_type) return f.Missing("architectures");
    auto arch = ArchitectureFromName(*model_type);
    if (!arch) {
      return core::UnimplementedError(
          fmt::format("{}: model_type \"{}\" is not supported (supported: {})", source,
                      *model_type, kSupported));
    }
    hf_arch = std::string(HfArchitectureName(*arch));
  }
  if (hf_arch == "Qwen3ForCausalLM") {
    c.arch = Architecture::kQwen3;
  } else if (hf_arch == "LlamaForCausalLM") {
    c.arch = Architecture::kLlama;
  } else {
    return core::UnimplementedError(
        fmt::format("{}: architecture \"{}\" is not supported (supported: {})", source, hf_arch,
                    kSupported));
  }
  c.hf_architecture = hf_arch;
  const bool qwen3 = c.arch == Architecture::kQwen3;

  ARLE_ASSIGN_OR_RETURN(c.n_vocab, f.Int("vocab_size"));
  ARLE_ASSIGN_OR_RETURN(c.n_embd, f.Int("hidden_size"));
  ARLE_ASSIGN_OR_RETURN(c.n_layer, f.Int("num_hidden_layers"));
  ARLE_ASSIGN_OR_RETURN(c.n_head, f.Int("num_attention_heads"));
  ARLE_ASSIGN_OR_RETURN(c.n_ff, f.Int("intermediate_size"));
  // Qwen3Config's num_key_value_heads defaults to 32 when the key is absent and to
  // num_attention_heads when it is null; LlamaConfig uses num_attention_heads for both.
  if (qwen3 && !j.contains("num_key_value_heads")) {
    c.n_head_kv = 32;
  } else {
    ARLE_ASSIGN_OR_RETURN(c.n_head_kv, f.IntOr("num_key_value_heads", c.n_head));
  }
  ARLE_ASSIGN_OR_RETURN(c.n_ctx_train, f.IntOr("max_position_embeddings", qwen3 ? 32768 : 2048));
  ARLE_ASSIGN_OR_RETURN(c.norm_eps, f.NumberOr("rms_norm_eps", 1e-6));
  ARLE_ASSIGN_OR_RETURN(c.tie_word_embeddings, f.BoolOr("tie_word_embeddings", false));
  ARLE_ASSIGN_OR_RETURN(c.attention_bias, f.BoolOr("attention_bias", false));
  if (!qwen3) {
    ARLE_ASSIGN_OR_RETURN(c.mlp_bias, f.BoolOr("mlp_bias", false));
  }
  c.qk_norm = qwen3;

  if (c.n_head <= 0) {
    return core::InvalidArgumentError(fmt::format(
        "{}: num_attention_heads must be positive, got {}", source, c.n_head));
  }
  if (f.Has("head_dim")) {
    ARLE_ASSIGN_OR_RETURN(c.head_dim, f.Int("head_dim"));
  } else if (qwen3) {
    c.head_dim = 128;  // Qwen3Config's default, not hidden_size / num_attention_heads
  } else {
    if (c.n_embd % c.n_head != 0) {
      return core::InvalidArgumentError(fmt::format(
          "{}: hidden_size {} is not a multiple of num_attention_heads {} and head_dim is not "
          "given", source, c.n_embd, c.n_head));
    }
    c.head_dim = c.n_embd / c.n_head;
  }

  // transformers 5 moves rope_theta and the scaling into "rope_parameters".
  if (f.Has("rope_parameters")) {
    const json& params = j.at("rope_parameters");
    if (!params.is_object()) return f.WrongType("rope_parameters", "an object");
    const Fields pf(params, source, "rope_parameters.");
    ARLE_ASSIGN_OR_RETURN(double top_theta, f.NumberOr("rope_theta", 10000.0));
    ARLE_ASSIGN_OR_RETURN(c.rope_theta, pf.NumberOr("rope_theta", top_theta));
    ARLE_ASSIGN_OR_RETURN(c.rope_scaling,
                          ParseRopeScaling(params, source, "rope_parameters", c.n_ctx_train));
  } else {
    ARLE_ASSIGN_OR_RETURN(c.rope_theta, f.NumberOr("rope_theta", 10000.0));
    if (j.contains("rope_scaling")) {
      ARLE_ASSIGN_OR_RETURN(c.rope_scaling,
                            ParseRopeScaling(j.at("rope_scaling"), source, "rope_scaling",
                                             c.n_ctx_train));
    }
  }

  ARLE_ASSIGN_OR_RETURN(std::optional<std::string> act, f.OptString("hidden_act"));
  if (act && *act != "silu") {
    return core::UnimplementedError(
        fmt::format("{}: hidden_act \"{}\" is not supported (silu)", source, *act));
  }
  if (qwen3) {
    ARLE_ASSIGN_OR_RETURN(bool sliding, f.BoolOr("use_sliding_window", false));
    if (sliding) {
      return core::UnimplementedError(
          fmt::format("{}: use_sliding_window is not supported", source));
    }
  }
  ARLE_ASSIGN_OR_RETURN(c.bos_token_id, f.IntOr("bos_token_id", -1));
  ARLE_ASSIGN_OR_RETURN(std::vector<int64_t> eos, f.IntList("eos_token_id"));
  AppendUnique(&c.eos_token_ids, eos);
  ARLE_ASSIGN_OR_RETURN(c.torch_dtype, ParseTorchDType(f));

  const std::pair<std::string_view, int64_t> sizes[] = {
      {"vocab_size", c.n_vocab},         {"hidden_size", c.n_embd},
      {"num_hidden_layers", c.n_layer},  {"num_key_value_heads", c.n_head_kv},
      {"head_dim", c.head_dim},          {"intermediate_size", c.n_ff},
      {"max_position_embeddings", c.n_ctx_train},
  };
  for (const auto& [name, value] : sizes) {
    if (value <= 0 || value > kMaxValue) {
      return core::InvalidArgumentError(
          fmt::format("{}: {} must be in [1, {}], got {}", source, name, kMaxValue, value));
    }
  }
  if (c.n_head > kMaxValue || c.rope_scaling.original_max_position_embeddings > kMaxValue) {
    return core::InvalidArgumentError(fmt::format("{}: a size exceeds {}", source, kMaxValue));
  }
  ARLE_RETURN_IF_ERROR(CheckTokenIds(c, source));
  if (c.head_dim % 2 != 0) {
    return core::InvalidArgumentError(
        fmt::format("{}: head_dim {} must be even (RoPE rotates pairs)", source, c.head_dim));
  }
  if (c.n_head % c.n_head_kv != 0) {
    return core::InvalidArgumentError(
        fmt::format("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}",
                    source, c.n_head, c.n_head_kv));
  }
  if (!(c.norm_eps > 0) || !(c.rope_theta > 0)) {
    return core::InvalidArgumentError(
        fmt::format("{}: rms_norm_eps and rope_theta must be positive", source));
  }
  return c;
}

core::Status MergeGenerationConfig(std::string_view json_text, const std::string& source,
                                   LlamaConfig* config) {
  ARLE_ASSIGN_OR_RETURN(io::GenerationConfig gen, io::ParseGenerationConfig(json_text, source));
  if (gen.bos_token_id) config->bos_token_id = *gen.bos_token_id;
  AppendUnique(&config->eos_token_ids, gen.eos_token_ids);
  return CheckTokenIds(*config, source);
}

std::string ToHfConfigJson(const LlamaConfig& c) {
  const bool qwen3 = c.arch == Architecture::kQwen3;
  json j = json::object();  // std::map: sorted keys, as transformers writes them
  j["architectures"] = {c.hf_architecture.empty() ? std::string(HfArchitectureName(c.arch))
                                                  : c.hf_architecture};
  j["model_type"] = ArchitectureName(c.arch);
  j["attention_bias"] = c.attention_bias;
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = c.bos_token_id >= 0 ? json(c.bos_token_id) : json(nullptr);
  j["eos_token_id"] = io::TokenIdsToJson(c.eos_token_ids);
  j["head_dim"] = c.head_dim;
  j["hidden_act"] = "silu";
  j["hidden_size"] = c.n_embd;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = c.n_ff;
  j["max_position_embeddings"] = c.n_ctx_train;
  j["num_attention_heads"] = c.n_head;
  j["num_hidden_layers"] = c.n_layer;
  j["num_key_value_heads"] = c.n_head_kv;
  j["rms_norm_eps"] = c.norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["torch_dtype"] = TorchDTypeName(c.torch_dtype);
  j["use_cache"] = true;
  j["vocab_size"] = c.n_vocab;
  if (qwen3) {
    j["max_window_layers"] = c.n_layer;
    j["sliding_window"] = nullptr;
    j["use_sliding_window"] = false;
  } else {
    j["mlp_bias"] = c.mlp_bias;
    j["pretraining_tp"] = 1;
  }
  const RopeScaling& r = c.rope_scaling;
  switch (r.type) {
    case RopeScaling::Type::kNone:
      j["rope_scaling"] = nullptr;
      break;
    case RopeScaling::Type::kLinear:
      j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", r.factor}};
      break;
    case RopeScaling::Type::kLlama3:
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", r.factor},
                           {"low_freq_factor", r.low_freq_factor},
                           {"high_freq_factor", r.high_freq_factor},
                           {"original_max_position_embeddings",
                            r.original_max_position_embeddings}};
      break;
    case RopeScaling::Type::kYarn: {
      json y = {{"rope_type", "yarn"},
                {"factor", r.factor},
                {"original_max_position_embeddings", r.original_max_position_embeddings},
                {"beta_fast", r.beta_fast},
                {"beta_slow", r.beta_slow}};
      if (r.attention_factor != 0) y["attention_factor"] = r.attention_factor;
      j["rope_scaling"] = std::move(y);
      break;
    }
  }
  return j.dump(2) + "\n";
}

std::string ConfigDifference(const LlamaConfig& a, const LlamaConfig& b) {
  // Compare b with a's values for the fields that do not change the network.
  LlamaConfig b_same = b;
  b_same.n_ctx_train = a.n_ctx_train;
  b_same.bos_token_id = a.bos_token_id;
  b_same.eos_token_ids = a.eos_token_ids;
  b_same.torch_dtype = a.torch_dtype;
  const json ja = json::parse(ToHfConfigJson(a));
  const json jb = json::parse(ToHfConfigJson(b_same));
  for (const auto& [key, value] : ja.items()) {
    const auto other = jb.find(key);
    const std::string theirs = other == jb.end() ? "absent" : other->dump();
    if (other == jb.end() || *other != value) return key + ": " + value.dump() + " vs " + theirs;
  }
  for (const auto& [key, value] : jb.items()) {
    if (!ja.contains(key)) return key + ": absent vs " + value.dump();
  }
  return {};
}

std::string ToGenerationConfigJson(const LlamaConfig& c) {
  return io::GenerationConfigJson(c.bos_token_id, c.eos_token_ids);
}

core::StatusOr<LlamaConfig> LoadHfConfig(const std::string& dir) {
  const std::string config_path = core::JoinPath(dir, "config.json");
  ARLE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(config_path));
  ARLE_ASSIGN_OR_RETURN(LlamaConfig config, ParseHfConfig(text, config_path));
  const std::string gen_path = core::JoinPath(dir, "generation_config.json");
  if (core::FileExists(gen_path)) {
    ARLE_ASSIGN_OR_RETURN(std::string gen, core::ReadFile(gen_path));
    ARLE_RETURN_IF_ERROR(MergeGenerationConfig(gen, gen_path, &config));
  }
  return config;
}

}  // namespace arle::models::llama
