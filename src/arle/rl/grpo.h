// GRPO (`arle train grpo`): group-relative policy optimisation with rollouts from the in-process
// engine. Each step takes `batch` tasks, samples `group` completions of each from the engine (the
// group shares its prompt's K/V through the prefix cache and decodes as one batch), rewards them
// with the verifier, normalises the rewards within each group into advantages, and updates the
// policy with the PPO-clipped (or GSPO) objective of grpo_objective.h on the log-probs the engine
// reported. The engine reads the trainer's weights in place (policy.h), so the next step samples
// from the updated model with no reload, and its prefix cache forgets the old weights' K/V.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "arle/core/dtype.h"
#include "arle/core/status.h"
#include "arle/rl/grpo_objective.h"
#include "arle/rl/verifiers.h"
#include "arle/train/llama_train.h"
#include "arle/train/run_state.h"
#include "arle/train/schedule.h"

namespace arle::rl {

struct GrpoOptions {
  std::string model_dir;  // a Hugging Face directory (f32/bf16/f16 weights; trained in f32)
  std::string tasks;      // RL tasks JSONL (rl_tasks.h), or GSM8K JSONL with tasks_format gsm8k
  std::string tasks_format = "jsonl";              // jsonl | gsm8k
  std::vector<std::string> verifier = {"number"};  // --verifier terms (verifiers.h)
  VerifierOptions verifier_options;
  std::string out;      // the run directory (OUT/step_NNNNNN, OUT/latest)
  bool resume = false;  // continue the run in `out` from OUT/latest

  int64_t steps = 50;
  int64_t batch = 8;  // tasks (prompts) per step
  int group = 8;      // completions per task (G), >= 2
  int64_t max_tokens = 128;
  float temperature = 1.0f;
  float top_p = 1.0f;
  // Plain-prompt tasks as one user turn of the model's chat template (chat tasks always are).
  bool chat = true;
  std::string enable_thinking;  // the template's switch: "", "true" or "false"

  ObjectiveOptions objective;
  bool std_norm = true;      // false: A = r - mean (no division by the group's std)
  int epochs_per_batch = 1;  // updates per batch of rollouts (PPO's mu)
  int64_t micro_batch = 8;   // sequences per forward/backward (memory, not the math)
  train::ScheduleOptions schedule{.lr = 1e-5};
  train::OptimizerOptions optimizer{.weight_decay = 0.0};
  double clip_grad = 1.0;   // global gradient-norm clip (0 = off)
  train::LoraOptions lora;  // rank 0: full weights
  uint64_t seed = 0;        // task order and sampling seeds

  std::string eval_tasks;  // held-out tasks (same format as `tasks`); empty: none
  int64_t eval_every = 0;  // steps between held-out evaluations (0: only before and after)
  int64_t eval_limit = 0;  // held-out tasks used (0: all)
  int64_t save_every = 0;  // 0: only at the end
  int keep_last = 0;
  core::DType save_dtype = core::DType::kF32;
  std::string metrics_jsonl;   // appended: one object per step and per evaluation
  int n_threads = 0;           // compute threads (0: one per physical core)
  int64_t kv_cache_bytes = 0;  // the engine's K/V (0: its default)
  // Multi-turn tool RL (`arle train multi-turn`, episodes.h): with max_turns > 0 every sample is
  // an agent episode of at most max_turns model calls (max_tokens each) using the sandboxed
  // tools, its reward the verifier's on the final answer, trained per model call on discounted
  // returns (stepwise GRPO), or per episode with objective gspo.
  int max_turns = 0;
  double gamma = 1.0;
  double malformed_penalty = 0.0;  // per malformed or refused tool call
  bool tools = true;
  double tool_timeout = 10.0;  // seconds per tool run
  bool unsafe_no_sandbox = false;
  // The output parser family that finds tool calls (runtime::CreateOutputParser: "qwen3", ...);
  // empty: the model family's. For a model whose family has none but whose chat template
  // writes Qwen3-style <tool_call> blocks (docs/rl_demo/tool_chat_template.jinja).
  std::string output_parser;
  // Rollout servers (`arle serve --accept-weights`, remote_rollouts.h): the steps' samples come
  // from them, and they get the weights after every update. Empty: the in-process engine.
  std::vector<std::string> rollout_urls;
  std::string api_key;  // the rollout servers' --api-key
};

struct GrpoStepReport {
  int64_t step = 0;
  double reward_mean = 0, reward_std = 0, reward_max = 0;
  // Share of completions with the full reward (every positively weighted term satisfied).
  double accuracy = 0;
  double loss = 0;              // the objective before the step's first update
  double kl = 0;                // token mean of k3 against the reference (0 without one)
  double clip_fraction = 0;     // over the step's updates
  double entropy = 0;           // token mean of the sampling distribution's entropy (nats)
  double logprob_max_diff = 0;  // max |engine log-prob - trainer's recomputation|, before updates
  double grad_norm = 0;         // of the last update, before clipping
  double lr = 0;
  int64_t tokens_generated = 0;
  double rollout_s = 0, train_s = 0, rollout_tokens_per_s = 0;
  int64_t verifier_failures = 0, verifier_timeouts = 0;
  double elapsed_s = 0;
  double weights_push_s = 0;  // sending the updated weights to the rollout servers (0: none)
  // Multi-turn only (emitted when multi_turn): model calls per episode, the share of episodes in
  // which the python tool ran, and malformed or refused tool calls.
  bool multi_turn = false;
  double calls_mean = 0;
  double python_share = 0;
  int64_t malformed_calls = 0;
};

// A step's metrics as one JSON object's text (the --metrics-jsonl line).
std::string GrpoStepJson(const GrpoStepReport& report);

struct GrpoEvalReport {
  int64_t step = 0;
  int64_t n = 0;
  double accuracy = 0;  // greedy completions with the full reward
  double reward_mean = 0;
  bool multi_turn = false;
  double python_share = 0;  // multi-turn: greedy episodes in which the python tool ran
};

// An evaluation's metrics as one JSON object's text ({"step"?, "eval_accuracy",
// "eval_reward_mean", "eval_n"}: the --metrics-jsonl line with the step).
std::string GrpoEvalJson(const GrpoEvalReport& report, bool with_step);

struct GrpoCallbacks {
  std::function<void(const GrpoStepReport&)> on_step;
  std::function<void(const GrpoEvalReport&)> on_eval;
  std::function<void(const std::string& step_dir)> on_save;
  const std::atomic<bool>* stop = nullptr;  // set: save a checkpoint after this step, return
  const std::atomic<bool>* save_now = nullptr;  // set: save after this step (then cleared, as
                                                // train::TrainCallbacks::save_now)
};

// Runs `options`. Returns the last checkpoint's directory. Errors: bad options (InvalidArgument
// naming the flag), a model that is not a Llama-family Hugging Face directory, unreadable or
// unverifiable tasks (naming FILE:LINE), a corrupt checkpoint on resume (DataLoss). Deterministic:
// the same options give the same rollouts and losses for every thread count, and a resumed run
// continues with exactly the losses of an uninterrupted one.
core::StatusOr<std::string> RunGrpo(const GrpoOptions& options,
                                    const GrpoCallbacks& callbacks = {});

}  // namespace arle::rl
