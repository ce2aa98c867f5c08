// LlamaTrainer: the forward over kept activations, the loss head in row chunks, and the backward
// of each block mirrored below its forward. Every kernel here is deterministic whatever the pool
// size, so a step's gradients are too.
#include "arle/train/llama_train.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "arle/core/check.h"
#include "arle/core/random.h"
#include "arle/kernels/attention.h"
#include "arle/kernels/cross_entropy.h"
#include "arle/kernels/elementwise.h"
#include "arle/kernels/embedding.h"
#include "arle/kernels/matmul.h"
#include "arle/kernels/rmsnorm.h"
#include "arle/kernels/rope.h"
#include "arle/models/llama/llama_rope.h"
#include "arle/train/peft.h"

namespace arle::train {

using models::llama::Activations;
using models::llama::LayerActivations;
using models::llama::LayerWeights;
using models::llama::LlamaConfig;
using models::llama::ModelWeights;

namespace {

// The loss head's logits are computed this many bytes at a time (rows of n_vocab floats), so a
// [tokens x vocab] matrix is never held: 256 MiB is 441 rows of Qwen3's 151,936-token
// vocabulary. Not less: the head's weight is read, and its gradient read and written, once per
// chunk (3 x 156 MB for Qwen3), which at 64 MiB (110 rows) took a fifth of a training step.
constexpr int64_t kHeadChunkBytes = int64_t{256} << 20;

core::Tensor* OrNull(core::Tensor& t) { return t.empty() ? nullptr : &t; }

// An f32 [rows, cols] view of `floats` floats at `*cursor` of `buffer`, advancing the cursor.
core::Tensor Carve(core::Buffer& buffer, int64_t* cursor, int64_t rows, int64_t cols) {
  float* p = buffer.as<float>() + *cursor;
  *cursor += (rows * cols + 15) / 16 * 16;  // 64-byte aligned views
  ARLE_CHECK(*cursor * 4 <= static_cast<int64_t>(buffer.size())) << "trainer buffer layout";
  return core::Tensor(p, core::DType::kF32, {rows, cols});
}

void Zero(core::Tensor& t) {
  if (!t.empty()) std::memset(t.data(), 0, static_cast<size_t>(t.nbytes()));
}

void Scale(core::Tensor& t, float s) {
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] *= s;
}

// The Hugging Face module name of each projection a LoRA target may name, and where its
// weight, input and output gradient live.
struct Projection {
  const char* module;  // "q_proj"
  const char* block;   // "self_attn" or "mlp"
  core::Tensor LayerWeights::*weight;
};
constexpr Projection kProjections[] = {
    {"q_proj", "self_attn", &LayerWeights::wq},  {"k_proj", "self_attn", &LayerWeights::wk},
    {"v_proj", "self_attn", &LayerWeights::wv},  {"o_proj", "self_attn", &LayerWeights::wo},
    {"gate_proj", "mlp", &LayerWeights::w_gate}, {"up_proj", "mlp", &LayerWeights::w_up},
    {"down_proj", "mlp", &LayerWeights::w_down},
};

// [out, in] of projection p (an index into kProjections) in a model with config c.
std::pair<int64_t, int64_t> ProjectionShape(const LlamaConfig& c, int p) {
  const int64_t E = c.n_embd, QD = c.n_head * c.head_dim, KD = c.n_head_kv * c.head_dim;
  const int64_t F = c.n_ff;
  const std::pair<int64_t, int64_t> shapes[] = {{QD, E}, {KD, E}, {KD, E}, {E, QD},
                                                {F, E},  {F, E},  {E, F}};
  return shapes[p];
}

// The [rows, cols] views a buffer is carved into, in order. Each buffer's allocation and
// EstimateMemory both read these lists, so the estimate is the allocation.
using Layout = std::vector<std::pair<int64_t, int64_t>>;

int64_t LayoutBytes(const Layout& layout) {
  int64_t floats = 0;
  for (const auto& [rows, cols] : layout) floats += (rows * cols + 15) / 16 * 16;  // as Carve
  return floats * 4;
}

// Per layer [n, n_head]: the attention log-sum-exp the backward reads.
Layout LseLayout(const LlamaConfig& c, int64_t n) {
  return Layout(static_cast<size_t>(c.n_layer), {n, c.n_head});
}

// d_res, d_norm, d_att, d_q, d_k, d_v, d_gate, d_up, d_swiglu, lora_u, lora_g (r >= 1).
Layout GradLayout(const LlamaConfig& c, int64_t n, int64_t r) {
  const int64_t E = c.n_embd, QD = c.n_head * c.head_dim, KD = c.n_head_kv * c.head_dim;
  const int64_t F = c.n_ff;
  return {{n, E}, {n, E}, {n, QD}, {n, QD}, {n, KD}, {n, KD},
          {n, F}, {n, F}, {n, F},  {n, r},  {n, r}};
}

// Rows of logits held at once: kHeadChunkBytes of them, at least one, at most the batch.
int64_t HeadChunkRows(const LlamaConfig& c, int64_t n) {
  return std::clamp<int64_t>(kHeadChunkBytes / (c.n_vocab * 4), 1, n);
}

// logits [chunk, V], normed [chunk, E], d_normed [chunk, E].
Layout HeadLayout(const LlamaConfig& c, int64_t chunk) {
  return {{chunk, c.n_vocab}, {chunk, c.n_embd}, {chunk, c.n_embd}};
}

// A [r, in], B [out, r], dA, dB, merged [out, in].
Layout LoraLayout(int64_t r, int64_t out, int64_t in) {
  return {{r, in}, {out, r}, {r, in}, {out, r}, {out, in}};
}

// The f32 weight values of a model with config c (a tied head counted once), as
// models::llama's loader shapes them.
int64_t WeightFloats(const LlamaConfig& c) {
  const int64_t E = c.n_embd, QD = c.n_head * c.head_dim, KD = c.n_head_kv * c.head_dim;
  const int64_t F = c.n_ff;
  int64_t layer = 2 * E;  // input_layernorm, post_attention_layernorm
  for (int p = 0; p < static_cast<int>(std::size(kProjections)); ++p) {
    const auto [out, in] = ProjectionShape(c, p);
    layer += out * in;
  }
  if (c.attention_bias) layer += QD + 2 * KD + E;
  if (c.qk_norm) layer += 2 * c.head_dim;
  if (c.mlp_bias) layer += 2 * F + E;
  const int64_t head = c.tie_word_embeddings ? 0 : c.n_vocab * E;
  return c.n_vocab * E + c.n_layer * layer + E + head;
}

// The projections (indices into kProjections, sorted, unique) `lora` targets.
core::StatusOr<std::vector<int>> LoraTargets(const LlamaConfig& c, const LoraOptions& lora) {
  if (lora.rank > 4096) return core::InvalidArgumentError("--lora-rank must be in [1, 4096]");
  std::vector<int> targets;
  for (const std::string& name : lora.targets) {
    if (name == "all-linear") {
      for (int p = 0; p < static_cast<int>(std::size(kProjections)); ++p) targets.push_back(p);
      continue;
    }
    int found = -1;
    for (int p = 0; p < static_cast<int>(std::size(kProjections)); ++p) {
      if (name == kProjections[p].module) found = p;
    }
    if (found < 0) {
      return core::InvalidArgumentError(
          "unknown LoRA target '" + name + "'",
          "use all-linear or q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
    }
    targets.push_back(found);
  }
  std::sort(targets.begin(), targets.end());
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  if (targets.empty()) return core::InvalidArgumentError("LoRA needs at least one target");
  for (int p : targets) {
    const auto [out, in] = ProjectionShape(c, p);
    if (lora.rank > std::min(out, in)) {
      return core::InvalidArgumentError("--lora-rank " + std::to_string(lora.rank) +
                                        " is larger than a target's dimensions (" +
                                        std::to_string(out) + " x " + std::to_string(in) + ")");
    }
  }
  return targets;
}

}  // namespace

// One LoRA-adapted projection: its factors, their gradients, and the frozen base weight they are
// merged into.
struct LoraFactors {
  int64_t layer = 0;
  int projection = 0;  // index into kProjections
  core::Buffer storage;
  core::Tensor a, b, da, db;  // A [r, in], B [out, r]
  core::Tensor base;          // the frozen W (a view of the base weights)
  core::Tensor merged;        // W + s B A: what the forward reads
};

struct LlamaTrainer::Impl {
  Activations act;
  models::llama::RopeFrequencies rope;
  std::vector<int32_t> positions;
  float attn_scale = 0;
  int64_t n_tokens = 0;  // what the buffers below are laid out for
  core::Buffer lse_buffer;
  std::vector<core::Tensor> lse;  // per layer [n, n_head]
  // Gradient workspace, reused by every layer (the backward walks one layer at a time).
  core::Buffer grad_buffer;
  core::Tensor d_res;                   // [n, E] the residual stream's gradient
  core::Tensor d_norm;                  // [n, E] gradient of attn_norm / ffn_norm
  core::Tensor d_att;                   // [n, QD]
  core::Tensor d_q, d_k, d_v;           // [n, QD], [n, KD] x2
  core::Tensor d_gate, d_up, d_swiglu;  // [n, F]
  core::Tensor lora_u, lora_g;          // [n, r] LoRA temporaries
  // The loss head's chunk.
  core::Buffer head_buffer;
  core::Tensor logits;    // [chunk, V]
  core::Tensor normed;    // [chunk, E]
  core::Tensor d_normed;  // [chunk, E]
  std::vector<float> losses;
  int64_t chunk = 0;
  // LoRA.
  ModelWeights base;  // the frozen weights (LoRA only)
  std::vector<LoraFactors> adapters;

