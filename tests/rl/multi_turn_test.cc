// Multi-turn RL on the engine: a two-call trajectory (the second call's prompt is the first
// call's prompt and tokens plus "tool output" context) sampled by the policy's engine is scored
// by the trainer with exactly the engine's log-probs at the generated positions only, and
// UpdatePolicy trains on it; `arle train multi-turn`'s loop (RunGrpo with max_turns) runs
// episodes through the agent loop with logprob_max_diff 0 and its episode metrics.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "arle/kernels/cross_entropy.h"
#include "arle/rl/episodes.h"
#include "arle/rl/grpo.h"
#include "arle/rl/policy.h"
#include "arle/rl/policy_update.h"
#include "arle/train/optimizer.h"
#include "arle/train/run_state.h"
#include "tests/common/temp_dir.h"
#include "tests/rl/tiny_policy.h"
#include "tests/runtime/engine_test_util.h"
#include "tests/train/tiny_model.h"

namespace arle::rl {
namespace {

using runtime::testing::Collector;
using runtime::testing::TestTokenizer;

std::unique_ptr<Policy> MakePolicy() {
  PolicyOptions o;
  o.n_threads = 2;
  o.engine.max_batch_tokens = 32;  // chunked prefill of the second call's prompt
  o.engine.max_seqs = 8;
  return testing::MakeTinyPolicy(21, o);
}

agent::Completion Call(Policy& policy, std::vector<int32_t> prompt, uint64_t seed) {
  runtime::EngineRequest r;
  r.prompt_tokens = prompt;
  r.sampling.temperature = 0.9f;
  r.sampling.seed = seed;
  r.sampling.logprobs = true;
  r.sampling.logprobs_mode = runtime::LogprobsMode::kTempered;
  r.stop.max_tokens = 7;
  r.stop.ignore_eos = true;
  Collector c(1);
  auto id = policy.engine().Submit(std::move(r), c.Callback());
  EXPECT_TRUE(id.ok());
  EXPECT_TRUE(c.Wait());
  const auto got = c.result();
  agent::Completion out;
  out.prompt_tokens = std::move(prompt);
  for (const runtime::SampledToken& t : got.samples[0].tokens) {
    out.tokens.push_back(t.id);
    out.logprobs.push_back(t.logprob);
  }
  return out;
}

TEST(MultiTurnTest, TwoCallTrajectoriesScoreAsTheEngineSampledThemAndTrain) {
  auto policy = MakePolicy();
  std::vector<agent::Completion> calls;
  std::vector<int32_t> prompt = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46};
  calls.push_back(Call(*policy, prompt, 1));
  // The next prompt: everything so far, then "tool output" and template tokens.
  prompt.insert(prompt.end(), calls[0].tokens.begin(), calls[0].tokens.end());
  for (int i = 0; i < 30; ++i) prompt.push_back(40 + i);
  calls.push_back(Call(*policy, prompt, 2));

  auto traj = TraceTrajectories(calls);
  ASSERT_TRUE(traj.ok()) << traj.status().ToString();
  ASSERT_EQ(traj->trajectories.size(), 1u);
  const Trajectory& t = traj->trajectories[0];
  EXPECT_EQ(t.n_generated(), 14);

  // The trainer's scores of exactly the generated tokens equal the engine's.
  std::vector<int32_t> targets;
  for (size_t i = 0; i < t.tokens.size(); ++i) {
    targets.push_back(i + 1 < t.tokens.size() && t.generated[i + 1] ? t.tokens[i + 1]
                                                                    : kernels::kIgnoreIndex);
  }
  const train::Batch batch{.inputs = t.tokens,
                           .targets = targets,
                           .n_seq = 1,
                           .seq_len = static_cast<int64_t>(t.tokens.size())};
  auto scores = policy->Score(batch, 0.9f);
  ASSERT_TRUE(scores.ok()) << scores.status().ToString();
  EXPECT_EQ(scores->logprob, t.logprobs);

  // A stepwise update over the two calls: the first call worse than the second.
  auto optimizer = train::MakeOptimizer({}, policy->trainer(), policy->train_context());
  ASSERT_TRUE(optimizer.ok());
  const std::vector<ObjectiveUnit> units = {
      {.trajectory = 0, .first = 0, .count = 7, .advantage = -1},
      {.trajectory = 0, .first = 7, .count = 7, .advantage = 1}};
  UpdateOptions uo;
  uo.temperature = 0.9f;
  auto stats = UpdatePolicy(*policy, **optimizer, nullptr, traj->trajectories, units, uo, 1e-2);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->logprob_max_diff, 0.0);
  EXPECT_EQ(stats->n_tokens, 14);
  EXPECT_GT(stats->grad_norm, 0.0);
  // Units that leave generated tokens out, or overlap, are refused.
  EXPECT_FALSE(
      UpdatePolicy(*policy, **optimizer, nullptr, traj->trajectories, {units[0]}, uo, 1e-2).ok());
}

TEST(MultiTurnTest, TheLoopRunsEpisodesWithExactLogprobsAndEpisodeMetrics) {
  test::TempDir tmp;
  const std::string model = tmp.File("model");
  train::testing::TinyModel tiny(model, 5);
  const std::string tasks = tmp.File("tasks.jsonl");
  {
    std::ofstream f(tasks);
    for (int i = 0; i < 4; ++i) {
      f << "{\"prompt\": \"Once upon a time " << i << "\", \"answer\": \"" << i << "\"}\n";
    }
  }
  GrpoOptions o;
  o.model_dir = model;
  o.tasks = tasks;
  o.eval_tasks = tasks;
  o.verifier = {"match:s"};
  o.out = tmp.File("run");
  o.metrics_jsonl = tmp.File("metrics.jsonl");
  o.steps = 3;
  o.batch = 2;
  o.group = 3;
  o.max_tokens = 6;
  o.max_turns = 3;
  o.gamma = 0.9;
  o.malformed_penalty = 0.1;
  o.schedule.lr = 1e-2;
  o.n_threads = 2;
  o.unsafe_no_sandbox = true;  // the random model never calls a tool
  std::vector<GrpoStepReport> steps;
  std::vector<GrpoEvalReport> evals;
  GrpoCallbacks cb;
  cb.on_step = [&](const GrpoStepReport& r) { steps.push_back(r); };
  cb.on_eval = [&](const GrpoEvalReport& r) { evals.push_back(r); };
  auto dir = RunGrpo(o, cb);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  ASSERT_EQ(steps.size(), 3u);
  for (const GrpoStepReport& r : steps) {
    EXPECT_TRUE(r.multi_turn);
    EXPECT_EQ(r.logprob_max_diff, 0.0) << "step " << r.step;
    EXPECT_GE(r.calls_mean, 1.0);
    EXPECT_GT(r.tokens_generated, 0);
    EXPECT_NE(GrpoStepJson(r).find("\"python_share\""), std::string::npos);
  }
  ASSERT_EQ(evals.size(), 2u);
  EXPECT_TRUE(evals[0].multi_turn);
  EXPECT_NE(GrpoEvalJson(evals[0], true).find("eval_python_share"), std::string::npos);

  o.rollout_urls = {"http://127.0.0.1:1"};
  auto bad = RunGrpo(o, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().field(), "--rollout-url");
}

}  // namespace
}  // namespace arle::rl
