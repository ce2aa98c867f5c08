// The pieces every training loop shares (RunTraining, and RL's loops in rl/): loading a model
// directory as trainable f32 weights, the optimizer, the checkpoint of a run (weights, LoRA
// adapter, optimizer state, the loop's own JSON state) and its exact restore, and the metrics file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "arle/core/dtype.h"
#include "arle/core/status.h"
#include "arle/kernels/context.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/models/llama/llama_weights.h"
#include "arle/tokenizer/tokenizer.h"
#include "arle/train/checkpoint.h"
#include "arle/train/llama_train.h"
#include "arle/train/optimizer.h"

namespace arle::train {

// A Hugging Face model directory as a trainer takes it.
struct TrainableModel {
  models::llama::LlamaConfig config;
  models::llama::ModelWeights weights;  // owned f32 copies
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
};
core::StatusOr<TrainableModel> LoadTrainableModel(const std::string& dir);

struct OptimizerOptions {
  std::string kind = "adamw";  // adamw | sgd
  double weight_decay = 0.01;
  double momentum = 0.0;  // sgd
};
// The optimizer over the trainer's trainable tensors; AdamW splits its work over ctx's pool.
core::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const OptimizerOptions& options,
                                                         const LlamaTrainer& trainer,
                                                         const kernels::Context& ctx);

// Saves the run's checkpoint `step` into `out` (checkpoint.h): the trainer's weights (the base
// ones, with the PEFT adapter beside them under LoRA), the optimizer's state and step, the config
// and tokenizer of `model_dir`, and `state_json` (a JSON object: the loop's data cursor, RNG, ...).
core::StatusOr<std::string> SaveRun(const std::string& out, int64_t step,
                                    const LlamaTrainer& trainer, Optimizer& optimizer,
                                    const std::string& model_dir, core::DType save_dtype,
                                    const std::string& state_json, int keep_last);

// Restores what SaveRun saved into a trainer created from the checkpoint's weights (full
// fine-tuning) or from the base model (LoRA: the adapter is copied in and merged), and the
// optimizer's state and step. DataLoss naming the checkpoint for anything missing or mis-shaped.
core::Status RestoreRun(const LoadedCheckpoint& checkpoint, LlamaTrainer& trainer,
                        Optimizer& optimizer);

// Appends one line (a JSON object's text) to a metrics file, opened per line so a crash loses
// nothing written. No-op for an empty path. IoError naming the file.
core::Status AppendMetricsLine(const std::string& path, const std::string& json_line);

}  // namespace arle::train