  explicit Impl(const LlamaConfig& c) : act(Activations::Mode::kKeepAll, c) {}
};

LlamaTrainer::LlamaTrainer(const LlamaConfig& config, ModelWeights weights,
                           const kernels::Context& ctx, const LoraOptions& lora)
    : config_(config),
      weights_(std::move(weights)),
      ctx_(kernels::Context::Cpu(ctx.backend(), ctx.pool())),
      lora_(lora),
      impl_(std::make_unique<Impl>(config)) {
  // Hundreds of tokens per product: the GEMM order is several times faster than the serving
  // dot products (kernels/context.h), and as deterministic.
  ctx_.set_float_matmul(kernels::FloatMatMul::kGemm);
}

LlamaTrainer::~LlamaTrainer() = default;

const ModelWeights& LlamaTrainer::base_weights() const {
  return impl_->adapters.empty() ? weights_ : impl_->base;
}

core::StatusOr<std::unique_ptr<LlamaTrainer>> LlamaTrainer::Create(const LlamaConfig& config,
                                                                   ModelWeights weights,
                                                                   const kernels::Context& ctx,
                                                                   const LoraOptions& lora) {
  if (!weights.writable) {
    return core::InvalidArgumentError("the trainer needs owned f32 weights (OwnedF32Copy)");
  }
  if (!ctx.is_cpu()) {
    return core::UnimplementedError("training runs on the CPU backends (ref, cpu) only",
                                    "use --kernels cpu");
  }
  std::unique_ptr<LlamaTrainer> t(new LlamaTrainer(config, std::move(weights), ctx, lora));
  Impl& im = *t->impl_;
  ARLE_ASSIGN_OR_RETURN(im.rope, models::llama::ComputeRopeFrequencies(config));
  im.attn_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(config.head_dim)));

  if (lora.rank <= 0) {
    // Full fine-tuning: every tensor trains; the gradients mirror the weights (a tied head's
    // gradient is the embedding's, so both uses add into one tensor).
    ARLE_ASSIGN_OR_RETURN(t->grads_, models::llama::OwnedF32Copy(t->weights_));
    std::vector<std::pair<std::string, core::Tensor*>> values, grads;
    auto collect = [](ModelWeights& w, std::vector<std::pair<std::string, core::Tensor*>>* out) {
      models::llama::ForEachMutableWeight(w, [&](const std::string& name, core::Tensor& tensor) {
        out->push_back({name, &tensor});
      });
    };
    collect(t->weights_, &values);
    collect(t->grads_, &grads);
    ARLE_CHECK_EQ(values.size(), grads.size());
    for (size_t i = 0; i < values.size(); ++i) {
      t->params_.push_back({values[i].first, values[i].second, grads[i].second});
    }
    t->ZeroGrads();
    return t;
  }

  // LoRA: the base stays frozen; each targeted projection gets A (seeded, PEFT's default
  // kaiming-uniform bound 1/sqrt(in)) and B = 0, and the forward reads W + s B A.
  ARLE_ASSIGN_OR_RETURN(const std::vector<int> targets, LoraTargets(config, lora));
  im.base = t->weights_;
  core::Rng rng(lora.seed);
  const int64_t r = lora.rank;
  for (int64_t l = 0; l < config.n_layer; ++l) {
    for (int p : targets) {
      LoraFactors ad;
      ad.layer = l;
      ad.projection = p;
      ad.base = im.base.layers[l].*kProjections[p].weight;
      const int64_t out = ad.base.dim(0), in = ad.base.dim(1);
      ARLE_CHECK(std::make_pair(out, in) == ProjectionShape(config, p)) << ad.base.ToString();
      ARLE_ASSIGN_OR_RETURN(
          ad.storage,
          core::Buffer::TryAllocate(static_cast<size_t>(LayoutBytes(LoraLayout(r, out, in)))));
      int64_t cursor = 0;
      ad.a = Carve(ad.storage, &cursor, r, in);
      ad.b = Carve(ad.storage, &cursor, out, r);
      ad.da = Carve(ad.storage, &cursor, r, in);
      ad.db = Carve(ad.storage, &cursor, out, r);
      ad.merged = Carve(ad.storage, &cursor, out, in);
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      float* a = ad.a.data_as<float>();
      for (int64_t i = 0; i < r * in; ++i) {
        a[i] = static_cast<float>((2.0 * rng.UniformDouble() - 1.0) * bound);
      }
      im.adapters.push_back(std::move(ad));
    }
  }
  for (LoraFactors& ad : im.adapters) {
    const std::string prefix = "base_model.model.model.layers." + std::to_string(ad.layer) + "." +
                               kProjections[ad.projection].block + "." +
                               kProjections[ad.projection].module;
    t->params_.push_back({prefix + ".lora_A.weight", &ad.a, &ad.da});
    t->params_.push_back({prefix + ".lora_B.weight", &ad.b, &ad.db});
    // The forward reads the merged copy.
    t->weights_.layers[ad.layer].*kProjections[ad.projection].weight = ad.merged;
  }
  t->MergeLora();
  t->ZeroGrads();
  return t;
}

