// Model loading and the transformer forward: an explicit sequence of kernel calls over one
// pre-allocated workspace, with llama.cpp-style names for every intermediate tensor.
#include "arle/models/model.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "arle/core/file_util.h"
#include "arle/core/logging.h"
#include "arle/io/safetensors.h"
#include "arle/kernels/attention.h"
#include "arle/kernels/elementwise.h"
#include "arle/kernels/embedding.h"
#include "arle/kernels/matmul.h"
#include "arle/kernels/rmsnorm.h"
#include "arle/kernels/rope.h"
#include "arle/models/gguf_loader.h"

namespace arle::models {
namespace {

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const core::Tensor* OrNull(const core::Tensor& t) { return t.empty() ? nullptr : &t; }

// Floats per workspace slot, rounded up to 64 bytes.
int64_t Aligned(int64_t n_floats) { return (n_floats + 15) / 16 * 16; }

}  // namespace

Model::~Model() = default;

core::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path,
                                                   const LoadOptions& options) {
  if (core::IsDirectory(path)) {
    ARLE_ASSIGN_OR_RETURN(io::ModelConfig config, io::LoadHfModelConfig(path));
    ARLE_ASSIGN_OR_RETURN(io::SafetensorsModel st, io::SafetensorsModel::Open(path));
    auto shared = std::make_shared<io::SafetensorsModel>(std::move(st));
    auto get = [shared](const std::string& name) { return shared->GetTensor(name); };
    auto model = FromTensors(config, get, shared, options);
    if (!model.ok()) return model.status().WithContext(path);
    return model;
  }
  if (EndsWith(path, ".gguf") || core::FileExists(path)) return LoadGgufModel(path, options);
  return core::NotFoundError(path + ": no such model directory or .gguf file",
                             "pass a Hugging Face model directory or a .gguf file");
}

core::StatusOr<std::unique_ptr<Model>> Model::FromTensors(
    const io::ModelConfig& config,
    std::function<core::StatusOr<core::Tensor>(const std::string& hf_name)> get,
    std::shared_ptr<void> owner, const LoadOptions& options) {
  if (config.n_vocab <= 0 || config.n_embd <= 0 || config.n_layer <= 0 || config.n_head <= 0 ||
      config.n_head_kv <= 0 || config.head_dim <= 0 || config.n_ff <= 0 ||
      config.n_head % config.n_head_kv != 0) {
    return core::InvalidArgumentError(
        "model config has non-positive or inconsistent sizes (n_vocab, n_embd, n_layer, n_head, "
        "n_head_kv, head_dim, n_ff)");
  }
  std::unique_ptr<Model> m(new Model());
  m->config_ = config;
  ARLE_ASSIGN_OR_RETURN(m->rope_, ComputeRopeFrequencies(config));
  ARLE_ASSIGN_OR_RETURN(m->weights_, BindWeights(config, get, "model weights"));
  m->owner_ = std::move(owner);
  kernels::Backend backend = kernels::Backend::kCpu;
  if (options.backend.has_value()) {
    backend = *options.backend;
  } else {
    ARLE_ASSIGN_OR_RETURN(backend, kernels::BackendFromEnvironment());
  }
  if (backend == kernels::Backend::kCuda) {
    return core::UnimplementedError(
        "the model forward does not run on the CUDA backend yet (only MatMul and RmsNorm have CUDA "
        "kernels, and weights stay in host memory)",
        "use ARLE_KERNELS=cpu (or ref)");
  }
  m->pool_ = std::make_unique<core::ThreadPool>(options.n_threads);
  m->ctx_ = std::make_unique<kernels::Context>(kernels::Context::Cpu(backend, *m->pool_));
  // transformers: scaling = head_dim ** -0.5 (a Python double, applied in f32).
  m->attn_scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(config.head_dim)));
  std::string dump_dir = options.dump_dir;
  if (dump_dir.empty()) {
    if (const char* env = std::getenv("ARLE_DUMP_DIR"); env != nullptr) dump_dir = env;
  }
  m->dump_ = TensorDump(dump_dir);
  ARLE_LOG_DEBUG("model: {} layers, n_embd {}, {} heads ({} kv), {} threads, {} kernels",
                 config.n_layer, config.n_embd, config.n_head, config.n_head_kv, m->pool_->size(),
                 kernels::BackendName(backend));
  return m;
}

std::unique_ptr<KvCache> Model::NewKvCache(int64_t max_tokens) const {
  return std::make_unique<KvCache>(config_.n_layer, max_tokens, config_.n_head_kv,
                                   config_.head_dim);
}

