// Training a Llama-family model (Llama, Qwen3) on arle's kernels: the forward over kept
// activations (the same blocks that serve, models/llama/llama_blocks.h), the loss head in row
// chunks, and each block's backward written by hand below its forward (llama_train.cc).
//
// Why hand-written block backwards and not a tape: the model is a fixed stack of two blocks, so the
// backward is as short as the forward, mirrors it line by line (llm.c's layout), allocates nothing
// per step, and each op's gradient is one kernel with a reference twin and a PyTorch check. A tape
// would add a graph, dynamic buffers and an interpreter for no case this family needs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "arle/core/buffer.h"
#include "arle/core/status.h"
#include "arle/core/tensor.h"
#include "arle/kernels/context.h"
#include "arle/models/llama/llama_blocks.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/models/llama/llama_weights.h"

namespace arle::train {

// One micro-batch: n_seq sequences of seq_len input tokens, back to back, and the token each
// position must predict (kernels::kIgnoreIndex: not counted, no gradient).
struct Batch {
  std::span<const int32_t> inputs;   // [n_seq * seq_len]
  std::span<const int32_t> targets;  // [n_seq * seq_len]
  int64_t n_seq = 0;
  int64_t seq_len = 0;
  // Policy-gradient training (GRPO): per-position weights of the loss's gradient (empty: 1 each),
  // so the gradient is that of sum_t token_weights[t] * loss_t; and the temperature the losses
  // are taken at (loss_t = -log_softmax(logits_t / temperature)[target_t]), > 0.
  std::span<const float> token_weights = {};  // [n_seq * seq_len] or empty
  float temperature = 1;
};

// The summed cross-entropy of a batch's counted positions (nats) and how many there were.
struct LossSum {
  double sum = 0;
  int64_t n_tokens = 0;
};

// A LoRA adapter on some linear layers: W' = W + (alpha / r) B A, with A [r, in] and B [out, r].
// The forward multiplies by the merged W' (rebuilt by MergeLora after every update), which is
// the same function as PEFT's x W^T + s (x A^T) B^T; the adapter's gradients come from each
// projection's input and output gradient, which the backward has at hand.
struct LoraOptions {
  int64_t rank = 0;  // 0: no LoRA (full fine-tuning)
  double alpha = 0;
  // Hugging Face module names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
  std::vector<std::string> targets;
  uint64_t seed = 0;  // A's initialisation
};

// The bytes a training run holds for micro-batches of n_tokens tokens, by what they are for.
// EstimateMemory computes them from a config with the same layout functions Create and the
// forward allocate with; AllocatedMemory reads the buffers a live trainer holds.
struct TrainMemory {
  int64_t weights = 0;           // f32 master weights (LoRA: the frozen base, plus every target's
                                 // A, B and the merged copy the forward reads)
  int64_t gradients = 0;         // full: one f32 tensor per weight (tied: one); LoRA: dA and dB
  int64_t optimizer = 0;         // AdamW's m and v of the trainable tensors (RunTraining's)
  int64_t activations = 0;       // models::llama::Activations kept per layer (kKeepAll)
  int64_t attention_lse = 0;     // per layer [n, n_head] log-sum-exp, for attention's backward
  int64_t grad_workspace = 0;    // the backward's gradient buffers, reused by every layer
  int64_t loss_head = 0;         // one chunk of logits [chunk, V], its normed rows and gradient
  int64_t lora_merge = 0;        // MergeLora's temporary: one target's [out, in] at a time
  int64_t trainable_params = 0;  // values the optimizer updates
  int64_t head_chunk_rows = 0;   // rows of logits held at once
  int64_t total() const {
    return weights + gradients + optimizer + activations + attention_lse + grad_workspace +
           loss_head + lora_merge;
  }
};

// A named trainable tensor and its gradient (f32, the same shape).
struct TrainParam {
  std::string name;  // Hugging Face name ("model.layers.0.self_attn.q_proj.weight") or the
                     // PEFT name of a LoRA factor (the checkpoint writer maps it)
  core::Tensor* value = nullptr;
  core::Tensor* grad = nullptr;
};

class LlamaTrainer {
 public:
  // Trains `weights` (owned f32 copies, models::llama::OwnedF32Copy) of a model with `config`.
  // With lora.rank > 0 the base weights are frozen and only the adapters train. ctx's pool must
  // outlive the trainer, whose ops run on that backend and pool in the FloatMatMul::kGemm order
  // (kernels/context.h: the f32 forward products are GEMMs, as the backward's are).
  // InvalidArgument for an unknown LoRA target or a rank out of range; Unimplemented for a
  // CUDA context.
  static core::StatusOr<std::unique_ptr<LlamaTrainer>> Create(
      const models::llama::LlamaConfig& config, models::llama::ModelWeights weights,
      const kernels::Context& ctx, const LoraOptions& lora = {});
  ~LlamaTrainer();

