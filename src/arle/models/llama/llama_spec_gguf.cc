// LlamaConfig <-> GGUF hyper-parameter keys. Key names and value types are gguf-py's (constants.py
// Keys.LLM, Keys.Attention, Keys.Rope, Keys.Tokenizer; gguf_writer.py's add_* types).
#include "arle/models/llama/llama_spec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>

#include <fmt/format.h>

namespace arle::models::llama {
namespace {

using io::GgufFile;
using io::GgufTensorInfo;
using io::GgufValue;
using io::GgufWriter;

// llama_ftype values (gguf-py LlamaFileType).
constexpr int64_t kFileTypeAllF32 = 0;
constexpr int64_t kFileTypeMostlyF16 = 1;
constexpr int64_t kFileTypeMostlyBF16 = 32;
constexpr uint32_t kGgmlQuantVersion = 2;  // GGML_QNT_VERSION
// Sizes and token ids are bounded as ParseHfConfig bounds them (AddConfigToGguf's REQUIRES).
constexpr int64_t kMaxValue = std::numeric_limits<int32_t>::max();

std::string Key(Architecture arch, std::string_view suffix) {
  return fmt::format("{}.{}", ArchitectureName(arch), suffix);
}

// Int/float lookups that distinguish "absent" (fallback) from "present with the wrong type".
core::StatusOr<int64_t> IntOr(const GgufFile& g, const std::string& key, int64_t fallback) {
  if (g.Find(key) == nullptr) return fallback;
  return g.GetInt(key);
}

core::StatusOr<double> FloatOr(const GgufFile& g, const std::string& key, double fallback) {
  if (g.Find(key) == nullptr) return fallback;
  return g.GetFloat(key);
}

core::StatusOr<int64_t> RequiredInt(const GgufFile& g, const std::string& key) {
  if (g.Find(key) == nullptr) {
    return core::InvalidArgumentError(
        fmt::format("{}: missing required metadata key '{}'", g.path(), key));
  }
  return g.GetInt(key);
}

core::StatusOr<double> RequiredFloat(const GgufFile& g, const std::string& key) {
  if (g.Find(key) == nullptr) {
    return core::InvalidArgumentError(
        fmt::format("{}: missing required metadata key '{}'", g.path(), key));
  }
  return g.GetFloat(key);
}

// True when `factors` are what Llama3RopeFreqFactors gives for `config` (to float rounding).
bool FactorsMatch(const LlamaConfig& config, const std::vector<float>& factors) {
  const std::vector<float> expected = Llama3RopeFreqFactors(config);
  if (expected.size() != factors.size()) return false;
  for (size_t i = 0; i < factors.size(); ++i) {
    if (std::fabs(expected[i] - factors[i]) > 1e-6f * std::max(1.0f, std::fabs(factors[i]))) {
      return false;
    }
  }
  return true;
}

core::Status ReadRopeFreqs(const GgufFile& g, LlamaConfig* c) {
  const GgufTensorInfo* info = g.FindTensor(std::string(kGgufRopeFreqsTensor));
  if (info == nullptr) return core::OkStatus();
  const int64_t n_pairs = c->head_dim / 2;
  if (info->dtype != core::DType::kF32 || info->shape.size() != 1 || info->shape[0] != n_pairs) {
    return core::InvalidArgumentError(fmt::format(
        "{}: {} must be f32[{}] (head_dim / 2), got {} with {} dims", g.path(),
        kGgufRopeFreqsTensor, n_pairs, io::GgmlTypeName(info->ggml_type), info->shape.size()));
  }
  if (c->rope_scaling.type != RopeScaling::Type::kNone) {
    return core::UnimplementedError(fmt::format(
        "{}: {} together with rope scaling type keys is not supported", g.path(),
        kGgufRopeFreqsTensor));
  }
  ARLE_ASSIGN_OR_RETURN(core::Tensor t, g.GetTensor(std::string(kGgufRopeFreqsTensor)));
  std::vector<float> factors(static_cast<size_t>(n_pairs));
  std::memcpy(factors.data(), t.data(), factors.size() * sizeof(float));  // may be unaligned
  RopeScaling& r = c->rope_scaling;
  r.type = RopeScaling::Type::kLlama3;
  r.freq_factors = factors;
  r.factor = factors.empty() ? 1.0 : *std::max_element(factors.begin(), factors.end());
  // Recover Llama 3's published parameters when they reproduce the tensor exactly.
  LlamaConfig probe = *c;
  probe.rope_scaling.low_freq_factor = 1.0;
  probe.rope_scaling.high_freq_factor = 4.0;
  probe.rope_scaling.original_max_position_embeddings = 8192;
  if (FactorsMatch(probe, factors)) {
    r.low_freq_factor = 1.0;
    r.high_freq_factor = 4.0;
    r.original_max_position_embeddings = 8192;
  } else {
    r.low_freq_factor = 0;
    r.high_freq_factor = 0;
    r.original_max_position_embeddings = 0;
  }
  return core::OkStatus();
}

core::Status ReadRopeScalingKeys(const GgufFile& g, LlamaConfig* c) {
  const Architecture a = c->arch;
  RopeScaling& r = c->rope_scaling;
  std::string type = "none";
  if (g.Find(Key(a, "rope.scaling.type")) != nullptr) {
    ARLE_ASSIGN_OR_RETURN(type, g.GetString(Key(a, "rope.scaling.type")));
  } else if (g.Find(Key(a, "rope.scale_linear")) != nullptr) {
    // The key older converters wrote for linear scaling.
    ARLE_ASSIGN_OR_RETURN(double scale, g.GetFloat(Key(a, "rope.scale_linear")));
    if (scale != 1.0) {
      r.type = RopeScaling::Type::kLinear;
      r.factor = scale;
    }
    return core::OkStatus();
  }
  if (type == "none") return core::OkStatus();
  if (type == "linear") {
    r.type = RopeScaling::Type::kLinear;
    ARLE_ASSIGN_OR_RETURN(r.factor, RequiredFloat(g, Key(a, "rope.scaling.factor")));
    return core::OkStatus();
  }
  if (type == "yarn") {
    r.type = RopeScaling::Type::kYarn;
    ARLE_ASSIGN_OR_RETURN(r.factor, RequiredFloat(g, Key(a, "rope.scaling.factor")));
    ARLE_ASSIGN_OR_RETURN(r.original_max_position_embeddings,
                          IntOr(g, Key(a, "rope.scaling.original_context_length"),
                                c->n_ctx_train));
    if (r.original_max_position_embeddings <= 0 || r.original_max_position_embeddings > kMaxValue) {
      return core::InvalidArgumentError(fmt::format(
          "{}: rope.scaling.original_context_length {} is out of range", g.path(),
          r.original_max_position_embeddings));
    }
    ARLE_ASSIGN_OR_RETURN(r.beta_fast, FloatOr(g, Key(a, "rope.scaling.yarn_beta_fast"), 32.0));
    ARLE_ASSIGN_OR_RETURN(r.beta_slow, FloatOr(g, Key(a, "rope.scaling.yarn_beta_slow"), 1.0));
    ARLE_ASSIGN_OR_RETURN(double attn, FloatOr(g, Key(a, "rope.scaling.attn_factor"), 0.0));
    ARLE_ASSIGN_OR_RETURN(r.attention_factor,
                          FloatOr(g, Key(a, "rope.scaling.yarn_attn_factor"), attn));
    return core::OkStatus();
  }
  return core::UnimplementedError(fmt::format(
      "{}: rope scaling type \"{}\" is not supported (none, linear, yarn, and llama3 via {})",
      g.path(), type, kGgufRopeFreqsTensor));
}

}  // namespace

std::vector<float> Llama3RopeFreqFactors(const LlamaConfig& config) {
  const RopeScaling& r = config.rope_scaling;
  ARLE_CHECK(r.high_freq_factor > r.low_freq_factor)
      << "llama3 rope scaling needs high_freq_factor > low_freq_factor";
  // Float32 throughout, like the torch code in convert_hf_to_gguf.py (LlamaModel.
  // generate_extra_tensors): freqs = 1 / base ** (arange(0, dim, 2) / dim).
  const auto dim = static_cast<float>(config.head_dim);
  const auto base = static_cast<float>(config.rope_theta);
  const auto factor = static_cast<float>(r.factor);
  const auto low = static_cast<float>(r.low_freq_factor);
  const auto high = static_cast<float>(r.high_freq_factor);
  const auto old_ctx = static_cast<float>(r.original_max_position_embeddings);
  const auto low_freq_wavelen = static_cast<float>(r.original_max_position_embeddings /
                                                   r.low_freq_factor);
  const auto high_freq_wavelen = static_cast<float>(r.original_max_position_embeddings /
                                                    r.high_freq_factor);
  const auto two_pi = static_cast<float>(2 * std::numbers::pi);
  std::vector<float> factors;
  for (int64_t i = 0; i < config.head_dim; i += 2) {
    const float freq = 1.0f / std::pow(base, static_cast<float>(i) / dim);
    const float wavelen = two_pi / freq;
    if (wavelen < high_freq_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_freq_wavelen) {
      factors.push_back(factor);
    } else {
      const float smooth = (old_ctx / wavelen - low) / static_cast<float>(high - low);
      factors.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return factors;
}

core::StatusOr<LlamaConfig> ConfigFromGguf(const GgufFile& g) {
  ARLE_ASSIGN_OR_RETURN(std::string arch_name, g.GetString("general.architecture"));
  auto arch = ArchitectureFromName(arch_name);
  if (!arch) {
    return core::UnimplementedError(fmt::format(
        "{}: GGUF architecture \"{}\" is not supported (supported: qwen3, llama)", g.path(),
        arch_name));
  }
  LlamaConfig c;
  c.arch = *arch;
  c.hf_architecture = std::string(HfArchitectureName(*arch));
  const Architecture a = *arch;
  ARLE_ASSIGN_OR_RETURN(c.n_embd, RequiredInt(g, Key(a, "embedding_length")));
  ARLE_ASSIGN_OR_RETURN(c.n_layer, RequiredInt(g, Key(a, "block_count")));
  ARLE_ASSIGN_OR_RETURN(c.n_ff, RequiredInt(g, Key(a, "feed_forward_length")));
  ARLE_ASSIGN_OR_RETURN(c.n_ctx_train, RequiredInt(g, Key(a, "context_length")));
  ARLE_ASSIGN_OR_RETURN(c.n_head, RequiredInt(g, Key(a, "attention.head_count")));
  ARLE_ASSIGN_OR_RETURN(c.norm_eps, RequiredFloat(g, Key(a, "attention.layer_norm_rms_epsilon")));
  ARLE_ASSIGN_OR_RETURN(c.n_head_kv, IntOr(g, Key(a, "attention.head_count_kv"), c.n_head));
  if (c.n_head <= 0 || c.n_embd <= 0) {
    return core::InvalidArgumentError(fmt::format(
        "{}: embedding_length and attention.head_count must be positive", g.path()));
  }
  ARLE_ASSIGN_OR_RETURN(c.head_dim, IntOr(g, Key(a, "attention.key_length"), c.n_embd / c.n_head));
  ARLE_ASSIGN_OR_RETURN(int64_t value_length,
                        IntOr(g, Key(a, "attention.value_length"), c.head_dim));
  if (value_length != c.head_dim) {
    return core::UnimplementedError(fmt::format(
        "{}: attention.value_length {} differs from key_length {}", g.path(), value_length,
        c.head_dim));
  }
  ARLE_ASSIGN_OR_RETURN(int64_t n_rot, IntOr(g, Key(a, "rope.dimension_count"), c.head_dim));
  if (n_rot != c.head_dim) {
    return core::UnimplementedError(fmt::format(
        "{}: partial rotary embeddings (rope.dimension_count {} < key_length {})", g.path(),
        n_rot, c.head_dim));
  }
  ARLE_ASSIGN_OR_RETURN(c.rope_theta, FloatOr(g, Key(a, "rope.freq_base"), 10000.0));

  if (g.Find(Key(a, "vocab_size")) != nullptr) {
    ARLE_ASSIGN_OR_RETURN(c.n_vocab, g.GetInt(Key(a, "vocab_size")));
  } else if (const GgufValue* tokens = g.Find("tokenizer.ggml.tokens");
             tokens != nullptr && tokens->AsArray() != nullptr) {
    c.n_vocab = static_cast<int64_t>(tokens->AsArray()->values.size());
  } else if (const GgufTensorInfo* embd = g.FindTensor("token_embd.weight");
             embd != nullptr && embd->shape.size() == 2) {
    c.n_vocab = embd->shape[0];
  } else {
    return core::InvalidArgumentError(fmt::format(
        "{}: cannot tell the vocabulary size: no {}, tokenizer.ggml.tokens or token_embd.weight",
        g.path(), Key(a, "vocab_size")));
  }

  const std::pair<std::string_view, int64_t> sizes[] = {
      {"vocab size", c.n_vocab},           {"block_count", c.n_layer},
      {"feed_forward_length", c.n_ff},     {"context_length", c.n_ctx_train},
      {"attention.head_count_kv", c.n_head_kv}, {"attention.key_length", c.head_dim},
  };
  for (const auto& [name, value] : sizes) {
    if (value <= 0 || value > kMaxValue) {
      return core::InvalidArgumentError(
          fmt::format("{}: {} must be in [1, {}], got {}", g.path(), name, kMaxValue, value));
    }
  }
  if (c.n_head > kMaxValue || c.n_embd > kMaxValue) {
    return core::InvalidArgumentError(fmt::format("{}: a size exceeds {}", g.path(), kMaxValue));
  }
  if (c.head_dim % 2 != 0) {
    return core::InvalidArgumentError(
        fmt::format("{}: attention.key_length {} must be even (RoPE rotates pairs)", g.path(),
                    c.head_dim));
  }
  if (c.n_head % c.n_head_kv != 0) {
    return core::InvalidArgumentError(fmt::format(
        "{}: attention.head_count {} is not a multiple of attention.head_count_kv {}", g.path(),
        c.n_head, c.n_head_kv));
  }

  ARLE_RETURN_IF_ERROR(ReadRopeScalingKeys(g, &c));
  ARLE_RETURN_IF_ERROR(ReadRopeFreqs(g, &c));

  c.tie_word_embeddings = g.FindTensor("output.weight") == nullptr;
  c.attention_bias = g.FindTensor("blk.0.attn_q.bias") != nullptr;
  c.mlp_bias = g.FindTensor("blk.0.ffn_up.bias") != nullptr;
  // Files with weights say it by the tensor; weightless files (hyper-parameters only) by the arch.
  c.qk_norm = g.tensors().empty() ? a == Architecture::kQwen3
                                  : g.FindTensor("blk.0.attn_q_norm.weight") != nullptr;

  ARLE_ASSIGN_OR_RETURN(c.bos_token_id, IntOr(g, "tokenizer.ggml.bos_token_id", -1));
  if (c.bos_token_id < -1 || c.bos_token_id > kMaxValue) {
    return core::InvalidArgumentError(
        fmt::format("{}: tokenizer.ggml.bos_token_id {} is out of range", g.path(), c.bos_token_id));
  }
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.eom_token_id"}) {
    if (g.Find(key) == nullptr) continue;
    ARLE_ASSIGN_OR_RETURN(int64_t id, g.GetInt(key));
    if (id < 0 || id > kMaxValue) {
      return core::InvalidArgumentError(fmt::format("{}: {} {} is out of range", g.path(), key, id));
    }
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end()) {
      c.eos_token_ids.push_back(id);
    }
  }
  ARLE_ASSIGN_OR_RETURN(int64_t file_type, IntOr(g, "general.file_type", kFileTypeAllF32));
  c.torch_dtype = file_type == kFileTypeMostlyF16    ? core::DType::kF16
                  : file_type == kFileTypeMostlyBF16 ? core::DType::kBF16
                                                     : core::DType::kF32;
  return c;
}

void AddConfigToGguf(const LlamaConfig& c, GgufWriter* w, std::string_view name) {
  const Architecture a = c.arch;
  const auto u32 = [](std::string_view what, int64_t v) {
    ARLE_CHECK(v >= 0 && v <= std::numeric_limits<uint32_t>::max())
        << what << " = " << v << " does not fit GGUF's u32 key";
    return static_cast<uint32_t>(v);
  };
  const auto add_u32 = [&](std::string_view suffix, int64_t v) {
    const std::string key = Key(a, suffix);
    w->AddU32(key, u32(key, v));
  };

  w->AddString("general.architecture", std::string(ArchitectureName(a)));
  if (!name.empty()) w->AddString("general.name", std::string(name));
  // convert_hf_to_gguf.py's order (TextModel.set_gguf_parameters, then LlamaModel's additions).
  add_u32("block_count", c.n_layer);
  add_u32("context_length", c.n_ctx_train);
  add_u32("embedding_length", c.n_embd);
  add_u32("feed_forward_length", c.n_ff);
  add_u32("attention.head_count", c.n_head);
  add_u32("attention.head_count_kv", c.n_head_kv);
  w->AddF32(Key(a, "rope.freq_base"), static_cast<float>(c.rope_theta));
  w->AddF32(Key(a, "attention.layer_norm_rms_epsilon"), static_cast<float>(c.norm_eps));
  add_u32("attention.key_length", c.head_dim);
  add_u32("attention.value_length", c.head_dim);
  const int64_t file_type = c.torch_dtype == core::DType::kF16    ? kFileTypeMostlyF16
                            : c.torch_dtype == core::DType::kBF16 ? kFileTypeMostlyBF16
                                                                  : kFileTypeAllF32;
  w->AddU32("general.file_type", static_cast<uint32_t>(file_type));
  add_u32("vocab_size", c.n_vocab);
  if (a == Architecture::kLlama) add_u32("rope.dimension_count", c.head_dim);

  const RopeScaling& r = c.rope_scaling;
  switch (r.type) {
    case RopeScaling::Type::kNone:
      break;
    case RopeScaling::Type::kLinear:
      w->AddString(Key(a, "rope.scaling.type"), "linear");
      w->AddF32(Key(a, "rope.scaling.factor"), static_cast<float>(r.factor));
      break;
    case RopeScaling::Type::kYarn:
      w->AddString(Key(a, "rope.scaling.type"), "yarn");
      w->AddF32(Key(a, "rope.scaling.factor"), static_cast<float>(r.factor));
      add_u32("rope.scaling.original_context_length", r.original_max_position_embeddings);
      if (r.attention_factor != 0) {
        w->AddF32(Key(a, "rope.scaling.yarn_attn_factor"), static_cast<float>(r.attention_factor));
      }
      w->AddF32(Key(a, "rope.scaling.yarn_beta_fast"), static_cast<float>(r.beta_fast));
      w->AddF32(Key(a, "rope.scaling.yarn_beta_slow"), static_cast<float>(r.beta_slow));
      break;
    case RopeScaling::Type::kLlama3: {
      const std::vector<float> factors =
          r.freq_factors.empty() ? Llama3RopeFreqFactors(c) : r.freq_factors;
      ARLE_CHECK_EQ(static_cast<int64_t>(factors.size()), c.head_dim / 2)
          << "llama3 rope freq_factors must have head_dim / 2 entries";
      const int64_t shape[] = {static_cast<int64_t>(factors.size())};
      w->AddTensorCopy(std::string(kGgufRopeFreqsTensor),
                       core::Tensor(const_cast<float*>(factors.data()), core::DType::kF32, shape));
      break;
    }
  }

  w->AddU32("general.quantization_version", kGgmlQuantVersion);
}

}  // namespace arle::models::llama