core::StatusOr<TrainMemory> LlamaTrainer::EstimateMemory(const LlamaConfig& c, int64_t n,
                                                         const LoraOptions& lora) {
  if (n < 1) return core::InvalidArgumentError("the tokens per micro-batch must be >= 1");
  if (lora.rank < 0) return core::InvalidArgumentError("--lora-rank must be >= 0");
  TrainMemory m;
  m.weights = WeightFloats(c) * 4;
  if (lora.rank == 0) {
    m.gradients = m.weights;  // OwnedF32Copy of the weights (a tied head stays tied)
    m.trainable_params = WeightFloats(c);
  } else {
    ARLE_ASSIGN_OR_RETURN(const std::vector<int> targets, LoraTargets(c, lora));
    const int64_t r = lora.rank;
    for (int p : targets) {
      const auto [out, in] = ProjectionShape(c, p);
      const int64_t grads = (r * in + out * r) * 4;  // dA, dB as tensors; padding is weights'
      m.weights += c.n_layer * (LayoutBytes(LoraLayout(r, out, in)) - grads);
      m.gradients += c.n_layer * grads;
      m.trainable_params += c.n_layer * (r * in + out * r);
      m.lora_merge = std::max(m.lora_merge, out * in * 4);
    }
  }
  m.optimizer = 2 * m.trainable_params * 4;  // AdamW: m and v
  m.activations = models::llama::Activations::BufferBytes(Activations::Mode::kKeepAll, c, n);
  m.attention_lse = LayoutBytes(LseLayout(c, n));
  m.grad_workspace = LayoutBytes(GradLayout(c, n, std::max<int64_t>(lora.rank, 1)));
  m.head_chunk_rows = HeadChunkRows(c, n);
  m.loss_head = LayoutBytes(HeadLayout(c, m.head_chunk_rows)) + m.head_chunk_rows * 4;  // + losses
  return m;
}