  // What Create and ForwardBackward on micro-batches of n_tokens (n_seq * seq_len) allocate for
  // `config` with `lora`, plus AdamW's state: exact, from the same layout functions.
  // InvalidArgument for what Create rejects (an unknown LoRA target, a rank out of range) and
  // for n_tokens < 1.
  static core::StatusOr<TrainMemory> EstimateMemory(const models::llama::LlamaConfig& config,
                                                    int64_t n_tokens, const LoraOptions& lora);
  // The bytes this trainer holds now (after a ForwardBackward: every field EstimateMemory
  // fills except optimizer, which RunTraining's optimizer holds, and lora_merge, a temporary).
  TrainMemory AllocatedMemory() const;

  // Forward and backward of one micro-batch: returns its loss sum and ADDS the gradient of
  // grad_scale * (summed loss) to every parameter's gradient (grad_scale = 1 / counted tokens of
  // the whole step makes the step's gradient that of the mean loss). Bit-identical for every
  // pool size. InvalidArgument for a token outside the vocabulary or a malformed batch.
  core::StatusOr<LossSum> ForwardBackward(const Batch& batch, double grad_scale);

  // Forward only (no gradients): the loss sum of a batch (evaluation).
  core::StatusOr<LossSum> Loss(const Batch& batch);

  // Forward only: the LM head's logits at the positions whose target is counted (not
  // kernels::kIgnoreIndex), handed to `on_rows` a chunk at a time in ascending position order:
  // `positions` are flat indices into the batch and `logits` is f32 [positions.size(), n_vocab],
  // valid during the call. The rows are bit-identical to those Loss and ForwardBackward compute
  // (the same products in the same order) and, with FloatMatMul::kGemm serving on f32 weights
  // and an f32 KV cache, to the engine's logits for the same tokens (the determinism contract):
  // an RL trainer recomputes the engine's log-probs from them. Errors as ForwardBackward.
  using LogitsRowsFn =
      std::function<void(std::span<const int64_t> positions, const core::Tensor& logits)>;
  core::Status ForwardLogits(const Batch& batch, const LogitsRowsFn& on_rows);

  // The trainable tensors and their gradients, in a fixed order.
  const std::vector<TrainParam>& params() const { return params_; }
  void ZeroGrads();
  // After the optimizer changed LoRA factors: rebuilds the merged weights the forward uses.
  // A no-op without LoRA.
  void MergeLora();

  const models::llama::LlamaConfig& config() const { return config_; }
  // The weights the forward uses (with LoRA: merged), Hugging Face names via ForEachWeight.
  const models::llama::ModelWeights& weights() const { return weights_; }
  // The base weights before merging (LoRA only; else weights()).
  const models::llama::ModelWeights& base_weights() const;
  const LoraOptions& lora() const { return lora_; }

 private:
  struct Impl;
  LlamaTrainer(const models::llama::LlamaConfig& config, models::llama::ModelWeights weights,
               const kernels::Context& ctx, const LoraOptions& lora);
  core::Status CheckBatch(const Batch& batch) const;
  // Embedding and every layer's blocks into the kept activations (buffers sized for the batch).
  core::Status ForwardLayers(const Batch& batch);
  // The forward through every layer and the loss head (with gradients of the head when
  // `backward`): fills the kept activations and, when backward, d_hidden.
  core::StatusOr<LossSum> Forward(const Batch& batch, bool backward, double grad_scale);
  void Backward(const Batch& batch);

  models::llama::LlamaConfig config_;
  models::llama::ModelWeights weights_;  // what the forward reads (merged when LoRA)
  models::llama::ModelWeights grads_;    // same shapes; tied head tied (full fine-tuning only)
  kernels::Context ctx_;  // the caller's backend and pool, in the FloatMatMul::kGemm order
  LoraOptions lora_;
  std::vector<TrainParam> params_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace arle::train
