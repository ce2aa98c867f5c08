// rl::Policy: the engine samples from the trainer's weights in place, the log-probs it reports are
// the trainer's recomputation bit for bit (logprob_max_diff = 0 in f32), and after an update the
// engine uses the new weights and reuses no prefix computed with the old ones.
#include "arle/rl/policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "arle/kernels/cross_entropy.h"
#include "arle/models/llama/llama_weights.h"
#include "tests/rl/tiny_policy.h"
#include "tests/runtime/engine_test_util.h"

namespace arle::rl {
namespace {

using runtime::testing::Collector;
using runtime::testing::TestTokenizer;

std::unique_ptr<Policy> MakePolicy(const train::LoraOptions& lora = {}) {
  PolicyOptions o;
  o.n_threads = 2;
  o.lora = lora;
  o.engine.max_batch_tokens = 64;  // several steps of chunked prefill and batched decode
  return testing::MakeTinyPolicy(11, o);
}

struct Rollout {
  std::vector<int32_t> prompt;
  std::vector<std::vector<runtime::SampledToken>> samples;
  int64_t n_cached_prompt = -1;
};

Rollout Sample(Policy& policy, std::vector<int32_t> prompt, int n, float temperature,
               uint64_t seed) {
  runtime::EngineRequest r;
  r.prompt_tokens = prompt;
  r.n = n;
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  r.sampling.logprobs = true;
  r.sampling.logprobs_mode = runtime::LogprobsMode::kTempered;
  r.stop.max_tokens = 12;
  r.stop.ignore_eos = true;
  Collector c(n);
  auto id = policy.engine().Submit(std::move(r), c.Callback());
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_TRUE(c.Wait());
  const auto got = c.result();
  Rollout out;
  out.prompt = std::move(prompt);
  for (const auto& s : got.samples) out.samples.push_back(s.tokens);
  out.n_cached_prompt = got.samples[0].n_cached_prompt;
  return out;
}

// The largest |engine log-prob - trainer log-prob| over every sampled token of the rollout.
double MaxDiff(Policy& policy, const Rollout& r, float temperature) {
  size_t seq_len = 0;
  for (const auto& s : r.samples) seq_len = std::max(seq_len, r.prompt.size() + s.size());
  std::vector<int32_t> inputs, targets;
  for (const auto& s : r.samples) {
    std::vector<int32_t> toks = r.prompt;
    for (const auto& t : s) toks.push_back(t.id);
    for (size_t i = 0; i < seq_len; ++i) {
      inputs.push_back(i < toks.size() ? toks[i] : 0);
      const bool counted = i + 1 >= r.prompt.size() && i + 1 < toks.size();
      targets.push_back(counted ? toks[i + 1] : kernels::kIgnoreIndex);
    }
  }
  const train::Batch batch{.inputs = inputs,
                           .targets = targets,
                           .n_seq = static_cast<int64_t>(r.samples.size()),
                           .seq_len = static_cast<int64_t>(seq_len)};
  auto scores = policy.Score(batch, temperature);
  EXPECT_TRUE(scores.ok()) << scores.status().ToString();
  double max_diff = 0;
  size_t k = 0;
  for (const auto& s : r.samples) {
    for (const auto& t : s) {
      EXPECT_LT(k, scores->logprob.size());
      if (k >= scores->logprob.size()) return INFINITY;
      EXPECT_TRUE(std::isfinite(t.logprob));
      max_diff = std::max(max_diff, std::fabs(double(t.logprob) - scores->logprob[k]));
      EXPECT_GE(scores->entropy[k], 0.0f);
      ++k;
    }
  }
  EXPECT_EQ(k, scores->logprob.size());
  return max_diff;
}

TEST(PolicyTest, EngineLogprobsAreTheTrainersBitForBit) {
  auto policy = MakePolicy();
  for (const float temperature : {1.0f, 0.7f}) {
    SCOPED_TRACE(temperature);
    // 40 prompt tokens: more than one step's budget, so the prompt is chunked.
    std::vector<int32_t> prompt;
    for (int i = 0; i < 40; ++i) prompt.push_back(1 + (i * 7) % 90);
    const Rollout r = Sample(*policy, prompt, 6, temperature, 5);
    ASSERT_EQ(r.samples.size(), 6u);
    EXPECT_EQ(MaxDiff(*policy, r, temperature), 0.0);
  }
}

TEST(PolicyTest, UpdatesReachTheEngineAndDropItsPrefixCache) {
  auto policy = MakePolicy();
  std::vector<int32_t> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back(3 + (i * 5) % 80);
  const Rollout before = Sample(*policy, prompt, 2, 1.0f, 9);
  // The same prompt again: its full blocks come from the prefix cache.
  const Rollout again = Sample(*policy, prompt, 2, 1.0f, 9);
  EXPECT_GT(again.n_cached_prompt, 0);
  // An update that changes every weight the forward reads.
  ASSERT_TRUE(testing::ScaleEveryWeight(*policy, 1.25f).ok());
  const Rollout after = Sample(*policy, prompt, 2, 1.0f, 9);
  EXPECT_EQ(after.n_cached_prompt, 0);  // nothing computed with the old weights is reused
  EXPECT_NE(after.samples[0][0].logprob, before.samples[0][0].logprob);
  EXPECT_EQ(MaxDiff(*policy, after, 1.0f), 0.0);
  // A failing update is reported, and the cache is dropped all the same.
  const core::Status failed =
      policy->Update([] { return core::InternalError("the optimizer failed"); });
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(Sample(*policy, prompt, 1, 1.0f, 9).n_cached_prompt, 0);
}

TEST(PolicyTest, LoraPolicyMatchesToo) {
  train::LoraOptions lora;
  lora.rank = 4;
  lora.alpha = 8;
  lora.targets = {"q_proj", "v_proj", "down_proj"};
  lora.seed = 3;
  auto policy = MakePolicy(lora);
  // B starts at zero (PEFT): give the adapters weight so the merged copy differs from the base.
  ASSERT_TRUE(policy
                  ->Update([&]() -> core::Status {
                    for (const train::TrainParam& p : policy->trainer().params()) {
                      float* v = p.value->data_as<float>();
                      for (int64_t i = 0; i < p.value->numel(); ++i) v[i] += 0.01f * (i % 7);
                    }
                    return core::OkStatus();
                  })
                  .ok());
  std::vector<int32_t> prompt = {5, 6, 7, 8, 9, 10, 11};
  const Rollout r = Sample(*policy, prompt, 3, 0.9f, 2);
  EXPECT_EQ(MaxDiff(*policy, r, 0.9f), 0.0);
}

}  // namespace
}  // namespace arle::rl
