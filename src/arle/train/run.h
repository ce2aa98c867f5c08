// A training run: pretraining or SFT (full or LoRA) of a Hugging Face model directory on
// arle's kernels, with evaluation, metrics, checkpoints and exact resume. `arle train` is this
// plus flag parsing and printing.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "arle/core/dtype.h"
#include "arle/core/status.h"
#include "arle/kernels/context.h"
#include "arle/train/llama_train.h"
#include "arle/train/schedule.h"

namespace arle::train {

struct TrainOptions {
  enum class Task { kPretrain, kSft };
  Task task = Task::kPretrain;
  std::string model_dir;  // a Hugging Face directory (config.json, model.safetensors, tokenizer)
  std::string data;       // pretraining: .txt or .jsonl {"text"}; SFT: chat .jsonl
  std::string out;        // the run directory (OUT/step_NNNNNN, OUT/latest)
  bool resume = false;    // continue the run in `out` from OUT/latest

  int64_t steps = 100;  // optimizer updates
  int64_t batch = 8;    // sequences per micro-batch
  int64_t seq = 256;    // tokens per sequence
  int64_t accum = 1;    // micro-batches per update
  ScheduleOptions schedule;  // lr, kind, warmup, min_lr (total_steps is set to `steps`)
  std::string optimizer = "adamw";  // adamw | sgd
  double weight_decay = 0.01;
  double momentum = 0.0;  // sgd
  double clip = 1.0;      // global-norm clipping (0 = off)
  uint64_t seed = 0;
  bool shuffle = true;
  double eval_frac = 0.0;  // pretraining: the stream's tail held out
  int64_t eval_every = 0;  // 0: only at the end (when there is evaluation data)
  int64_t save_every = 0;  // 0: only at the end
  int keep_last = 0;       // checkpoints kept (0 = all)
  core::DType save_dtype = core::DType::kF32;
  LoraOptions lora;        // SFT only; rank 0 = full fine-tuning
  std::string metrics_jsonl;  // appended: one object per step and per evaluation
};

struct StepReport {
  int64_t step = 0;  // 1-based: updates done
  double loss = 0;   // the step's mean cross-entropy (nats per predicted token)
  double lr = 0;
  double grad_norm = 0;  // before clipping
  int64_t tokens = 0;    // predicted tokens of the step
  double tokens_per_s = 0;
  double elapsed_s = 0;  // since the run (or the resume) started
  // Other loops' own metrics (RL: rewards, KL, ...) as a JSON object's text; empty: none.
  // TrainMonitor adds its members to the step's event and shows them in the status.
  std::string metrics_json = {};
};

struct EvalReport {
  int64_t step = 0;
  double loss = 0;  // mean cross-entropy over the evaluation tokens
  double ppl = 0;
  int64_t tokens = 0;
  // Corpus evaluation (not chat): the UTF-8 bytes the predicted tokens decode to, and the loss
  // in bits per byte (summed nats / (ln 2 * bytes)), comparable across tokenizers. 0 otherwise.
  int64_t bytes = 0;
  double bits_per_byte = 0;
  // An evaluation that is not a loss (RL's held-out accuracy): its metrics as a JSON object's
  // text, which TrainMonitor reports instead of loss and ppl; empty for a loss evaluation.
  std::string metrics_json = {};
};

struct TrainCallbacks {
  std::function<void(const StepReport&)> on_step;
  std::function<void(const EvalReport&)> on_eval;
  std::function<void(const std::string& step_dir)> on_save;
  const std::atomic<bool>* stop = nullptr;      // set: save a checkpoint after this step, return
  const std::atomic<bool>* save_now = nullptr;  // set: save after this step (then cleared)
};

// Runs `options` on `ctx`. Returns the last checkpoint's directory. Errors: a model that is not
// a Llama-family Hugging Face directory, bad options (InvalidArgument naming the flag), unreadable
// data, a corrupt checkpoint on resume (DataLoss), a full disk (the run's `latest` stays on the
// previous complete checkpoint). Deterministic: the same options and data give bit-identical
// losses for every pool size, and a resumed run continues with exactly the losses of an
// uninterrupted one.
core::StatusOr<std::string> RunTraining(const TrainOptions& options, const kernels::Context& ctx,
                                        const TrainCallbacks& callbacks = {});

// `arle train sft --dry-run --json`: the plan (examples, tokens, labels, truncation, steps per
// epoch) and, for the first `max_records` examples, every token id with its text and loss mask,
// as JSON text. Nothing is trained or written.
core::StatusOr<std::string> DescribeSft(const TrainOptions& options, int64_t max_records);

// Mean cross-entropy of a model directory on data (a .txt/.jsonl corpus cut into windows of
// seq + 1 tokens, or chat JSONL when `chat`), in batches of `batch` sequences.
core::StatusOr<EvalReport> EvaluateModel(const std::string& model_dir, const std::string& data,
                                         int64_t seq, int64_t batch, bool chat,
                                         const kernels::Context& ctx);

}  // namespace arle::train
