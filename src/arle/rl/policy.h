// The policy an RL run samples from and trains: a train::LlamaTrainer holding the f32 weights, and
// a runtime::Engine whose model reads those same tensors in place. Rollouts therefore always use
// the current weights with no reload, and because the engine multiplies f32 weights in the
// trainer's order (FloatMatMul::kGemm) over an f32 K/V cache, the log-probs it reports for the
// tokens it samples are the ones the trainer recomputes, bit for bit (DESIGN.md's determinism
// contract; RL's `logprob_max_diff` measures it).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "arle/core/status.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/context.h"
#include "arle/models/llama/llama_model.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/models/llama/llama_weights.h"
#include "arle/runtime/engine.h"
#include "arle/tokenizer/tokenizer.h"
#include "arle/train/llama_train.h"

namespace arle::rl {

struct PolicyOptions {
  int n_threads = 0;  // the trainer's and the engine's pools (0: one per physical core)
  train::LoraOptions lora;
  runtime::EngineOptions engine;  // kv_dtype is forced to f32
};

// Per counted position of a batch: the log-probability of its target at the temperature, and
// the entropy (nats) of that distribution.
struct TokenScores {
  std::vector<float> logprob;  // runtime::TemperedTokenLogprobs' value
  std::vector<float> entropy;
};

// The scores of `batch`'s counted targets by `trainer` (LlamaTrainer::ForwardLogits, then
// runtime::TemperedTokenLogprobs per row): the recomputation of the engine's kTempered log-probs.
// Errors as ForwardLogits.
core::StatusOr<TokenScores> ScoreBatch(train::LlamaTrainer& trainer, const train::Batch& batch,
                                       float temperature);

class Policy {
 public:
  // `weights` are owned f32 copies (models::llama::OwnedF32Copy). The tokenizer must outlive the
  // policy. Errors: what LlamaTrainer::Create, LlamaModel::FromWeights and Engine::Create return.
  static core::StatusOr<std::unique_ptr<Policy>> Create(const models::llama::LlamaConfig& config,
                                                        models::llama::ModelWeights weights,
                                                        const tokenizer::Tokenizer& tokenizer,
                                                        const PolicyOptions& options);
  ~Policy();

  runtime::Engine& engine() { return *engine_; }
  train::LlamaTrainer& trainer() { return *trainer_; }
  const models::Model& model() const { return *model_; }
  // The weights the engine reads (under LoRA the merged ones): what rollout servers are sent.
  const models::llama::ModelWeights& engine_weights() const { return model_->weights(); }
  const kernels::Context& train_context() const { return *train_ctx_; }

  // The log-probs and entropies of the batch's counted targets (not kernels::kIgnoreIndex), in
  // position order, at `temperature` (as Engine samples with LogprobsMode::kTempered).
  // Not while the engine runs requests (the trainer and the engine share the weights, not the
  // pools). Errors as LlamaTrainer::ForwardLogits.
  core::StatusOr<TokenScores> Score(const train::Batch& batch, float temperature);

  // Runs `update` (an optimizer step on the trainer's parameters) between two engine steps, then
  // rebuilds the LoRA-merged weights the engine reads, and the engine forgets its prefix cache
  // (Engine::UpdateWeights).
  core::Status Update(const std::function<core::Status()>& update);

 private:
  Policy() = default;
  std::unique_ptr<core::ThreadPool> train_pool_;
  std::unique_ptr<kernels::Context> train_ctx_;
  std::unique_ptr<train::LlamaTrainer> trainer_;
  std::unique_ptr<models::llama::LlamaModel> model_;  // views of trainer_'s weights
  std::unique_ptr<runtime::Engine> engine_;
};

}  // namespace arle::rl
