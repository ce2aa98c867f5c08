// llama2.c checkpoint -> Hugging Face LlamaForCausalLM directory: the checkpoint's arrays under
// transformers' names, q/k rows permuted to rotate_half order, and the config llama2.c implies.
#include "arle/models/llama/llama2c_import.h"

#include <fmt/core.h>

#include <cstring>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/file_util.h"
#include "arle/core/mapped_file.h"
#include "arle/core/tensor.h"
#include "arle/io/llama2c.h"
#include "arle/io/safetensors.h"
#include "arle/models/llama/llama_spec.h"

namespace arle::models::llama {
namespace {

// HF's convert_llama_weights_to_hf `permute`: rows of each head go from interleaved pairs
// (2i, 2i+1) to halves (i, i + head_dim/2), so rotate_half RoPE sees what llama2.c's complex
// RoPE saw. `src` is [n_heads * head_dim, n_in].
void PermuteRotaryRows(const float* src, int64_t n_heads, int64_t head_dim, int64_t n_in,
                       float* dst) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t row_in = h * head_dim + 2 * i + j;
        const int64_t row_out = h * head_dim + j * half + i;
        std::memcpy(dst + row_out * n_in, src + row_in * n_in, n_in * sizeof(float));
      }
    }
  }
}

// The config a llama2.c checkpoint implies (llama2.c's run.c: rmsnorm eps 1e-5, theta 10000,
// BOS 1, EOS 2).
LlamaConfig ConfigFromLlama2c(const io::Llama2cConfig& c) {
  LlamaConfig config;
  config.arch = Architecture::kLlama;
  config.hf_architecture = "LlamaForCausalLM";
  config.n_vocab = c.vocab_size;
  config.n_embd = c.dim;
  config.n_layer = c.n_layers;
  config.n_head = c.n_heads;
  config.n_head_kv = c.n_kv_heads;
  config.head_dim = c.head_dim();
  config.n_ff = c.hidden_dim;
  config.n_ctx_train = c.seq_len;
  config.norm_eps = 1e-5;  // llama2.c's rmsnorm
  config.rope_theta = 10000.0;
  config.tie_word_embeddings = c.shared_classifier;
  config.bos_token_id = 1;
  config.eos_token_ids = {2};
  config.torch_dtype = core::DType::kF32;
  return config;
}

}  // namespace

core::Status ConvertLlama2c(const std::string& model_bin, const std::string& tokenizer_bin,
                            const std::string& out_dir) {
  ARLE_ASSIGN_OR_RETURN(core::MappedFile model_file, core::MappedFile::Open(model_bin));
  ARLE_ASSIGN_OR_RETURN(io::Llama2cConfig c, io::ParseLlama2cHeader(model_file.bytes(), model_bin));
  ARLE_ASSIGN_OR_RETURN(std::string tok_bytes, core::ReadFile(tokenizer_bin));
  ARLE_ASSIGN_OR_RETURN(std::vector<io::Llama2cToken> tokens,
                        io::ParseLlama2cTokenizer(
                            {reinterpret_cast<const uint8_t*>(tok_bytes.data()), tok_bytes.size()},
                            c.vocab_size, tokenizer_bin));
  if (tokens.size() < 3) {
    return core::DataLossError(
        fmt::format("{}: a llama2.c tokenizer needs at least <unk>, <s> and </s>; it has {} tokens",
                    tokenizer_bin, tokens.size()));
  }
  auto tokenizer_json = io::Llama2cTokenizerJson(tokens);
  if (!tokenizer_json.ok()) return tokenizer_json.status().WithContext(tokenizer_bin);

  // Views point into the read-only mapping; only the permuted q/k projections get their own
  // buffers. WriteSafetensors only reads the views, hence the const_casts.
  const io::Llama2cWeights w = io::Llama2cWeightArrays(c, model_file.bytes());
  const int64_t dim = c.dim, hd = c.head_dim(), layers = c.n_layers, ff = c.hidden_dim;
  const int64_t q_dim = c.n_heads * hd, kv_dim = c.n_kv_heads * hd, vocab = c.vocab_size;
  using core::DType;
  using core::Tensor;
  auto view = [](const float* data, std::initializer_list<int64_t> shape) {
    return Tensor(const_cast<float*>(data), DType::kF32, shape);
  };
  std::vector<io::NamedTensor> tensors;
  std::vector<core::Buffer> permuted;
  permuted.reserve(2 * layers);
  tensors.push_back({"model.embed_tokens.weight", view(w.token_embedding, {vocab, dim})});
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    core::Buffer& q = permuted.emplace_back(q_dim * dim * sizeof(float));
    PermuteRotaryRows(w.wq + l * q_dim * dim, c.n_heads, hd, dim, q.as<float>());
    core::Buffer& k = permuted.emplace_back(kv_dim * dim * sizeof(float));
    PermuteRotaryRows(w.wk + l * kv_dim * dim, c.n_kv_heads, hd, dim, k.as<float>());
    tensors.push_back({p + "input_layernorm.weight", view(w.rms_att + l * dim, {dim})});
    tensors.push_back({p + "self_attn.q_proj.weight", view(q.as<float>(), {q_dim, dim})});
    tensors.push_back({p + "self_attn.k_proj.weight", view(k.as<float>(), {kv_dim, dim})});
    tensors.push_back(
        {p + "self_attn.v_proj.weight", view(w.wv + l * kv_dim * dim, {kv_dim, dim})});
    tensors.push_back({p + "self_attn.o_proj.weight", view(w.wo + l * dim * q_dim, {dim, q_dim})});
    tensors.push_back({p + "post_attention_layernorm.weight", view(w.rms_ffn + l * dim, {dim})});
    tensors.push_back({p + "mlp.gate_proj.weight", view(w.w1 + l * ff * dim, {ff, dim})});
    tensors.push_back({p + "mlp.up_proj.weight", view(w.w3 + l * ff * dim, {ff, dim})});
    tensors.push_back({p + "mlp.down_proj.weight", view(w.w2 + l * dim * ff, {dim, ff})});
  }
  tensors.push_back({"model.norm.weight", view(w.rms_final, {dim})});
  if (w.wcls != nullptr) tensors.push_back({"lm_head.weight", view(w.wcls, {vocab, dim})});

  const LlamaConfig config = ConfigFromLlama2c(c);
  ARLE_RETURN_IF_ERROR(core::MakeDirs(out_dir));
  ARLE_RETURN_IF_ERROR(io::WriteSafetensors(
      core::JoinPath(out_dir, "model.safetensors"), tensors,
      {{"format", "pt"}, {"source", "llama2.c checkpoint converted by arle convert llama2c"}}));
  ARLE_RETURN_IF_ERROR(
      core::WriteFileAtomic(core::JoinPath(out_dir, "config.json"), ToHfConfigJson(config)));
  ARLE_RETURN_IF_ERROR(core::WriteFileAtomic(core::JoinPath(out_dir, "generation_config.json"),
                                             ToGenerationConfigJson(config)));
  ARLE_RETURN_IF_ERROR(
      core::WriteFileAtomic(core::JoinPath(out_dir, "tokenizer.json"), *tokenizer_json));
  ARLE_RETURN_IF_ERROR(core::WriteFileAtomic(core::JoinPath(out_dir, "tokenizer_config.json"),
                                             io::Llama2cTokenizerConfigJson(c.seq_len)));
  return core::OkStatus();
}

}  // namespace arle::models::llama
