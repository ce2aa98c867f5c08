// Weight binding and validation, HF -> GGUF name mapping, and the llama q/k row un-permutation.
#include "arle/models/llama/llama_weights.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <regex>
#include <sstream>
#include <utility>

#include "arle/kernels/quant.h"

namespace arle::models::llama {
namespace {

std::string ShapeString(std::span<const int64_t> shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

class Binder {
 public:
  Binder(const TensorGetter& get, const std::string& source) : get_(get), source_(source) {}

  // A matrix (projection, embedding, LM head): f32/f16/bf16 or a GGUF block format the kernels
  // read in place.
  core::StatusOr<core::Tensor> GetMatrix(const std::string& name, std::vector<int64_t> shape) {
    return Get(name, std::move(shape), /*allow_quantized=*/true);
  }

  // A norm weight or bias: f32/f16/bf16 only.
  core::StatusOr<core::Tensor> Get(const std::string& name, std::vector<int64_t> shape,
                                   bool allow_quantized = false) {
    auto t = get_(name);
    if (!t.ok()) {
      if (t.status().code() == core::StatusCode::kNotFound) {
        return core::NotFoundError(source_ + ": missing tensor '" + name + "' (expected shape " +
                                       ShapeString(shape) + ")",
                                   "the weights do not match config.json, or the file is "
                                   "incomplete");
      }
      return t.status().WithContext(source_ + ": tensor '" + name + "'");
    }
    const core::Tensor& v = *t;
    const core::DType dt = v.dtype();
    const bool is_float = dt == core::DType::kF32 || dt == core::DType::kF16 ||
                          dt == core::DType::kBF16;
    if (!is_float && !(allow_quantized && kernels::IsSupportedQuant(dt))) {
      return core::UnimplementedError(
          source_ + ": tensor '" + name + "' has dtype " + std::string(core::DTypeName(dt)) +
              (allow_quantized ? "; arle reads matrices in f32, f16, bf16, q8_0, q4_0, q4_k, "
                                 "q5_k and q6_k"
                               : "; norms and biases must be f32, f16 or bf16"),
          "re-quantize the model with `arle quantize` (or llama-quantize) to a supported type");
    }
    if (!std::equal(v.shape().begin(), v.shape().end(), shape.begin(), shape.end())) {
      return core::InvalidArgumentError(source_ + ": tensor '" + name + "' has shape " +
                                        ShapeString(v.shape()) + ", expected " +
                                        ShapeString(shape) + " from the model config");
    }
    if (!v.is_contiguous() || v.device() != core::Device::kCpu) {
      return core::InvalidArgumentError(source_ + ": tensor '" + name +
                                        "' is not a contiguous host tensor");
    }
    return v;
  }

 private:
  const TensorGetter& get_;
  const std::string& source_;
};

}  // namespace

core::StatusOr<ModelWeights> BindWeights(const LlamaConfig& c, const TensorGetter& get,
                                         const std::string& source) {
  Binder b(get, source);
  ModelWeights w;
  const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  ARLE_ASSIGN_OR_RETURN(w.embed, b.GetMatrix("model.embed_tokens.weight", {c.n_vocab, c.n_embd}));
  w.layers.resize(c.n_layer);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    LayerWeights& L = w.layers[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    ARLE_ASSIGN_OR_RETURN(L.attn_norm, b.Get(p + "input_layernorm.weight", {c.n_embd}));
    ARLE_ASSIGN_OR_RETURN(L.wq, b.GetMatrix(p + "self_attn.q_proj.weight", {q_dim, c.n_embd}));
    ARLE_ASSIGN_OR_RETURN(L.wk, b.GetMatrix(p + "self_attn.k_proj.weight", {kv_dim, c.n_embd}));
    ARLE_ASSIGN_OR_RETURN(L.wv, b.GetMatrix(p + "self_attn.v_proj.weight", {kv_dim, c.n_embd}));
    ARLE_ASSIGN_OR_RETURN(L.wo, b.GetMatrix(p + "self_attn.o_proj.weight", {c.n_embd, q_dim}));
    if (c.attention_bias) {
      ARLE_ASSIGN_OR_RETURN(L.bq, b.Get(p + "self_attn.q_proj.bias", {q_dim}));
      ARLE_ASSIGN_OR_RETURN(L.bk, b.Get(p + "self_attn.k_proj.bias", {kv_dim}));
      ARLE_ASSIGN_OR_RETURN(L.bv, b.Get(p + "self_attn.v_proj.bias", {kv_dim}));
      ARLE_ASSIGN_OR_RETURN(L.bo, b.Get(p + "self_attn.o_proj.bias", {c.n_embd}));
    }
    if (c.qk_norm) {
      ARLE_ASSIGN_OR_RETURN(L.q_norm, b.Get(p + "self_attn.q_norm.weight", {c.head_dim}));
      ARLE_ASSIGN_OR_RETURN(L.k_norm, b.Get(p + "self_attn.k_norm.weight", {c.head_dim}));
    }
    ARLE_ASSIGN_OR_RETURN(L.ffn_norm, b.Get(p + "post_attention_layernorm.weight", {c.n_embd}));
    ARLE_ASSIGN_OR_RETURN(L.w_gate, b.GetMatrix(p + "mlp.gate_proj.weight", {c.n_ff, c.n_embd}));
    ARLE_ASSIGN_OR_RETURN(L.w_up, b.GetMatrix(p + "mlp.up_proj.weight", {c.n_ff, c.n_embd}));
    ARLE_ASSIGN_OR_RETURN(L.w_down, b.GetMatrix(p + "mlp.down_proj.weight", {c.n_embd, c.n_ff}));
    if (c.mlp_bias) {
      ARLE_ASSIGN_OR_RETURN(L.b_gate, b.Get(p + "mlp.gate_proj.bias", {c.n_ff}));
      ARLE_ASSIGN_OR_RETURN(L.b_up, b.Get(p + "mlp.up_proj.bias", {c.n_ff}));
      ARLE_ASSIGN_OR_RETURN(L.b_down, b.Get(p + "mlp.down_proj.bias", {c.n_embd}));
    }
  }
  ARLE_ASSIGN_OR_RETURN(w.out_norm, b.Get("model.norm.weight", {c.n_embd}));
  if (c.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    ARLE_ASSIGN_OR_RETURN(w.lm_head, b.GetMatrix("lm_head.weight", {c.n_vocab, c.n_embd}));
  }
  return w;
}

std::string GgufNameForHf(const std::string& hf_name) {
  static const std::pair<const char*, const char*> kGlobal[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  for (const auto& [hf, gguf] : kGlobal) {
    if (hf_name == hf) return gguf;
  }
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm", "attn_norm"},     {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},       {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"},  {"self_attn.q_norm", "attn_q_norm"},
      {"self_attn.k_norm", "attn_k_norm"},  {"post_attention_layernorm", "ffn_norm"},
      {"mlp.gate_proj", "ffn_gate"},        {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},
  };
  static const std::regex kLayerRe(R"(model\.layers\.(\d+)\.(.+)\.(weight|bias))");
  std::smatch m;
  if (!std::regex_match(hf_name, m, kLayerRe)) return {};
  for (const auto& [hf, gguf] : kLayer) {
    if (m[2] == hf) return "blk." + m[1].str() + "." + gguf + "." + m[3].str();
  }
  return {};
}

core::Buffer UnpermuteLlamaQk(const core::Tensor& w, int64_t n_heads) {
  // convert_hf_to_gguf.py: w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).
  // So GGUF row (h, j, s) = HF row (h, s, j) with s in {0, 1}, j < head_dim / 2.
  // Rows are moved whole, so block formats work too (a block-format row is whole blocks).
  ARLE_CHECK(w.rank() >= 1 && w.is_contiguous()) << w.ToString();
  const int64_t n_rows = w.dim(0);
  ARLE_CHECK(n_heads > 0 && n_rows % (2 * n_heads) == 0) << w.ToString() << " heads " << n_heads;
  const int64_t half = n_rows / n_heads / 2;
  const int64_t row_bytes = n_rows == 0 ? 0 : w.nbytes() / n_rows;
  core::Buffer out(static_cast<size_t>(w.nbytes()));
  const char* src = static_cast<const char*>(w.data());
  char* dst = out.as<char>();
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t j = 0; j < half; ++j) {
      for (int64_t s = 0; s < 2; ++s) {
        const int64_t gguf_row = (h * half + j) * 2 + s;
        const int64_t hf_row = (h * 2 + s) * half + j;
        std::memcpy(dst + hf_row * row_bytes, src + gguf_row * row_bytes, row_bytes);
      }
    }
  }
  return out;
}