core::Status Model::EnsureWorkspace(int64_t n) {
  if (n <= ws_tokens_) return core::OkStatus();
  const io::ModelConfig& c = config_;
  const int64_t per_token = 2 * Aligned(c.n_embd) + 2 * Aligned(c.n_head * c.head_dim) +
                            2 * Aligned(c.n_head_kv * c.head_dim) + 2 * Aligned(c.n_ff) +
                            2 * Aligned(c.head_dim / 2);
  ARLE_ASSIGN_OR_RETURN(ws_, core::Buffer::TryAllocate(static_cast<size_t>(n * per_token) * 4));
  ws_tokens_ = n;
  positions_.resize(n);
  return core::OkStatus();
}

core::Status Model::CheckTokens(std::span<const int32_t> tokens) const {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return core::InvalidArgumentError("Forward called with no tokens");
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= config_.n_vocab) {
      return core::InvalidArgumentError("token id " + std::to_string(tokens[i]) + " at index " +
                                        std::to_string(i) + " is outside the vocabulary [0, " +
                                        std::to_string(config_.n_vocab) + ")");
    }
  }
  return core::OkStatus();
}

core::Status Model::Forward(std::span<const int32_t> tokens, KvCache& cache,
                            std::vector<float>* logits, bool all_logits) {
  const io::ModelConfig& c = config_;
  ARLE_RETURN_IF_ERROR(CheckTokens(tokens));
  const int64_t n = static_cast<int64_t>(tokens.size());
  ARLE_CHECK(cache.n_layer() == c.n_layer && cache.n_head_kv() == c.n_head_kv &&
             cache.head_dim() == c.head_dim)
      << "KV cache made for another model (NewKvCache of this model makes a matching one)";
  ARLE_RETURN_IF_ERROR(cache.Reserve(n));
  ARLE_RETURN_IF_ERROR(EnsureWorkspace(n));
  const int64_t n_past = cache.n_tokens();
  const int64_t KD = c.n_head_kv * c.head_dim;
  for (int64_t i = 0; i < n; ++i) positions_[i] = static_cast<int32_t>(n_past + i);
  const std::span<const int32_t> positions(positions_.data(), n);
  auto attend = [&](int64_t l, const core::Tensor& q3, const core::Tensor& k3,
                    const core::Tensor& v3, core::Tensor& att3) {
    core::Tensor k_cache = cache.k(l), v_cache = cache.v(l);
    std::memcpy(k_cache.data_as<float>() + n_past * KD, k3.data(), n * KD * sizeof(float));
    std::memcpy(v_cache.data_as<float>() + n_past * KD, v3.data(), n * KD * sizeof(float));
    kernels::Attention(*ctx_, {.q = &q3,
                               .k = &k_cache,
                               .v = &v_cache,
                               .positions = positions,
                               .scale = attn_scale_,
                               .out = &att3});
  };
  logit_rows_.clear();
  for (int64_t i = all_logits ? 0 : n - 1; i < n; ++i) logit_rows_.push_back(i);
  ARLE_RETURN_IF_ERROR(RunForward(tokens, n_past, attend, logit_rows_, logits));
  cache.Advance(n);
  return core::OkStatus();
}

core::StatusOr<std::unique_ptr<PagedKvStorage>> Model::NewPagedKv(int64_t n_blocks,
                                                                  int64_t block_size,
                                                                  core::DType dtype) const {
  return PagedKvStorage::Create(config_.n_layer, n_blocks, block_size, config_.n_head_kv,
                                config_.head_dim, dtype);
}