TrainMemory LlamaTrainer::AllocatedMemory() const {
  const Impl& im = *impl_;
  TrainMemory m;
  models::llama::ForEachWeight(
      base_weights(), [&](const std::string&, const core::Tensor& t) { m.weights += t.nbytes(); });
  if (im.adapters.empty()) {
    models::llama::ForEachWeight(
        grads_, [&](const std::string&, const core::Tensor& t) { m.gradients += t.nbytes(); });
  }
  for (const LoraFactors& ad : im.adapters) {
    const int64_t grads = ad.da.nbytes() + ad.db.nbytes();
    m.weights += static_cast<int64_t>(ad.storage.size()) - grads;
    m.gradients += grads;
  }
  for (const TrainParam& p : params_) m.trainable_params += p.value->numel();
  m.activations = im.act.buffer_bytes();
  m.attention_lse = static_cast<int64_t>(im.lse_buffer.size());
  m.grad_workspace = static_cast<int64_t>(im.grad_buffer.size());
  m.head_chunk_rows = im.chunk;
  m.loss_head = static_cast<int64_t>(im.head_buffer.size() + im.losses.size() * sizeof(float));
  return m;
}

void LlamaTrainer::ZeroGrads() {
  for (TrainParam& p : params_) Zero(*p.grad);
}

void LlamaTrainer::MergeLora() {
  const float s = static_cast<float>(lora_.alpha / static_cast<double>(lora_.rank));
  for (LoraFactors& ad : impl_->adapters) {
    // PEFT's merge in f32 (peft.h), copied into the tensor the forward reads.
    const core::Buffer merged = MergeLoraWeight(ad.base, ad.a, ad.b, s);
    std::memcpy(ad.merged.data(), merged.data(), static_cast<size_t>(ad.merged.nbytes()));
  }
}