namespace {

// Every tensor of a layer with its Hugging Face name after "model.layers.N.": the one list that
// ForEachWeight and OwnedF32Copy walk.
constexpr std::pair<const char*, core::Tensor LayerWeights::*> kLayerTensors[] = {
    {"input_layernorm.weight", &LayerWeights::attn_norm},
    {"self_attn.q_proj.weight", &LayerWeights::wq},
    {"self_attn.k_proj.weight", &LayerWeights::wk},
    {"self_attn.v_proj.weight", &LayerWeights::wv},
    {"self_attn.o_proj.weight", &LayerWeights::wo},
    {"self_attn.q_proj.bias", &LayerWeights::bq},
    {"self_attn.k_proj.bias", &LayerWeights::bk},
    {"self_attn.v_proj.bias", &LayerWeights::bv},
    {"self_attn.o_proj.bias", &LayerWeights::bo},
    {"self_attn.q_norm.weight", &LayerWeights::q_norm},
    {"self_attn.k_norm.weight", &LayerWeights::k_norm},
    {"post_attention_layernorm.weight", &LayerWeights::ffn_norm},
    {"mlp.gate_proj.weight", &LayerWeights::w_gate},
    {"mlp.up_proj.weight", &LayerWeights::w_up},
    {"mlp.down_proj.weight", &LayerWeights::w_down},
    {"mlp.gate_proj.bias", &LayerWeights::b_gate},
    {"mlp.up_proj.bias", &LayerWeights::b_up},
    {"mlp.down_proj.bias", &LayerWeights::b_down},
};

}  // namespace

