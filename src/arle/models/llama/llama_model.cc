// LlamaModel: loading, the state it asks for, and the forward step: validate the batch, lay out
// positions and KV slots, run the layer blocks over the reused workspace, then the LM head over
// the rows whose logits were asked for.
#include "arle/models/llama/llama_model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "arle/core/logging.h"
#include "arle/io/safetensors.h"
#include "arle/kernels/attention.h"
#include "arle/kernels/elementwise.h"
#include "arle/kernels/embedding.h"
#include "arle/kernels/matmul.h"
#include "arle/kernels/paged_attention.h"
#include "arle/kernels/rope.h"
#include "arle/models/standard_state.h"

namespace arle::models::llama {
namespace {

// "bf16", "q4_k+q6_k": the stored dtypes of the weight matrices, most bytes first (as
// llama-bench names a file's type; 1-D norm weights are f32 in GGUF files whatever the type).
std::string WeightFormat(const ModelWeights& w, int64_t* total_bytes, int64_t* n_params) {
  std::map<std::string, int64_t> bytes;
  *total_bytes = 0;
  *n_params = 0;
  ForEachWeight(w, [&](const std::string&, const core::Tensor& t) {
    if (t.rank() >= 2) bytes[std::string(core::DTypeName(t.dtype()))] += t.nbytes();
    *total_bytes += t.nbytes();
    *n_params += t.numel();
  });
  std::vector<std::pair<int64_t, std::string>> order;
  for (const auto& [name, b] : bytes) order.emplace_back(-b, name);
  std::sort(order.begin(), order.end());
  std::string label;
  for (const auto& [neg, name] : order) label += (label.empty() ? "" : "+") + name;
  return label;
}

}  // namespace

LlamaModel::~LlamaModel() = default;

core::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::LoadHf(const std::string& dir,
                                                               const LoadOptions& options) {
  ARLE_ASSIGN_OR_RETURN(LlamaConfig config, LoadHfConfig(dir));
  ARLE_ASSIGN_OR_RETURN(io::SafetensorsModel st, io::SafetensorsModel::Open(dir));
  auto shared = std::make_shared<io::SafetensorsModel>(std::move(st));
  auto get = [shared](const std::string& name) { return shared->GetTensor(name); };
  auto model = FromTensors(config, get, shared, options);
  if (!model.ok()) return model.status().WithContext(dir);
  return model;
}

core::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::FromTensors(const LlamaConfig& config,
                                                                    const TensorGetter& get,
                                                                    std::shared_ptr<void> owner,
                                                                    const LoadOptions& options) {
  ARLE_ASSIGN_OR_RETURN(ModelWeights weights, BindWeights(config, get, "model weights"));
  weights.owner = std::move(owner);
  return FromWeights(config, std::move(weights), options);
}

core::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::FromWeights(const LlamaConfig& config,
                                                                    ModelWeights weights,
                                                                    const LoadOptions& options) {
  if (config.n_vocab <= 0 || config.n_embd <= 0 || config.n_layer <= 0 || config.n_head <= 0 ||
      config.n_head_kv <= 0 || config.head_dim <= 0 || config.n_ff <= 0 ||
      config.n_head % config.n_head_kv != 0) {
    return core::InvalidArgumentError(
        "model config has non-positive or inconsistent sizes (n_vocab, n_embd, n_layer, n_head, "
        "n_head_kv, head_dim, n_ff)");
  }
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
  std::unique_ptr<LlamaModel> m(new LlamaModel());
  m->config_ = config;
  ARLE_ASSIGN_OR_RETURN(m->rope_, ComputeRopeFrequencies(config));
  if (options.writable_weights && !weights.writable) {
    ARLE_ASSIGN_OR_RETURN(weights, OwnedF32Copy(weights));
  }
  m->weights_ = std::move(weights);
  m->pool_ = std::make_unique<core::ThreadPool>(options.n_threads);
  m->ctx_ = std::make_unique<kernels::Context>(kernels::Context::Cpu(backend, *m->pool_));
  m->ctx_->set_float_matmul(options.float_matmul);
  m->workspace_ = Activations(Activations::Mode::kWorkspace, config);
  // transformers: scaling = head_dim ** -0.5 (a Python double, applied in f32).
  m->attn_scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(config.head_dim)));
  std::string dump_dir = options.dump_dir;
  if (dump_dir.empty()) {
    if (const char* env = std::getenv("ARLE_DUMP_DIR"); env != nullptr) dump_dir = env;
  }
  m->dump_ = TensorDump(dump_dir);

  ModelInfo& info = m->info_;
  info.family = "llama";
  info.architecture = config.hf_architecture.empty()
                          ? std::string(HfArchitectureName(config.arch))
                          : config.hf_architecture;
  info.n_vocab = config.n_vocab;
  info.n_ctx_train = config.n_ctx_train;
  info.n_layer = config.n_layer;
  info.n_embd = config.n_embd;
  info.eos_token_ids = config.eos_token_ids;
  info.weight_format = WeightFormat(m->weights_, &info.weight_bytes, &info.n_params);
  // A decode step gathers one embedding row; only a tied table is read whole (as the LM head).
  const ModelWeights& w = m->weights_;
  info.decode_weight_bytes =
      info.weight_bytes - (w.embed.data() != w.lm_head.data() ? w.embed.nbytes() : 0);
  m->state_spec_.layers.assign(static_cast<size_t>(config.n_layer),
                               LayerStateSpec{LayerStateKind::kAttention, config.n_head_kv,
                                              config.head_dim, 0});
  ARLE_LOG_DEBUG("model: {} layers, n_embd {}, {} heads ({} kv), {} threads, {} kernels",
                 config.n_layer, config.n_embd, config.n_head, config.n_head_kv, m->pool_->size(),
                 kernels::BackendName(backend));
  return m;
}