core::Status Model::ForwardPaged(std::span<const int32_t> tokens,
                                 std::span<const PagedSequence> sequences, PagedKvStorage& kv,
                                 std::vector<float>* logits) {
  const io::ModelConfig& c = config_;
  ARLE_RETURN_IF_ERROR(CheckTokens(tokens));
  const int64_t n = static_cast<int64_t>(tokens.size());
  ARLE_CHECK(kv.n_layer() == c.n_layer && kv.n_head_kv() == c.n_head_kv &&
             kv.head_dim() == c.head_dim)
      << "paged KV storage made for another model (NewPagedKv of this model makes a matching one)";
  ARLE_RETURN_IF_ERROR(EnsureWorkspace(n));
  slots_.resize(n);
  block_tables_.resize(n);
  logit_rows_.clear();
  const int64_t bs = kv.block_size();
  int64_t next = 0;
  for (size_t s = 0; s < sequences.size(); ++s) {
    const PagedSequence& seq = sequences[s];
    if (seq.token_begin != next || seq.n_tokens <= 0 || seq.n_past < 0) {
      return core::InvalidArgumentError("paged batch: sequence " + std::to_string(s) +
                                        " does not continue the token list in order");
    }
    const int64_t n_rows = seq.n_past + seq.n_tokens;
    if (static_cast<int64_t>(seq.block_table.size()) * bs < n_rows) {
      return core::InvalidArgumentError("paged batch: sequence " + std::to_string(s) + " has " +
                                        std::to_string(seq.block_table.size()) +
                                        " blocks for " + std::to_string(n_rows) + " rows");
    }
    for (int64_t i = 0; i < (n_rows + bs - 1) / bs; ++i) {
      if (seq.block_table[i] < 0 || seq.block_table[i] >= kv.n_blocks()) {
        return core::InvalidArgumentError("paged batch: block id " +
                                          std::to_string(seq.block_table[i]) + " out of range");
      }
    }
    for (int64_t i = 0; i < seq.n_tokens; ++i) {
      const int64_t t = seq.token_begin + i, pos = seq.n_past + i;
      positions_[t] = static_cast<int32_t>(pos);
      slots_[t] = static_cast<int64_t>(seq.block_table[pos / bs]) * bs + pos % bs;
      block_tables_[t] = seq.block_table.data();
    }
    if (seq.want_logits) logit_rows_.push_back(seq.token_begin + seq.n_tokens - 1);
    next += seq.n_tokens;
  }
  if (next != n) {
    return core::InvalidArgumentError("paged batch: the sequences cover " + std::to_string(next) +
                                      " of " + std::to_string(n) + " tokens");
  }
  const std::span<const int32_t> positions(positions_.data(), n);
  const std::span<const int64_t> slots(slots_.data(), n);
  const std::span<const int32_t* const> tables(block_tables_.data(), n);
  auto attend = [&](int64_t l, const core::Tensor& q3, const core::Tensor& k3,
                    const core::Tensor& v3, core::Tensor& att3) {
    const kernels::PagedKvLayer& layer = kv.layer(l);
    kernels::WritePagedKv(*ctx_, {.k_new = &k3, .v_new = &v3, .slots = slots, .layer = &layer});
    kernels::PagedAttention(*ctx_, {.q = &q3,
                                    .layer = &layer,
                                    .block_tables = tables,
                                    .positions = positions,
                                    .scale = attn_scale_,
                                    .out = &att3});
  };
  return RunForward(tokens, /*dump_n_past=*/positions_[0], attend, logit_rows_, logits);
}

