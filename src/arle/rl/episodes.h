// Multi-turn tool RL (`arle train multi-turn`): episodes are the agent loop of `arle run`
// (agent::Agent on the in-process engine, the sandboxed python and shell tools), run many at once
// so the engine batches their generations; and what training needs from an episode's trace: its
// trajectories with the mask of generated tokens, per-call rewards and discounted returns, and
// group-normalised advantages per model call (stepwise GRPO).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "arle/agent/agent.h"
#include "arle/agent/sandbox.h"
#include "arle/core/status.h"
#include "arle/rl/policy_update.h"
#include "arle/rl/rl_tasks.h"
#include "arle/rl/rollout.h"
#include "arle/runtime/engine.h"

namespace arle::rl {

struct EpisodeOptions {
  int max_turns = 4;         // model calls per episode at most
  int64_t max_tokens = 256;  // per model call
  float temperature = 1;     // < kGreedyTemperature: greedy
  float top_p = 1;
  bool tools = true;            // describe and run the python and shell tools
  agent::SandboxLimits limits;  // per tool run
  int max_parallel_tools = 2;   // tool runs at once over all episodes (the sandbox's user shares
                                // one process cap)
  bool unsafe_no_sandbox = false;
};

// One episode: the agent's trace and what the rewards need from it.
struct Episode {
  agent::TurnResult trace;  // completions carry their tokens' log-probs (kTempered)
  std::string answer;       // the final assistant message's content
  int64_t n_tool_calls = 0;
  int64_t n_python_calls = 0;  // calls of the python tool that ran
  // Per model call: tool calls it made that were malformed (the parser passed them through as
  // text) or refused (unknown tool, arguments without a string "code").
  std::vector<int64_t> malformed;
};

// Runs episodes[i][g] for every task and g < n, all at once: task i's conversation (its
// messages, or its prompt as the user turn) through the agent loop with the chat setup of
// `renderer`. Episode g of task i samples with seed MixSeed(seeds[i], g), + k for its k-th
// model call. Tool calls run in a fresh sandbox work directory per episode. Errors: rendering
// and engine errors naming the task, FailedPrecondition when tools are on and the sandbox is
// unavailable (unless unsafe_no_sandbox).
core::StatusOr<std::vector<std::vector<Episode>>> RunEpisodes(
    runtime::Engine& engine, const models::Model& model, const PromptRenderer& renderer,
    const std::string& parser_family, const std::vector<const RlTask*>& tasks, int n,
    const std::vector<uint64_t>& seeds, const EpisodeOptions& options);

// A trace's model calls as trajectories: each call's prompt is context, its tokens are generated.
// While a call's prompt starts with everything so far (the usual case: the template re-renders
// the earlier turns as they were generated), the call continues the same trajectory, so its new
// prompt tokens (tool results, template text) are context between generated runs; otherwise it
// starts a new trajectory. calls[k] is where call k's generated tokens are.
struct CallSpan {
  size_t trajectory = 0;  // index into EpisodeTrajectories::trajectories
  int64_t first = 0;      // its first generated token among the trajectory's generated tokens
  int64_t count = 0;
};
struct EpisodeTrajectories {
  std::vector<Trajectory> trajectories;
  std::vector<CallSpan> calls;
};
// InvalidArgument when a completion has no tokens or its log-probs do not match its tokens.
core::StatusOr<EpisodeTrajectories> TraceTrajectories(
    const std::vector<agent::Completion>& completions);

// G_k = sum_{j >= k} gamma^(j - k) r_j, computed from the last call back.
std::vector<double> DiscountedReturns(std::span<const double> rewards, double gamma);

// Stepwise GRPO: every model call of every episode of a group is one sample; its advantage is
// (G_k - mean) / (std + 1e-6) over all of the group's calls (std the unbiased one, as
// GroupAdvantages; std_norm false: G_k - mean). InvalidArgument for an empty group or a
// non-finite return.
core::StatusOr<std::vector<std::vector<double>>> StepwiseAdvantages(
    const std::vector<std::vector<double>>& returns, bool std_norm);

struct EpisodeRewardOptions {
  double gamma = 1.0;              // discount of later calls' rewards
  double malformed_penalty = 0.0;  // reward subtracted per malformed or refused tool call
  bool std_norm = true;            // divide by the std (GroupAdvantages)
  // false: stepwise GRPO (one objective unit per model call, its return's advantage); true: one
  // unit per trajectory with the episode's advantage (GSPO's sequence-level ratio over it).
  bool episode_level = false;
};

// What a step trains on, from its episodes (episodes[i][g], the groups) and each episode's
// outcome reward (rewards[i * G + g], the verifier's on its answer).
// Per episode, call k's reward is -malformed_penalty * malformed[k], plus the outcome reward on
// the last call; returns and advantages as DiscountedReturns and StepwiseAdvantages (episode
// level: GroupAdvantages of the episodes' returns G_0).
struct EpisodeBatch {
  std::vector<Trajectory> trajectories;
  std::vector<ObjectiveUnit> units;
  int64_t n_episodes = 0;
  int64_t n_calls = 0;            // model calls
  int64_t n_python_episodes = 0;  // episodes in which the python tool ran
  int64_t n_malformed = 0;        // malformed or refused tool calls
};
core::StatusOr<EpisodeBatch> BuildEpisodeBatch(const std::vector<std::vector<Episode>>& episodes,
                                               std::span<const double> rewards,
                                               const EpisodeRewardOptions& options);

// A seed from two (the first output of core::Rng seeded with their mix).
uint64_t MixSeed(uint64_t a, uint64_t b);

}  // namespace arle::rl
