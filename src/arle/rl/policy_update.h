// One policy update of an RL step, shared by single-turn GRPO and multi-turn agent RL: the
// trainer scores the step's trajectories, the objective (grpo_objective.h) turns the scores and
// advantages into per-token coefficients, and `epochs` optimizer steps follow, each reaching the
// engine through Policy::Update.
//
// A trajectory is one sequence the trainer runs: a single-turn prompt and completion, or a whole
// agent episode (prompt, generated turns, tool results). Only the tokens the policy generated get
// gradient; prompt, template and tool-output tokens are context. An objective unit is a run of
// one trajectory's generated tokens sharing an advantage: a completion (GRPO), or one turn of an
// episode (stepwise GRPO).
#pragma once

#include <cstdint>
#include <vector>

#include "arle/core/status.h"
#include "arle/rl/grpo_objective.h"
#include "arle/rl/policy.h"
#include "arle/train/llama_train.h"
#include "arle/train/optimizer.h"

namespace arle::rl {

struct Trajectory {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> generated;  // [tokens.size()]: 1 = sampled by the policy (trained)
  std::vector<float> logprobs;     // per generated token, in order: the sampler's (kTempered)

  // Appends context (generated = 0) or sampled tokens with their log-probs.
  void AddContext(const std::vector<int32_t>& ids);
  void AddGenerated(const std::vector<int32_t>& ids, const std::vector<float>& logprobs);
  int64_t n_generated() const { return static_cast<int64_t>(logprobs.size()); }
};

struct ObjectiveUnit {
  size_t trajectory = 0;
  int64_t first = 0;  // the unit is generated tokens [first, first + count) of the trajectory
  int64_t count = 0;
  double advantage = 0;
};

struct UpdateOptions {
  ObjectiveOptions objective;
  int epochs = 1;           // optimizer steps on the batch (PPO's mu)
  int64_t micro_batch = 8;  // trajectories per forward/backward
  float temperature = 1;    // the sampling temperature: log-probs are of logits / T
  double clip_grad = 1.0;   // global gradient-norm clip (0: off)
};

struct UpdateStats {
  double loss = 0;              // the objective before the first optimizer step
  double kl = 0;                // token mean of k3 against the reference (0 without one)
  double clip_fraction = 0;     // mean over the epochs
  double entropy = 0;           // token mean, before the first step
  double logprob_max_diff = 0;  // max |sampler log-prob - trainer's|, before the first step
  double grad_norm = 0;         // of the last step, before clipping
  int64_t n_tokens = 0;         // generated tokens
};

// Scores, computes the objective and takes options.epochs optimizer steps at `lr`. `reference`
// (may be null) is the frozen model of the KL term. Every generated token must belong to exactly
// one unit. Errors: InvalidArgument for units outside their trajectory, the trainer's and the
// objective's errors.
core::StatusOr<UpdateStats> UpdatePolicy(Policy& policy, train::Optimizer& optimizer,
                                         train::LlamaTrainer* reference,
                                         const std::vector<Trajectory>& trajectories,
                                         const std::vector<ObjectiveUnit>& units,
                                         const UpdateOptions& options, double lr);

}  // namespace arle::rl