core::Status Model::RunForward(std::span<const int32_t> tokens, int64_t dump_n_past,
                               const AttendFn& attend, std::span<const int64_t> logit_rows,
                               std::vector<float>* logits) {
  const io::ModelConfig& c = config_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t E = c.n_embd, hd = c.head_dim, QD = c.n_head * hd, KD = c.n_head_kv * hd;
  const kernels::Context& ctx = *ctx_;

  // Workspace views, each [n, width] contiguous.
  float* base = ws_.as<float>();
  auto slot = [&](int64_t width) {
    core::Tensor t(base, core::DType::kF32, {n, width});
    base += n * Aligned(width);
    return t;
  };
  core::Tensor x = slot(E), h = slot(E), q = slot(QD), k = slot(KD), v = slot(KD), att = slot(QD);
  core::Tensor gate = slot(c.n_ff), up = slot(c.n_ff);
  core::Tensor cos = slot(hd / 2), sin = slot(hd / 2);
  core::Tensor q3 = q.Reshape({n, c.n_head, hd}), k3 = k.Reshape({n, c.n_head_kv, hd});
  core::Tensor v3 = v.Reshape({n, c.n_head_kv, hd});
  core::Tensor att3 = att.Reshape({n, c.n_head, hd});
  core::Tensor q_heads = q.Reshape({n * c.n_head, hd}), k_heads = k.Reshape({n * c.n_head_kv, hd});
  const std::span<const int32_t> positions(positions_.data(), n);

  TensorDump& dump = dump_;
  dump.Begin(n_forward_++, dump_n_past, n);
  kernels::Embedding(ctx, {.table = &weights_.embed, .ids = tokens, .out = &x});
  dump.Add("inp_embd", x);
  kernels::RopeTable(ctx, {.positions = positions,
                           .inv_freq = rope_.inv_freq,
                           .attention_scaling = rope_.attention_scaling,
                           .cos = &cos,
                           .sin = &sin});
  const float eps = static_cast<float>(c.norm_eps);

  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = weights_.layers[l];
    const std::string p = dump.enabled() ? "blk." + std::to_string(l) + "." : std::string();
    // h = RmsNorm(x), fused into the q/k/v input pass.
    const kernels::InputRmsNorm attn_norm{&L.attn_norm, eps, &h};
    const kernels::MatMulOutput qkv[] = {
        {&L.wq, OrNull(L.bq), &q}, {&L.wk, OrNull(L.bk), &k}, {&L.wv, OrNull(L.bv), &v}};
    kernels::MatMul(ctx, {.x = &x, .outputs = qkv, .norm = &attn_norm});
    dump.Add(p + "attn_norm", h);
    dump.Add(p + "Qcur", q);
    dump.Add(p + "Kcur", k);
    dump.Add(p + "Vcur", v);
    if (c.qk_norm) {
      kernels::RmsNorm(ctx, {.x = &q_heads, .w = &L.q_norm, .eps = eps, .y = &q_heads});
      kernels::RmsNorm(ctx, {.x = &k_heads, .w = &L.k_norm, .eps = eps, .y = &k_heads});
      dump.Add(p + "Qcur_normed", q);
      dump.Add(p + "Kcur_normed", k);
    }
    kernels::ApplyRope(ctx, {.x = &q3, .cos = &cos, .sin = &sin, .out = &q3});
    kernels::ApplyRope(ctx, {.x = &k3, .cos = &cos, .sin = &sin, .out = &k3});
    dump.Add(p + "Qcur_rope", q);
    dump.Add(p + "Kcur_rope", k);
    attend(l, q3, k3, v3, att3);
    dump.Add(p + "kqv_out", att);
    const kernels::MatMulOutput o_proj{&L.wo, OrNull(L.bo), &h};
    kernels::MatMul(ctx, {.x = &att, .outputs = {&o_proj, 1}});
    dump.Add(p + "attn_out", h);
    kernels::Add(ctx, {.a = &x, .b = &h, .out = &x});
    dump.Add(p + "ffn_inp", x);
    if (dump.enabled()) {  // the gate and up projections are dumped before SwiGLU
      kernels::RmsNorm(ctx, {.x = &x, .w = &L.ffn_norm, .eps = eps, .y = &h});
      dump.Add(p + "ffn_norm", h);
      const kernels::MatMulOutput gate_up[] = {{&L.w_gate, OrNull(L.b_gate), &gate},
                                               {&L.w_up, OrNull(L.b_up), &up}};
      for (const kernels::MatMulOutput& o : gate_up) {
        kernels::MatMul(ctx, {.x = &h, .outputs = {&o, 1}});
      }
      dump.Add(p + "ffn_gate", gate);
      dump.Add(p + "ffn_up", up);
      kernels::SwiGlu(ctx, {.gate = &gate, .up = &up, .out = &gate});
    } else {  // h = RmsNorm(x), gate/up and SwiGLU fused, bit-identical
      const kernels::InputRmsNorm ffn_norm{&L.ffn_norm, eps, &h};
      kernels::MatMulSwiGlu(ctx, {.x = &x,
                                  .gate = {&L.w_gate, OrNull(L.b_gate), &gate},
                                  .up = {&L.w_up, OrNull(L.b_up), &up},
                                  .norm = &ffn_norm});
    }
    dump.Add(p + "ffn_swiglu", gate);
    const kernels::MatMulOutput down{&L.w_down, OrNull(L.b_down), &h};
    kernels::MatMul(ctx, {.x = &gate, .outputs = {&down, 1}});
    dump.Add(p + "ffn_out", h);
    kernels::Add(ctx, {.a = &x, .b = &h, .out = &x});
    dump.Add(p + "l_out", x);
  }

  // Final norm and LM head over the requested rows only: a contiguous tail is used in place,
  // scattered rows (one per sequence of a paged step) are gathered first.
  const int64_t n_rows = static_cast<int64_t>(logit_rows.size());
  logits->resize(static_cast<size_t>(n_rows * c.n_vocab));
  if (n_rows == 0) return dump.End();
  const bool tail = logit_rows.back() == n - 1 && logit_rows.front() == n - n_rows;
  core::Tensor x_rows = x.Slice(n - n_rows, n), h_rows = h.Slice(n - n_rows, n);
  if (!tail) {
    // Gather into h (free after the last layer), normalise into x (no longer needed then).
    x_rows = h.Slice(0, n_rows);
    kernels::GatherRows(ctx, {.x = &x, .rows = logit_rows, .out = &x_rows});
    h_rows = x.Slice(0, n_rows);
  }
  core::Tensor out(logits->data(), core::DType::kF32, {n_rows, c.n_vocab});
  const kernels::InputRmsNorm out_norm{&weights_.out_norm, eps, &h_rows};
  const kernels::MatMulOutput lm_head{&weights_.lm_head, nullptr, &out};
  kernels::MatMul(ctx, {.x = &x_rows, .outputs = {&lm_head, 1}, .norm = &out_norm});
  dump.Add("result_norm", h_rows);
  dump.Add("result_output", out);
  return dump.End();
}

}  // namespace arle::models