core::Status LlamaModel::SetWeights(std::string_view config_json,
                                    std::span<const NamedWeight> weights) {
  ARLE_ASSIGN_OR_RETURN(LlamaConfig theirs, ParseHfConfig(config_json, "the update's config"));
  if (const std::string diff = ConfigDifference(config_, theirs); !diff.empty()) {
    return core::InvalidArgumentError("weight update: the config does not match this model's (" +
                                      diff + ": this model's value first)");
  }
  return CopyWeightsFrom(weights, weights_);
}

core::StatusOr<std::unique_ptr<ModelState>> LlamaModel::NewState(const StateSizes& sizes) const {
  ARLE_ASSIGN_OR_RETURN(std::unique_ptr<StandardState> state,
                        StandardState::Create(state_spec_, sizes, *ctx_));
  return std::unique_ptr<ModelState>(std::move(state));
}

core::Status LlamaModel::CheckTokens(std::span<const int32_t> tokens) const {
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

core::Status LlamaModel::Forward(std::span<const int32_t> tokens,
                                 std::span<const StepSequence> sequences, ModelState& model_state,
                                 std::vector<float>* logits) {
  ARLE_RETURN_IF_ERROR(CheckTokens(tokens));
  auto* state = dynamic_cast<StandardState*>(&model_state);
  ARLE_CHECK(state != nullptr && state->spec().layers.size() == state_spec_.layers.size() &&
             state->kv_layer(0).n_head_kv == config_.n_head_kv &&
             state->kv_layer(0).head_dim == config_.head_dim)
      << "model state made for another model (NewState of this model makes a matching one)";
  const int64_t n = static_cast<int64_t>(tokens.size());
  positions_.resize(n);
  slots_.resize(n);
  block_tables_.resize(n);
  logit_rows_.clear();
  const int64_t bs = state->sizes().block_size, n_blocks = state->sizes().n_blocks;
  int64_t next = 0;
  for (size_t s = 0; s < sequences.size(); ++s) {
    const StepSequence& seq = sequences[s];
    if (seq.token_begin != next || seq.n_tokens <= 0 || seq.n_past < 0) {
      return core::InvalidArgumentError("batch: sequence " + std::to_string(s) +
                                        " does not continue the token list in order");
    }
    if (!seq.snapshots.empty()) {
      return core::InvalidArgumentError("batch: sequence " + std::to_string(s) +
                                        " asks for state snapshots; this model keeps none");
    }
    const int64_t n_rows = seq.n_past + seq.n_tokens;
    if (static_cast<int64_t>(seq.block_table.size()) * bs < n_rows) {
      return core::InvalidArgumentError("batch: sequence " + std::to_string(s) + " has " +
                                        std::to_string(seq.block_table.size()) +
                                        " blocks for " + std::to_string(n_rows) + " rows");
    }
    for (int64_t i = 0; i < (n_rows + bs - 1) / bs; ++i) {
      if (seq.block_table[i] < 0 || seq.block_table[i] >= n_blocks) {
        return core::InvalidArgumentError("batch: block id " +
                                          std::to_string(seq.block_table[i]) + " out of range");
      }
    }
    for (int64_t i = 0; i < seq.n_tokens; ++i) {
      const int64_t t = seq.token_begin + i, pos = seq.n_past + i;
      positions_[t] = static_cast<int32_t>(pos);
      slots_[t] = static_cast<int64_t>(seq.block_table[pos / bs]) * bs + pos % bs;
      block_tables_[t] = seq.block_table.data();
    }
    if (seq.n_logits < 0 || seq.n_logits > seq.n_tokens) {
      return core::InvalidArgumentError("batch: sequence " + std::to_string(s) + " asks for " +
                                        std::to_string(seq.n_logits) + " logit rows of " +
                                        std::to_string(seq.n_tokens) + " tokens");
    }
    for (int64_t t = seq.token_begin + seq.n_tokens - seq.n_logits;
         t < seq.token_begin + seq.n_tokens; ++t) {
      logit_rows_.push_back(t);
    }
    next += seq.n_tokens;
  }
  if (next != n) {
    return core::InvalidArgumentError("batch: the sequences cover " + std::to_string(next) +
                                      " of " + std::to_string(n) + " tokens");
  }
  ARLE_RETURN_IF_ERROR(workspace_.Reserve(n));
  const std::span<const int32_t> positions(positions_.data(), n);
  const std::span<const int64_t> slots(slots_.data(), n);
  const std::span<const int32_t* const> tables(block_tables_.data(), n);
  auto attend = [&](int64_t l, const core::Tensor& q3, const core::Tensor& k3,
                    const core::Tensor& v3, core::Tensor& att3) {
    const kernels::PagedKvLayer& layer = state->kv_layer(l);
    kernels::WritePagedKv(*ctx_, {.k_new = &k3, .v_new = &v3, .slots = slots, .layer = &layer});
    kernels::PagedAttention(*ctx_, {.q = &q3, .layer = &layer, .block_tables = tables,
                                    .positions = positions, .scale = attn_scale_, .out = &att3});
  };
  dump_.Begin(n_forward_++, /*n_past=*/positions_[0], n);
  RunLayers(tokens, positions, attend, workspace_);
  Logits(workspace_, workspace_.layer(config_.n_layer - 1).out, logit_rows_, logits);
  return dump_.End();
}

void LlamaModel::RunLayers(std::span<const int32_t> tokens, std::span<const int32_t> positions,
                           const AttendFn& attend, Activations& act) {
  const kernels::Context& ctx = *ctx_;
  kernels::Embedding(ctx, {.table = &weights_.embed, .ids = tokens, .out = &act.embd()});
  dump_.Add("inp_embd", act.embd());
  kernels::RopeTable(ctx, {.positions = positions, .inv_freq = rope_.inv_freq,
                           .attention_scaling = rope_.attention_scaling, .cos = &act.rope_cos(),
                           .sin = &act.rope_sin()});
  // The fused gate/up/SwiGLU kernel overwrites the gate projection: kept activations (and dumps,
  // which show gate and up) take the unfused twins, which give the same bits.
  const bool fused = act.mode() == Activations::Mode::kWorkspace && !dump_.enabled();
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    LayerActivations& a = act.layer(l);
    AttentionBlock(ctx, config_, weights_.layers[l], l, a, act.rope_cos(), act.rope_sin(), attend,
                   dump_);
    MlpBlock(ctx, config_, weights_.layers[l], l, a, fused, dump_);
  }
}