namespace {

// Writes contiguous `t` (any dtype ConvertRowToF32 reads, block formats included) into `out` as
// f32, row by row.
void ConvertToF32(const core::Tensor& t, float* out) {
  const int64_t cols = t.dim(-1), rows = t.numel() / std::max<int64_t>(cols, 1);
  const int64_t row_bytes = rows == 0 ? 0 : t.nbytes() / rows;
  for (int64_t r = 0; r < rows; ++r) {
    kernels::ConvertRowToF32(t.dtype(), static_cast<const char*>(t.data()) + r * row_bytes, cols,
                             out + r * cols);
  }
}

// ForEachWeight over a const or a mutable ModelWeights (W), with fn taking the tensor as T.
template <typename W, typename Fn>
void VisitWeights(W& w, const Fn& fn) {
  fn("model.embed_tokens.weight", w.embed);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const auto& [name, member] : kLayerTensors) {
      auto& t = w.layers[l].*member;
      if (!t.empty()) fn(p + name, t);
    }
  }
  fn("model.norm.weight", w.out_norm);
  if (w.lm_head.data() != w.embed.data()) fn("lm_head.weight", w.lm_head);
}

}  // namespace

void ForEachWeight(const ModelWeights& w,
                   const std::function<void(const std::string&, const core::Tensor&)>& fn) {
  VisitWeights(w, fn);
}

void ForEachMutableWeight(ModelWeights& w,
                          const std::function<void(const std::string&, core::Tensor&)>& fn) {
  VisitWeights(w, fn);
}