core::Status LlamaTrainer::CheckBatch(const Batch& batch) const {
  const int64_t n = batch.n_seq * batch.seq_len;
  if (batch.n_seq <= 0 || batch.seq_len <= 0 || static_cast<int64_t>(batch.inputs.size()) != n ||
      static_cast<int64_t>(batch.targets.size()) != n) {
    return core::InvalidArgumentError("a batch needs n_seq * seq_len inputs and targets");
  }
  if (!batch.token_weights.empty() && static_cast<int64_t>(batch.token_weights.size()) != n) {
    return core::InvalidArgumentError("a batch's token_weights need one weight per position");
  }
  for (const float w : batch.token_weights) {
    if (!std::isfinite(w)) return core::InvalidArgumentError("a token weight is not finite");
  }
  if (!(batch.temperature > 0) || !std::isfinite(batch.temperature)) {
    return core::InvalidArgumentError("a batch's temperature must be a positive number");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (batch.inputs[i] < 0 || batch.inputs[i] >= config_.n_vocab) {
      return core::InvalidArgumentError("input token " + std::to_string(batch.inputs[i]) +
                                        " is outside the vocabulary");
    }
    if (batch.targets[i] != kernels::kIgnoreIndex &&
        (batch.targets[i] < 0 || batch.targets[i] >= config_.n_vocab)) {
      return core::InvalidArgumentError("target token " + std::to_string(batch.targets[i]) +
                                        " is outside the vocabulary");
    }
  }
  return core::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Forward: embedding, the layers' two blocks (models/llama/llama_blocks.h), then the loss head.
// ---------------------------------------------------------------------------------------------

core::Status LlamaTrainer::ForwardLayers(const Batch& batch) {
  ARLE_RETURN_IF_ERROR(CheckBatch(batch));
  Impl& im = *impl_;
  const LlamaConfig& c = config_;
  const int64_t n = batch.n_seq * batch.seq_len;
  const int64_t E = c.n_embd, QD = c.n_head * c.head_dim, KD = c.n_head_kv * c.head_dim;
  const int64_t F = c.n_ff, V = c.n_vocab;
  ARLE_RETURN_IF_ERROR(im.act.Reserve(n));
  if (n != im.n_tokens) {
    const int64_t r = std::max<int64_t>(lora_.rank, 1);
    ARLE_ASSIGN_OR_RETURN(im.lse_buffer, core::Buffer::TryAllocate(
                                             static_cast<size_t>(LayoutBytes(LseLayout(c, n)))));
    int64_t cursor = 0;
    im.lse.clear();
    for (int64_t l = 0; l < c.n_layer; ++l) {
      im.lse.push_back(Carve(im.lse_buffer, &cursor, n, c.n_head));
    }
    ARLE_ASSIGN_OR_RETURN(
        im.grad_buffer,
        core::Buffer::TryAllocate(static_cast<size_t>(LayoutBytes(GradLayout(c, n, r)))));
    cursor = 0;
    im.d_res = Carve(im.grad_buffer, &cursor, n, E);
    im.d_norm = Carve(im.grad_buffer, &cursor, n, E);
    im.d_att = Carve(im.grad_buffer, &cursor, n, QD);
    im.d_q = Carve(im.grad_buffer, &cursor, n, QD);
    im.d_k = Carve(im.grad_buffer, &cursor, n, KD);
    im.d_v = Carve(im.grad_buffer, &cursor, n, KD);
    im.d_gate = Carve(im.grad_buffer, &cursor, n, F);
    im.d_up = Carve(im.grad_buffer, &cursor, n, F);
    im.d_swiglu = Carve(im.grad_buffer, &cursor, n, F);
    im.lora_u = Carve(im.grad_buffer, &cursor, n, r);
    im.lora_g = Carve(im.grad_buffer, &cursor, n, r);
    im.chunk = HeadChunkRows(c, n);
    ARLE_ASSIGN_OR_RETURN(
        im.head_buffer,
        core::Buffer::TryAllocate(static_cast<size_t>(LayoutBytes(HeadLayout(c, im.chunk)))));
    cursor = 0;
    im.logits = Carve(im.head_buffer, &cursor, im.chunk, V);
    im.normed = Carve(im.head_buffer, &cursor, im.chunk, E);
    im.d_normed = Carve(im.head_buffer, &cursor, im.chunk, E);
    im.losses.assign(static_cast<size_t>(im.chunk), 0.0f);
    im.n_tokens = n;
  }
  im.positions.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) im.positions[i] = static_cast<int32_t>(i % batch.seq_len);

  kernels::Embedding(ctx_, {.table = &weights_.embed, .ids = batch.inputs, .out = &im.act.embd()});
  kernels::RopeTable(ctx_, {.positions = im.positions,
                            .inv_freq = im.rope.inv_freq,
                            .attention_scaling = im.rope.attention_scaling,
                            .cos = &im.act.rope_cos(),
                            .sin = &im.act.rope_sin()});
  models::TensorDump no_dump("");
  auto attend = [&](int64_t l, const core::Tensor& q3, const core::Tensor& k3,
                    const core::Tensor& v3, core::Tensor& att3) {
    kernels::CausalAttention(ctx_, {.q = &q3,
                                    .k = &k3,
                                    .v = &v3,
                                    .n_seq = batch.n_seq,
                                    .seq_len = batch.seq_len,
                                    .scale = im.attn_scale,
                                    .out = &att3,
                                    .lse = &im.lse[l]});
  };
  for (int64_t l = 0; l < c.n_layer; ++l) {
    LayerActivations& a = im.act.layer(l);
    models::llama::AttentionBlock(ctx_, c, weights_.layers[l], l, a, im.act.rope_cos(),
                                  im.act.rope_sin(), attend, no_dump);
    models::llama::MlpBlock(ctx_, c, weights_.layers[l], l, a, /*fused=*/false, no_dump);
  }
  return core::OkStatus();
}

