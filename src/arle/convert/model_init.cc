// Random weights: matrices ~ N(0, initializer_range); norm weights ~ 1 + N(0, 0.1) so tests see
// non-unit norms (these models are for tests and benchmarks, not training from scratch); biases
// ~ N(0, initializer_range). Each tensor has its own stream seeded from (seed, name), so the
// values do not depend on tensor order or on the output format.
#include "arle/convert/model_init.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string_view>

#include "arle/convert/gguf_export.h"
#include "arle/convert/model_presets.h"
#include "arle/convert/tokenizer_files.h"
#include "arle/core/buffer.h"
#include "arle/core/file_util.h"
#include "arle/core/half.h"
#include "arle/core/logging.h"
#include "arle/core/random.h"
#include "arle/io/safetensors.h"

namespace arle::convert {
namespace {

uint64_t HashName(uint64_t seed, std::string_view name) {
  uint64_t h = 1469598103934665603ull ^ seed;  // FNV-1a
  for (char c : name) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

core::Buffer RandomTensor(const WeightSpec& spec, core::DType dtype, double init_range,
                          uint64_t seed) {
  int64_t n = 1;
  for (int64_t d : spec.shape) n *= d;
  core::Buffer buf(static_cast<size_t>(*core::DTypeBytes(dtype, n)));
  core::Rng rng(HashName(seed, spec.name));
  for (int64_t i = 0; i < n; ++i) {
    double v = rng.Normal();
    v = spec.kind == WeightSpec::Kind::kNorm ? 1.0 + 0.1 * v : init_range * v;
    const float f = static_cast<float>(v);
    switch (dtype) {
      case core::DType::kF32: buf.as<float>()[i] = f; break;
      case core::DType::kBF16: buf.as<uint16_t>()[i] = core::F32ToBF16(f); break;
      case core::DType::kF16: buf.as<uint16_t>()[i] = core::F32ToF16(f); break;
      default: ARLE_CHECK(false) << "unsupported init dtype";
    }
  }
  return buf;
}

}  // namespace

std::vector<WeightSpec> HfWeightSpecs(const models::llama::LlamaConfig& c) {
  using K = WeightSpec::Kind;
  std::vector<WeightSpec> specs;
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  specs.push_back({"model.embed_tokens.weight", {c.n_vocab, c.n_embd}, K::kMatrix});
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    specs.push_back({p + "input_layernorm.weight", {c.n_embd}, K::kNorm});
    specs.push_back({p + "self_attn.q_proj.weight", {q_dim, c.n_embd}, K::kMatrix});
    if (c.attention_bias) specs.push_back({p + "self_attn.q_proj.bias", {q_dim}, K::kBias});
    specs.push_back({p + "self_attn.k_proj.weight", {kv_dim, c.n_embd}, K::kMatrix});
    if (c.attention_bias) specs.push_back({p + "self_attn.k_proj.bias", {kv_dim}, K::kBias});
    specs.push_back({p + "self_attn.v_proj.weight", {kv_dim, c.n_embd}, K::kMatrix});
    if (c.attention_bias) specs.push_back({p + "self_attn.v_proj.bias", {kv_dim}, K::kBias});
    specs.push_back({p + "self_attn.o_proj.weight", {c.n_embd, q_dim}, K::kMatrix});
    if (c.attention_bias) specs.push_back({p + "self_attn.o_proj.bias", {c.n_embd}, K::kBias});
    if (c.qk_norm) {
      specs.push_back({p + "self_attn.q_norm.weight", {c.head_dim}, K::kNorm});
      specs.push_back({p + "self_attn.k_norm.weight", {c.head_dim}, K::kNorm});
    }
    specs.push_back({p + "post_attention_layernorm.weight", {c.n_embd}, K::kNorm});
    specs.push_back({p + "mlp.gate_proj.weight", {c.n_ff, c.n_embd}, K::kMatrix});
    if (c.mlp_bias) specs.push_back({p + "mlp.gate_proj.bias", {c.n_ff}, K::kBias});
    specs.push_back({p + "mlp.up_proj.weight", {c.n_ff, c.n_embd}, K::kMatrix});
    if (c.mlp_bias) specs.push_back({p + "mlp.up_proj.bias", {c.n_ff}, K::kBias});
    specs.push_back({p + "mlp.down_proj.weight", {c.n_embd, c.n_ff}, K::kMatrix});
    if (c.mlp_bias) specs.push_back({p + "mlp.down_proj.bias", {c.n_embd}, K::kBias});
  }
  specs.push_back({"model.norm.weight", {c.n_embd}, K::kNorm});
  if (!c.tie_word_embeddings) specs.push_back({"lm_head.weight", {c.n_vocab, c.n_embd}, K::kMatrix});
  return specs;
}

core::StatusOr<std::string> InitModel(const ModelInitOptions& options,
                                      const TokenizerAssets& tokenizers) {
  if (options.out.empty()) return core::InvalidArgumentError("--out is required");
  if (options.format != "safetensors" && options.format != "gguf") {
    return core::InvalidArgumentError("unknown --format '" + options.format + "'",
                                      "use safetensors or gguf");
  }
  ARLE_ASSIGN_OR_RETURN(std::string config_text,
                        PresetConfigJson(options.arch, options.preset, options.config_overrides));
  nlohmann::json config_json = nlohmann::json::parse(config_text);
  core::DType dtype = core::DType::kF32;
  const std::string dtype_name =
      !options.dtype.empty() ? options.dtype : config_json.value("torch_dtype", "float32");
  auto parsed_dtype = core::DTypeFromName(dtype_name);
  if (!parsed_dtype || (*parsed_dtype != core::DType::kF32 && *parsed_dtype != core::DType::kBF16 &&
                        *parsed_dtype != core::DType::kF16)) {
    return core::InvalidArgumentError("unsupported --dtype '" + dtype_name + "'",
                                      "use f32, bf16 or f16");
  }
  dtype = *parsed_dtype;
  config_json["torch_dtype"] = dtype == core::DType::kF32    ? "float32"
                               : dtype == core::DType::kBF16 ? "bfloat16"
                                                             : "float16";
  config_text = config_json.dump(2) + "\n";
  ARLE_ASSIGN_OR_RETURN(models::llama::LlamaConfig config,
                        models::llama::ParseHfConfig(config_text, "--config"));
  const double init_range = config_json.value("initializer_range", 0.02);

  ARLE_ASSIGN_OR_RETURN(TokenizerFiles tokenizer, TokenizerFilesForArch(options.arch, tokenizers));
  if (tokenizer.vocab_size > config.n_vocab) {
    ARLE_LOG_WARN("vocab_size {} is smaller than the tokenizer's {} tokens: text prompts may "
                  "produce ids the model cannot embed",
                  config.n_vocab, tokenizer.vocab_size);
  }

  std::vector<WeightSpec> specs = HfWeightSpecs(config);
  std::vector<core::Buffer> buffers;
  std::vector<io::NamedTensor> tensors;
  buffers.reserve(specs.size());
  for (const WeightSpec& spec : specs) {
    buffers.push_back(RandomTensor(spec, dtype, init_range, options.seed));
    tensors.push_back({spec.name, core::Tensor(buffers.back().data(), dtype, spec.shape)});
  }

  if (options.format == "gguf") {
    std::string path = options.out;
    if (path.size() < 5 || path.substr(path.size() - 5) != ".gguf") {
      ARLE_RETURN_IF_ERROR(core::MakeDirs(path));
      path = core::JoinPath(path, "model.gguf");
    } else if (auto parent = std::filesystem::path(path).parent_path(); !parent.empty()) {
      ARLE_RETURN_IF_ERROR(core::MakeDirs(parent.string()));
    }
    ARLE_RETURN_IF_ERROR(WriteModelGguf(path, config, tensors, tokenizer));
    return path;
  }

  const std::string& dir = options.out;
  ARLE_RETURN_IF_ERROR(core::MakeDirs(dir));
  ARLE_RETURN_IF_ERROR(core::WriteFileAtomic(core::JoinPath(dir, "config.json"), config_text));
  ARLE_RETURN_IF_ERROR(core::WriteFileAtomic(core::JoinPath(dir, "generation_config.json"),
                                             models::llama::ToGenerationConfigJson(config)));
  ARLE_RETURN_IF_ERROR(io::WriteSafetensors(core::JoinPath(dir, "model.safetensors"), tensors,
                                            {{"format", "pt"}}));
  ARLE_RETURN_IF_ERROR(core::WriteFileAtomic(core::JoinPath(dir, "tokenizer.json"),
                                             tokenizer.tokenizer_json));
  ARLE_RETURN_IF_ERROR(core::WriteFileAtomic(core::JoinPath(dir, "tokenizer_config.json"),
                                             tokenizer.tokenizer_config_json));
  return dir;
}

}  // namespace arle::convert