core::Status CopyWeightsFrom(std::span<const NamedWeight> update, ModelWeights& w) {
  if (!w.writable) {
    return core::FailedPreconditionError(
        "the model's weights are read-only (used in place from the model file); load them as "
        "writable f32 copies (LoadOptions::writable_weights) to take updates");
  }
  std::map<std::string_view, const core::Tensor*> by_name;
  for (const NamedWeight& u : update) {
    if (!by_name.emplace(u.name, &u.tensor).second) {
      return core::InvalidArgumentError("weight update: tensor \"" + u.name + "\" appears twice");
    }
  }
  // Checks every tensor before the first write, so a bad update changes nothing.
  core::Status bad;
  size_t matched = 0;
  VisitWeights(w, [&](const std::string& name, const core::Tensor& mine) {
    if (!bad.ok()) return;
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      bad = core::InvalidArgumentError("weight update: tensor \"" + name + "\" is missing");
      return;
    }
    const core::Tensor& t = *it->second;
    const core::DType dt = t.dtype();
    if (dt != core::DType::kF32 && dt != core::DType::kF16 && dt != core::DType::kBF16) {
      bad = core::InvalidArgumentError("weight update: tensor \"" + name + "\" is " +
                                       std::string(core::DTypeName(dt)) +
                                       "; updates are f32, f16 or bf16");
    } else if (!std::ranges::equal(t.shape(), mine.shape()) || !t.is_contiguous()) {
      bad = core::InvalidArgumentError("weight update: tensor \"" + name + "\" has shape " +
                                       t.ToString() + "; the model's is " + mine.ToString());
    }
    ++matched;
  });
  ARLE_RETURN_IF_ERROR(bad);
  if (matched != by_name.size()) {
    std::map<std::string_view, bool> known;
    VisitWeights(w, [&](const std::string& name, const core::Tensor&) { known[name] = true; });
    for (const NamedWeight& u : update) {
      if (!known.contains(u.name)) {
        return core::InvalidArgumentError("weight update: tensor \"" + u.name +
                                          "\" is not a weight of this model");
      }
    }
  }
  VisitWeights(w, [&](const std::string& name, core::Tensor& mine) {
    ConvertToF32(*by_name.at(name), static_cast<float*>(mine.data()));
  });
  return core::OkStatus();
}

core::StatusOr<ModelWeights> OwnedF32Copy(const ModelWeights& w) {
  auto buffers = std::make_shared<std::vector<core::Buffer>>();
  // Converts one tensor into a new f32 buffer (an empty tensor stays empty).
  const auto copy = [&](const core::Tensor& t) -> core::StatusOr<core::Tensor> {
    if (t.empty()) return core::Tensor();
    ARLE_CHECK(t.is_contiguous() && t.rank() >= 1) << t.ToString();
    ARLE_ASSIGN_OR_RETURN(core::Buffer b,
                          core::Buffer::TryAllocate(static_cast<size_t>(t.numel()) * 4));
    ConvertToF32(t, b.as<float>());
    core::Tensor view = b.AsTensor(core::DType::kF32, t.shape());
    buffers->push_back(std::move(b));
    return view;
  };
  ModelWeights out;
  ARLE_ASSIGN_OR_RETURN(out.embed, copy(w.embed));
  for (const LayerWeights& L : w.layers) {
    LayerWeights o;
    for (const auto& [name, member] : kLayerTensors) {
      ARLE_ASSIGN_OR_RETURN(o.*member, copy(L.*member));
    }
    out.layers.push_back(o);
  }
  ARLE_ASSIGN_OR_RETURN(out.out_norm, copy(w.out_norm));
  if (w.lm_head.data() == w.embed.data()) {
    out.lm_head = out.embed;
  } else {
    ARLE_ASSIGN_OR_RETURN(out.lm_head, copy(w.lm_head));
  }
  out.owner = buffers;
  out.writable = true;
  return out;
}

}  // namespace arle::models::llama
