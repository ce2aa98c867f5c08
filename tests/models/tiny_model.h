// Tiny random-weight models for model tests: a config plus Hugging Face-named tensors filled from
// core::Rng, held in one shared object that Model::FromTensors keeps alive.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/half.h"
#include "arle/core/random.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/models/llama/llama_model.h"

namespace arle::models::testing {

struct TinyWeights {
  std::map<std::string, core::Buffer> buffers;
  std::map<std::string, core::Tensor> tensors;

  void Add(const std::string& name, core::DType dtype, std::vector<int64_t> shape, core::Rng& rng,
           double scale, double offset = 0.0) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    core::Buffer b(static_cast<size_t>(n) * core::ElementSize(dtype));
    for (int64_t i = 0; i < n; ++i) {
      const float v = static_cast<float>(offset + rng.Normal() * scale);
      if (dtype == core::DType::kF32) b.as<float>()[i] = v;
      if (dtype == core::DType::kBF16) b.as<uint16_t>()[i] = core::F32ToBF16(v);
      if (dtype == core::DType::kF16) b.as<uint16_t>()[i] = core::F32ToF16(v);
    }
    tensors[name] = b.AsTensor(dtype, shape);
    buffers[name] = std::move(b);
  }

  core::StatusOr<core::Tensor> Get(const std::string& name) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) return core::NotFoundError("no tensor " + name);
    return it->second;
  }
};

inline llama::LlamaConfig TinyConfig(llama::Architecture arch) {
  llama::LlamaConfig c;
  c.arch = arch;
  c.hf_architecture = arch == llama::Architecture::kQwen3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM";
  c.n_vocab = 97;
  c.n_embd = 48;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 16;
  c.n_ff = 80;
  c.n_ctx_train = 256;
  c.norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.qk_norm = arch == llama::Architecture::kQwen3;
  c.tie_word_embeddings = arch == llama::Architecture::kLlama;
  return c;
}

// Random weights for every tensor `c` calls for; norm weights around 1 (non-unit).
inline std::shared_ptr<TinyWeights> TinyModelWeights(const llama::LlamaConfig& c, core::DType dtype,
                                                     uint64_t seed) {
  auto w = std::make_shared<TinyWeights>();
  core::Rng rng(seed);
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  w->Add("model.embed_tokens.weight", dtype, {c.n_vocab, c.n_embd}, rng, 1.0);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    w->Add(p + "input_layernorm.weight", dtype, {c.n_embd}, rng, 0.1, 1.0);
    w->Add(p + "self_attn.q_proj.weight", dtype, {q_dim, c.n_embd}, rng, 0.15);
    w->Add(p + "self_attn.k_proj.weight", dtype, {kv_dim, c.n_embd}, rng, 0.15);
    w->Add(p + "self_attn.v_proj.weight", dtype, {kv_dim, c.n_embd}, rng, 0.15);
    w->Add(p + "self_attn.o_proj.weight", dtype, {c.n_embd, q_dim}, rng, 0.15);
    if (c.attention_bias) {
      w->Add(p + "self_attn.q_proj.bias", dtype, {q_dim}, rng, 0.1);
      w->Add(p + "self_attn.k_proj.bias", dtype, {kv_dim}, rng, 0.1);
      w->Add(p + "self_attn.v_proj.bias", dtype, {kv_dim}, rng, 0.1);
      w->Add(p + "self_attn.o_proj.bias", dtype, {c.n_embd}, rng, 0.1);
    }
    if (c.qk_norm) {
      w->Add(p + "self_attn.q_norm.weight", dtype, {c.head_dim}, rng, 0.1, 1.0);
      w->Add(p + "self_attn.k_norm.weight", dtype, {c.head_dim}, rng, 0.1, 1.0);
    }
    w->Add(p + "post_attention_layernorm.weight", dtype, {c.n_embd}, rng, 0.1, 1.0);
    w->Add(p + "mlp.gate_proj.weight", dtype, {c.n_ff, c.n_embd}, rng, 0.15);
    w->Add(p + "mlp.up_proj.weight", dtype, {c.n_ff, c.n_embd}, rng, 0.15);
    w->Add(p + "mlp.down_proj.weight", dtype, {c.n_embd, c.n_ff}, rng, 0.15);
    if (c.mlp_bias) {
      w->Add(p + "mlp.gate_proj.bias", dtype, {c.n_ff}, rng, 0.1);
      w->Add(p + "mlp.up_proj.bias", dtype, {c.n_ff}, rng, 0.1);
      w->Add(p + "mlp.down_proj.bias", dtype, {c.n_embd}, rng, 0.1);
    }
  }
  w->Add("model.norm.weight", dtype, {c.n_embd}, rng, 0.1, 1.0);
  if (!c.tie_word_embeddings) w->Add("lm_head.weight", dtype, {c.n_vocab, c.n_embd}, rng, 0.2);
  return w;
}

inline core::StatusOr<std::unique_ptr<llama::LlamaModel>> BuildTiny(
    const llama::LlamaConfig& c, std::shared_ptr<TinyWeights> w, const LoadOptions& options = {}) {
  auto get = [w](const std::string& name) { return w->Get(name); };
  return llama::LlamaModel::FromTensors(c, get, w, options);
}

}  // namespace arle::models::testing
