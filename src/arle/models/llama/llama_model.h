// LlamaModel: the Llama family (Llama and Qwen3; one forward with switches from LlamaConfig)
// behind the models::Model interface, on the kernels of its context, with weights used in place
// from the mapped files (or owned, writable copies). Every layer is attention + gated MLP, so its
// state is paged K/V in every layer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "arle/core/status.h"
#include "arle/core/tensor.h"
#include "arle/core/thread_pool.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/models/llama/llama_blocks.h"
#include "arle/models/llama/llama_weights.h"
#include "arle/models/model.h"
#include "arle/models/llama/llama_rope.h"
#include "arle/models/tensor_dump.h"

namespace arle::models::llama {

class LlamaModel final : public Model {
 public:
  // A Hugging Face directory (config.json + model.safetensors or a sharded index). Errors name
  // the file and the problem (missing tensor, wrong shape, dtype).
  static core::StatusOr<std::unique_ptr<LlamaModel>> LoadHf(const std::string& dir,
                                                            const LoadOptions& options = {});
  // A model from a config and bound weights (views kept alive by weights.owner): the GGUF loader,
  // the built-in model, tests, and trainers with owned copies.
  static core::StatusOr<std::unique_ptr<LlamaModel>> FromWeights(const LlamaConfig& config,
                                                                 ModelWeights weights,
                                                                 const LoadOptions& options = {});
  // Binds the tensors `get` returns by Hugging Face name (kept alive by `owner`), then FromWeights.
  static core::StatusOr<std::unique_ptr<LlamaModel>> FromTensors(const LlamaConfig& config,
                                                                 const TensorGetter& get,
                                                                 std::shared_ptr<void> owner,
                                                                 const LoadOptions& options = {});

  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;
  ~LlamaModel() override;

  // models::Model
  const ModelInfo& info() const override { return info_; }
  const StateSpec& state_spec() const override { return state_spec_; }
  const kernels::Context* context() const override { return ctx_.get(); }
  core::StatusOr<std::unique_ptr<ModelState>> NewState(const StateSizes& sizes) const override;
  core::Status Forward(std::span<const int32_t> tokens, std::span<const StepSequence> sequences,
                       ModelState& state, std::vector<float>* logits) override;
  core::Status SetWeights(std::string_view config_json,
                          std::span<const NamedWeight> weights) override;

  const LlamaConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  core::ThreadPool& pool() { return *pool_; }
  kernels::Backend backend() const { return ctx_->backend(); }

  // The layers over explicit activations (Activations::Mode::kKeepAll keeps every layer's for a
  // backward): embeds `tokens` at `positions` into act.embd(), then runs every layer's attention
  // and MLP blocks; the final hidden states are act.layer(n_layer - 1).out. REQUIRES:
  // act.Reserve(tokens.size()) done, ids in the vocabulary, positions.size() == tokens.size().
  void RunLayers(std::span<const int32_t> tokens, std::span<const int32_t> positions,
                 const AttendFn& attend, Activations& act);

  // Final norm and LM head over the rows `rows` (ascending) of `hidden` [n, n_embd]: logits
  // [rows.size(), n_vocab] into `logits` (resized). `scratch` provides two [n, n_embd] views.
  void Logits(Activations& act, const core::Tensor& hidden, std::span<const int64_t> rows,
              std::vector<float>* logits);

 private:
  LlamaModel() = default;
  core::Status CheckTokens(std::span<const int32_t> tokens) const;

  LlamaConfig config_;
  ModelWeights weights_;
  ModelInfo info_;
  StateSpec state_spec_;
  std::unique_ptr<core::ThreadPool> pool_;
  std::unique_ptr<kernels::Context> ctx_;  // on pool_
  RopeFrequencies rope_;
  float attn_scale_ = 1.0f;
  TensorDump dump_{""};
  int64_t n_forward_ = 0;

  // Per-step scratch, grown with the largest step (never shrunk).
  Activations workspace_{Activations::Mode::kWorkspace, LlamaConfig{}};
  std::vector<int32_t> positions_;
  std::vector<int64_t> logit_rows_;
  std::vector<int64_t> slots_;                // per token: block * block_size + offset
  std::vector<const int32_t*> block_tables_;  // per token: its sequence's block table
};

}  // namespace arle::models::llama