void LlamaModel::Logits(Activations& act, const core::Tensor& hidden,
                        std::span<const int64_t> rows, std::vector<float>* logits) {
  const kernels::Context& ctx = *ctx_;
  const int64_t n = hidden.dim(0), n_rows = static_cast<int64_t>(rows.size());
  logits->resize(static_cast<size_t>(n_rows * config_.n_vocab));
  if (n_rows == 0) return;
  // A contiguous tail is used in place; scattered rows (one per sequence of a step) are gathered.
  const bool tail = rows.back() == n - 1 && rows.front() == n - n_rows;
  core::Tensor x_rows = hidden.Slice(n - n_rows, n);
  if (!tail) {
    x_rows = act.final_rows().Slice(0, n_rows);
    kernels::GatherRows(ctx, {.x = &hidden, .rows = rows, .out = &x_rows});
  }
  core::Tensor normed = act.final_norm().Slice(0, n_rows);
  core::Tensor out(logits->data(), core::DType::kF32, {n_rows, config_.n_vocab});
  const kernels::InputRmsNorm out_norm{&weights_.out_norm, static_cast<float>(config_.norm_eps),
                                       &normed};
  const kernels::MatMulOutput lm_head{&weights_.lm_head, nullptr, &out};
  kernels::MatMul(ctx, {.x = &x_rows, .outputs = {&lm_head, 1}, .norm = &out_norm});
  dump_.Add("result_norm", normed);
  dump_.Add("result_output", out);
}

}  // namespace arle::models::llama