core::Status LlamaTrainer::ForwardLogits(const Batch& batch, const LogitsRowsFn& on_rows) {
  ARLE_RETURN_IF_ERROR(ForwardLayers(batch));
  Impl& im = *impl_;
  const LlamaConfig& c = config_;
  const int64_t n = batch.n_seq * batch.seq_len;
  const core::Tensor& hidden = im.act.layer(c.n_layer - 1).out;
  const float eps = static_cast<float>(c.norm_eps);
  std::vector<int64_t> positions;
  for (int64_t i = 0; i < n; ++i) {
    if (batch.targets[i] != kernels::kIgnoreIndex) positions.push_back(i);
  }
  // Only the counted rows go through the head: gathered a chunk at a time into d_normed (free in
  // a forward), each row's product the same as in place.
  const int64_t n_rows = static_cast<int64_t>(positions.size());
  for (int64_t r0 = 0; r0 < n_rows; r0 += im.chunk) {
    const int64_t rows = std::min(im.chunk, n_rows - r0);
    const std::span<const int64_t> chunk_positions(positions.data() + r0, rows);
    core::Tensor h = im.d_normed.Slice(0, rows);
    kernels::GatherRows(ctx_, {.x = &hidden, .rows = chunk_positions, .out = &h});
    core::Tensor normed = im.normed.Slice(0, rows);
    core::Tensor logits = im.logits.Slice(0, rows);
    const kernels::InputRmsNorm out_norm{&weights_.out_norm, eps, &normed};
    const kernels::MatMulOutput head{&weights_.lm_head, nullptr, &logits};
    kernels::MatMul(ctx_, {.x = &h, .outputs = {&head, 1}, .norm = &out_norm});
    on_rows(chunk_positions, logits);
  }
  return core::OkStatus();
}

core::StatusOr<LossSum> LlamaTrainer::Forward(const Batch& batch, bool backward,
                                              double grad_scale) {
  ARLE_RETURN_IF_ERROR(ForwardLayers(batch));
  Impl& im = *impl_;
  const LlamaConfig& c = config_;
  const int64_t n = batch.n_seq * batch.seq_len;

  // The loss head, chunk by chunk: final norm, logits, cross-entropy (whose output is the
  // logits' gradient) and, when training, the head's backward into d_res at once, so a chunk's
  // logits are dropped as soon as they are used.
  const core::Tensor& hidden = im.act.layer(c.n_layer - 1).out;
  const bool train_head = backward && impl_->adapters.empty();
  const float eps = static_cast<float>(c.norm_eps);
  LossSum total;
  for (int64_t r0 = 0; r0 < n; r0 += im.chunk) {
    const int64_t rows = std::min(im.chunk, n - r0);
    const core::Tensor h = hidden.Slice(r0, r0 + rows);
    core::Tensor normed = im.normed.Slice(0, rows);
    core::Tensor logits = im.logits.Slice(0, rows);
    const kernels::InputRmsNorm out_norm{&weights_.out_norm, eps, &normed};
    const kernels::MatMulOutput head{&weights_.lm_head, nullptr, &logits};
    kernels::MatMul(ctx_, {.x = &h, .outputs = {&head, 1}, .norm = &out_norm});
    const std::span<const int32_t> targets = batch.targets.subspan(r0, rows);
    kernels::CrossEntropy(
        ctx_, {.logits = &logits,
               .targets = targets,
               .grad_scale = static_cast<float>(grad_scale),
               .losses = std::span<float>(im.losses.data(), rows),
               .row_scales = batch.token_weights.empty() ? std::span<const float>()
                                                         : batch.token_weights.subspan(r0, rows),
               .temperature = batch.temperature});
    for (int64_t i = 0; i < rows; ++i) {
      if (targets[i] == kernels::kIgnoreIndex) continue;
      total.sum += im.losses[i];
      ++total.n_tokens;
    }
    if (!backward) continue;
    // logits = normed * lm_head^T; normed = RmsNorm(h) * out_norm.
    core::Tensor d_normed = im.d_normed.Slice(0, rows);
    kernels::MatMulBackwardInput(ctx_, {.dy = &logits, .w = &weights_.lm_head, .dx = &d_normed});
    if (train_head) {
      kernels::MatMulBackwardWeight(ctx_, {.dy = &logits, .x = &normed, .dw = &grads_.lm_head});
    }
    core::Tensor d_h = im.d_res.Slice(r0, r0 + rows);
    kernels::RmsNormBackward(ctx_, {.x = &h,
                                    .w = &weights_.out_norm,
                                    .eps = eps,
                                    .dy = &d_normed,
                                    .dx = &d_h,
                                    .accumulate_dx = false,
                                    .dw = train_head ? &grads_.out_norm : nullptr});
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Backward: the layers in reverse, each block's gradient mirroring its forward above.
// ---------------------------------------------------------------------------------------------

namespace {

// What the backward of one layer needs besides its activations.
struct BlockGrads {
  const kernels::Context& ctx;
  const LlamaConfig& c;
  const LayerWeights& w;
  LayerWeights* g;  // null: the layer's weights are frozen (LoRA)
};

// y = x * w^T: dx (+)= dy * w, and dw += dy^T * x when the weight trains.
void LinearBackward(const BlockGrads& b, const core::Tensor& x, const core::Tensor& w,
                    core::Tensor* dw, core::Tensor* dbias, const core::Tensor& dy, core::Tensor& dx,
                    bool accumulate_dx) {
  kernels::MatMulBackwardInput(b.ctx, {.dy = &dy, .w = &w, .dx = &dx, .accumulate = accumulate_dx});
  if (dw != nullptr) {
    kernels::MatMulBackwardWeight(b.ctx, {.dy = &dy, .x = &x, .dw = dw, .dbias = dbias});
  }
}

}  // namespace

void LlamaTrainer::Backward(const Batch& batch) {
  Impl& im = *impl_;
  const LlamaConfig& c = config_;
  const int64_t n = batch.n_seq * batch.seq_len, hd = c.head_dim;
  const float eps = static_cast<float>(c.norm_eps);
  const bool full = im.adapters.empty();
  // The LoRA gradients of projection p of layer l, from its input x and output gradient dy:
  // with s = alpha / r, dB += s dy^T (x A^T) and dA += s (dy B)^T x.
  auto lora_grads = [&](int64_t l, int p, const core::Tensor& x, const core::Tensor& dy) {
    const float s = static_cast<float>(lora_.alpha / static_cast<double>(lora_.rank));
    for (LoraFactors& ad : im.adapters) {
      if (ad.layer != l || ad.projection != p) continue;
      core::Tensor u = im.lora_u.Reshape({n, lora_.rank});
      core::Tensor g = im.lora_g.Reshape({n, lora_.rank});
      const kernels::MatMulOutput xa{&ad.a, nullptr, &u};
      kernels::MatMul(ctx_, {.x = &x, .outputs = {&xa, 1}});
      Scale(u, s);
      kernels::MatMulBackwardWeight(ctx_, {.dy = &dy, .x = &u, .dw = &ad.db});
      kernels::MatMulBackwardInput(ctx_, {.dy = &dy, .w = &ad.b, .dx = &g});
      Scale(g, s);
      kernels::MatMulBackwardWeight(ctx_, {.dy = &g, .x = &x, .dw = &ad.da});
    }
  };
  // im.d_res holds d(out of the last layer); each layer turns d(out) into d(x) in place.
  for (int64_t l = c.n_layer - 1; l >= 0; --l) {
    const LayerActivations& a = im.act.layer(l);
    const LayerWeights& w = weights_.layers[l];
    LayerWeights* g = full ? &grads_.layers[l] : nullptr;
    const BlockGrads b{ctx_, c, w, g};

    // MLP block backward: out = ffn_inp + down(swiglu(gate(ffn_norm), up(ffn_norm))).
    // d_ffn_out = d_res (the residual passes d_res to ffn_inp unchanged).
    LinearBackward(b, a.swiglu, w.w_down, g ? &g->w_down : nullptr, g ? OrNull(g->b_down) : nullptr,
                   im.d_res, im.d_swiglu, /*accumulate_dx=*/false);
    lora_grads(l, 6, a.swiglu, im.d_res);
    kernels::SwiGluBackward(ctx_, {.gate = &a.gate,
                                   .up = &a.up,
                                   .dswiglu = &im.d_swiglu,
                                   .dgate = &im.d_gate,
                                   .dup = &im.d_up});
    LinearBackward(b, a.ffn_norm, w.w_gate, g ? &g->w_gate : nullptr,
                   g ? OrNull(g->b_gate) : nullptr, im.d_gate, im.d_norm, false);
    LinearBackward(b, a.ffn_norm, w.w_up, g ? &g->w_up : nullptr, g ? OrNull(g->b_up) : nullptr,
                   im.d_up, im.d_norm, /*accumulate_dx=*/true);
    lora_grads(l, 4, a.ffn_norm, im.d_gate);
    lora_grads(l, 5, a.ffn_norm, im.d_up);
    // ffn_norm = RmsNorm(ffn_inp): its gradient joins the residual's.
    kernels::RmsNormBackward(ctx_, {.x = &a.ffn_inp,
                                    .w = &w.ffn_norm,
                                    .eps = eps,
                                    .dy = &im.d_norm,
                                    .dx = &im.d_res,
                                    .accumulate_dx = true,
                                    .dw = g ? &g->ffn_norm : nullptr});

    // Attention block backward: ffn_inp = x + o_proj(attend(rope(qk_norm(q, k)), v)).
    LinearBackward(b, a.att, w.wo, g ? &g->wo : nullptr, g ? OrNull(g->bo) : nullptr, im.d_res,
                   im.d_att, false);
    lora_grads(l, 3, a.att, im.d_res);
    const core::Tensor q3 = a.q_rope.Reshape({n, c.n_head, hd});
    const core::Tensor k3 = a.k_rope.Reshape({n, c.n_head_kv, hd});
    const core::Tensor v3 = a.v.Reshape({n, c.n_head_kv, hd});
    const core::Tensor att3 = a.att.Reshape({n, c.n_head, hd});
    const core::Tensor d_att3 = im.d_att.Reshape({n, c.n_head, hd});
    core::Tensor d_q3 = im.d_q.Reshape({n, c.n_head, hd});
    core::Tensor d_k3 = im.d_k.Reshape({n, c.n_head_kv, hd});
    core::Tensor d_v3 = im.d_v.Reshape({n, c.n_head_kv, hd});
    kernels::CausalAttentionBackward(ctx_, {.q = &q3,
                                            .k = &k3,
                                            .v = &v3,
                                            .out = &att3,
                                            .lse = &im.lse[l],
                                            .dout = &d_att3,
                                            .n_seq = batch.n_seq,
                                            .seq_len = batch.seq_len,
                                            .scale = im.attn_scale,
                                            .dq = &d_q3,
                                            .dk = &d_k3,
                                            .dv = &d_v3});
    kernels::ApplyRopeBackward(
        ctx_, {.dy = &d_q3, .cos = &im.act.rope_cos(), .sin = &im.act.rope_sin(), .dx = &d_q3});
    kernels::ApplyRopeBackward(
        ctx_, {.dy = &d_k3, .cos = &im.act.rope_cos(), .sin = &im.act.rope_sin(), .dx = &d_k3});
    if (c.qk_norm) {
      const core::Tensor q_heads = a.q.Reshape({n * c.n_head, hd});
      const core::Tensor k_heads = a.k.Reshape({n * c.n_head_kv, hd});
      core::Tensor dq_heads = im.d_q.Reshape({n * c.n_head, hd});
      core::Tensor dk_heads = im.d_k.Reshape({n * c.n_head_kv, hd});
      kernels::RmsNormBackward(ctx_, {.x = &q_heads,
                                      .w = &w.q_norm,
                                      .eps = eps,
                                      .dy = &dq_heads,
                                      .dx = &dq_heads,
                                      .dw = g ? &g->q_norm : nullptr});
      kernels::RmsNormBackward(ctx_, {.x = &k_heads,
                                      .w = &w.k_norm,
                                      .eps = eps,
                                      .dy = &dk_heads,
                                      .dx = &dk_heads,
                                      .dw = g ? &g->k_norm : nullptr});
    }
    LinearBackward(b, a.attn_norm, w.wq, g ? &g->wq : nullptr, g ? OrNull(g->bq) : nullptr, im.d_q,
                   im.d_norm, false);
    LinearBackward(b, a.attn_norm, w.wk, g ? &g->wk : nullptr, g ? OrNull(g->bk) : nullptr, im.d_k,
                   im.d_norm, true);
    LinearBackward(b, a.attn_norm, w.wv, g ? &g->wv : nullptr, g ? OrNull(g->bv) : nullptr, im.d_v,
                   im.d_norm, true);
    lora_grads(l, 0, a.attn_norm, im.d_q);
    lora_grads(l, 1, a.attn_norm, im.d_k);
    lora_grads(l, 2, a.attn_norm, im.d_v);
    kernels::RmsNormBackward(ctx_, {.x = &a.x,
                                    .w = &w.attn_norm,
                                    .eps = eps,
                                    .dy = &im.d_norm,
                                    .dx = &im.d_res,
                                    .accumulate_dx = true,
                                    .dw = g ? &g->attn_norm : nullptr});
  }
  if (full) {
    kernels::EmbeddingBackward(ctx_,
                               {.dout = &im.d_res, .ids = batch.inputs, .dtable = &grads_.embed});
  }
}

core::StatusOr<LossSum> LlamaTrainer::ForwardBackward(const Batch& batch, double grad_scale) {
  ARLE_ASSIGN_OR_RETURN(LossSum loss, Forward(batch, /*backward=*/true, grad_scale));
  Backward(batch);
  return loss;
}

core::StatusOr<LossSum> LlamaTrainer::Loss(const Batch& batch) {
  return Forward(batch, /*backward=*/false, /*grad_scale=*/0.0);
}

}  // namespace arle::train
