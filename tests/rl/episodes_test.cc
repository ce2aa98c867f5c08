// Multi-turn episodes (episodes.h): the generated-token mask of a scripted agent episode (a
// python call, its result, the answer) through the real agent loop; a template that rewrites the
// history starts a new trajectory; discounted returns, stepwise group advantages and the batch a
// step trains on, against hand-computed values.
#include "arle/rl/episodes.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "arle/agent/agent.h"
#include "tests/runtime/engine_test_util.h"

namespace arle::rl {
namespace {

using runtime::testing::TestTokenizer;

tokenizer::EncodeOptions Special() { return {.add_special_tokens = false, .parse_special = true}; }

int32_t ImEnd() { return *TestTokenizer().TokenToId("<|im_end|>"); }

// A ChatML-like model whose turns are scripted. With `faithful`, assistant turns are rendered as
// the exact text that was generated (as a template that round-trips its own output does), else
// rewritten ("[called python]"). Log-probs of call k's token t are -(k + 1) - t / 100.
class ScriptedModel : public agent::AgentModel {
 public:
  ScriptedModel(std::vector<std::string> outputs, bool faithful)
      : outputs_(std::move(outputs)), faithful_(faithful) {}

  core::StatusOr<std::string> Render(const std::vector<agent::AgentMessage>& messages,
                                     const std::string&) override {
    std::string text;
    size_t assistant = 0;
    for (const agent::AgentMessage& m : messages) {
      text += "<|im_start|>" + m.role + "\n";
      if (m.role == "assistant") {
        text += faithful_ ? outputs_[assistant] : "[called python]";
        ++assistant;
      } else {
        text += m.content;
      }
      text += "<|im_end|>\n";
    }
    return text + "<|im_start|>assistant\n";
  }

  core::StatusOr<agent::Completion> Generate(
      const std::string& prompt, const std::function<bool(std::string_view)>& on_text) override {
    const std::string& out = outputs_.at(next_);
    agent::Completion c;
    c.prompt_tokens = TestTokenizer().Encode(prompt, Special());
    c.tokens = TestTokenizer().Encode(out, Special());
    c.tokens.push_back(ImEnd());  // the stop token is generated too
    for (size_t t = 0; t < c.tokens.size(); ++t) {
      c.logprobs.push_back(-static_cast<float>(next_ + 1) - static_cast<float>(t) / 100);
    }
    c.finish_reason = "stop";
    on_text(out);
    ++next_;
    return c;
  }
  std::string ParserFamily() const override { return "qwen3"; }

 private:
  std::vector<std::string> outputs_;
  bool faithful_;
  size_t next_ = 0;
};

const std::vector<std::string> kScript = {
    "<tool_call>\n{\"name\": \"python\", \"arguments\": {\"code\": \"print(123 * 456)\"}}\n"
    "</tool_call>",
    "123 * 456 = 56088"};

agent::TurnResult RunScripted(bool faithful) {
  ScriptedModel model(kScript, faithful);
  agent::Agent agent(
      model,
      [](std::string_view, std::string_view) -> core::StatusOr<agent::SandboxResult> {
        agent::SandboxResult r;
        r.stdout_text = "56088\n";
        return r;
      },
      {.max_turns = 4});
  auto result = agent.RunTurn("What is 123 * 456?", {});
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return std::move(result).value();
}

TEST(EpisodesTest, TheMaskCoversExactlyTheGeneratedTokensOfAScriptedEpisode) {
  const agent::TurnResult trace = RunScripted(/*faithful=*/true);
  ASSERT_EQ(trace.completions.size(), 2u);
  ASSERT_EQ(trace.tools.size(), 1u);
  EXPECT_TRUE(trace.tools[0].ran);
  EXPECT_EQ(trace.content, kScript[1]);

  auto got = TraceTrajectories(trace.completions);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // The second call's prompt continues the first call's tokens: one trajectory.
  ASSERT_EQ(got->trajectories.size(), 1u);
  const Trajectory& t = got->trajectories[0];
  std::vector<int32_t> want = trace.completions[1].prompt_tokens;
  want.insert(want.end(), trace.completions[1].tokens.begin(), trace.completions[1].tokens.end());
  EXPECT_EQ(t.tokens, want);
  ASSERT_EQ(t.generated.size(), t.tokens.size());

  // Masked runs: exactly the two generations (each with its stop token), in order.
  std::vector<std::vector<int32_t>> runs(1);
  std::vector<int32_t> context_between;
  bool in_run = false;
  for (size_t i = 0; i < t.tokens.size(); ++i) {
    if (t.generated[i]) {
      if (!in_run && !runs.back().empty()) runs.emplace_back();
      runs.back().push_back(t.tokens[i]);
      in_run = true;
    } else {
      if (in_run || runs.size() > 1 || !runs[0].empty()) context_between.push_back(t.tokens[i]);
      in_run = false;
    }
  }
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0], trace.completions[0].tokens);
  EXPECT_EQ(runs[1], trace.completions[1].tokens);
  EXPECT_EQ(TestTokenizer().Decode(runs[0]), kScript[0] + "<|im_end|>");
  EXPECT_EQ(TestTokenizer().Decode(runs[1]), kScript[1] + "<|im_end|>");
  // Between them: the tool's output and template text, never trained.
  const std::string between = TestTokenizer().Decode(context_between);
  EXPECT_NE(between.find("<|im_start|>tool"), std::string::npos) << between;
  EXPECT_NE(between.find("56088"), std::string::npos) << between;
  EXPECT_NE(between.find("<|im_start|>assistant\n"), std::string::npos) << between;
  // Nothing before the first generation is trained either: the prompt.
  const size_t first_generated =
      std::find(t.generated.begin(), t.generated.end(), 1) - t.generated.begin();
  EXPECT_EQ(first_generated, trace.completions[0].prompt_tokens.size());

  // Log-probs in generated order, and each call's span.
  std::vector<float> lp = trace.completions[0].logprobs;
  lp.insert(lp.end(), trace.completions[1].logprobs.begin(), trace.completions[1].logprobs.end());
  EXPECT_EQ(t.logprobs, lp);
  ASSERT_EQ(got->calls.size(), 2u);
  EXPECT_EQ(got->calls[0].trajectory, 0u);
  EXPECT_EQ(got->calls[0].first, 0);
  EXPECT_EQ(got->calls[0].count, static_cast<int64_t>(trace.completions[0].tokens.size()));
  EXPECT_EQ(got->calls[1].first, got->calls[0].count);
  EXPECT_EQ(got->calls[1].count, static_cast<int64_t>(trace.completions[1].tokens.size()));
}

TEST(EpisodesTest, AHistoryTheTemplateRewritesStartsANewTrajectory) {
  const agent::TurnResult trace = RunScripted(/*faithful=*/false);
  ASSERT_EQ(trace.completions.size(), 2u);
  auto got = TraceTrajectories(trace.completions);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->trajectories.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    const Trajectory& t = got->trajectories[k];
    const agent::Completion& c = trace.completions[k];
    std::vector<int32_t> want = c.prompt_tokens;
    want.insert(want.end(), c.tokens.begin(), c.tokens.end());
    EXPECT_EQ(t.tokens, want);
    EXPECT_EQ(std::count(t.generated.begin(), t.generated.end(), 1),
              static_cast<std::ptrdiff_t>(c.tokens.size()));
    EXPECT_TRUE(
        std::all_of(t.generated.begin() + static_cast<std::ptrdiff_t>(c.prompt_tokens.size()),
                    t.generated.end(), [](uint8_t g) { return g == 1; }));
    EXPECT_EQ(got->calls[k].trajectory, k);
    EXPECT_EQ(got->calls[k].first, 0);
  }
  // A call without log-probs cannot be trained on.
  std::vector<agent::Completion> bad = trace.completions;
  bad[1].logprobs.pop_back();
  EXPECT_FALSE(TraceTrajectories(bad).ok());
}

TEST(EpisodesTest, DiscountedReturnsAndStepwiseAdvantages) {
  const std::vector<double> g = DiscountedReturns(std::vector<double>{-0.2, 0, 1}, 0.5);
  ASSERT_EQ(g.size(), 3u);
  EXPECT_DOUBLE_EQ(g[2], 1.0);
  EXPECT_DOUBLE_EQ(g[1], 0.5);               // 0 + 0.5 * 1
  EXPECT_DOUBLE_EQ(g[0], -0.2 + 0.5 * 0.5);  // = 0.05
  EXPECT_EQ(DiscountedReturns(std::vector<double>{2, 3}, 1.0), (std::vector<double>{5, 3}));

  // Every call of the group is a sample: {0.05, 0.5, 1} and {0}; mean 0.3875, unbiased
  // variance (0.11390625 + 0.01265625 + 0.37515625 + 0.15015625) / 3 = 0.21729166...
  auto a = StepwiseAdvantages({{0.05, 0.5, 1.0}, {0.0}}, true);
  ASSERT_TRUE(a.ok());
  const double sd = std::sqrt(0.651875 / 3);
  ASSERT_EQ((*a)[0].size(), 3u);
  ASSERT_EQ((*a)[1].size(), 1u);
  EXPECT_NEAR((*a)[0][0], (0.05 - 0.3875) / (sd + 1e-6), 1e-12);
  EXPECT_NEAR((*a)[0][2], (1.0 - 0.3875) / (sd + 1e-6), 1e-12);
  EXPECT_NEAR((*a)[1][0], (0.0 - 0.3875) / (sd + 1e-6), 1e-12);
  auto unscaled = StepwiseAdvantages({{0.05, 0.5, 1.0}, {0.0}}, false);
  ASSERT_TRUE(unscaled.ok());
  EXPECT_NEAR((*unscaled)[0][1], 0.5 - 0.3875, 1e-12);
  EXPECT_FALSE(StepwiseAdvantages({}, true).ok());
  EXPECT_FALSE(StepwiseAdvantages({{std::nan("")}}, true).ok());
}

// An episode of `calls` model calls, each with a 2-token prompt continuing the previous tokens
// and 2 generated tokens.
Episode MakeEpisode(int calls, std::vector<int64_t> malformed) {
  Episode e;
  std::vector<int32_t> so_far;
  for (int k = 0; k < calls; ++k) {
    agent::Completion c;
    so_far.insert(so_far.end(), {10, 11});
    c.prompt_tokens = so_far;
    c.tokens = {20, 21};
    c.logprobs = {-1, -2};
    so_far.insert(so_far.end(), c.tokens.begin(), c.tokens.end());
    e.trace.completions.push_back(c);
  }
  e.malformed = std::move(malformed);
  return e;
}

TEST(EpisodesTest, TheBatchOfAStepCarriesRewardsPenaltiesAndReturnsIntoUnits) {
  // One group of two episodes: A (2 calls, the first with one malformed call) answered right,
  // B (1 call) wrong. gamma 0.5, penalty 0.25:
  //   A: r = {-0.25, 1} -> G = {0.25, 1};  B: r = {0} -> G = {0}.
  Episode a = MakeEpisode(2, {1, 0});
  a.n_python_calls = 1;
  std::vector<std::vector<Episode>> groups = {{a, MakeEpisode(1, {0})}};
  auto batch = BuildEpisodeBatch(groups, std::vector<double>{1, 0},
                                 {.gamma = 0.5, .malformed_penalty = 0.25, .std_norm = false});
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(batch->n_episodes, 2);
  EXPECT_EQ(batch->n_calls, 3);
  EXPECT_EQ(batch->n_python_episodes, 1);
  EXPECT_EQ(batch->n_malformed, 1);
  ASSERT_EQ(batch->trajectories.size(), 2u);  // A's two calls continue one trajectory
  ASSERT_EQ(batch->units.size(), 3u);
  const double mean = (0.25 + 1 + 0) / 3;
  EXPECT_EQ(batch->units[0].trajectory, 0u);
  EXPECT_EQ(batch->units[0].first, 0);
  EXPECT_NEAR(batch->units[0].advantage, 0.25 - mean, 1e-12);
  EXPECT_EQ(batch->units[1].trajectory, 0u);
  EXPECT_EQ(batch->units[1].first, 2);
  EXPECT_NEAR(batch->units[1].advantage, 1 - mean, 1e-12);
  EXPECT_EQ(batch->units[2].trajectory, 1u);
  EXPECT_NEAR(batch->units[2].advantage, 0 - mean, 1e-12);
  EXPECT_EQ(batch->trajectories[0].generated, (std::vector<uint8_t>{0, 0, 1, 1, 0, 0, 1, 1}));

  // Episode level (GSPO): one unit per trajectory with the episode's advantage over G_0.
  auto episodic = BuildEpisodeBatch(
      groups, std::vector<double>{1, 0},
      {.gamma = 0.5, .malformed_penalty = 0.25, .std_norm = false, .episode_level = true});
  ASSERT_TRUE(episodic.ok());
  ASSERT_EQ(episodic->units.size(), 2u);
  EXPECT_EQ(episodic->units[0].count, 4);
  EXPECT_NEAR(episodic->units[0].advantage, 0.25 - 0.125, 1e-12);
  EXPECT_NEAR(episodic->units[1].advantage, 0 - 0.125, 1e-12);

  EXPECT_FALSE(BuildEpisodeBatch(groups, std::vector<double>{1}, {}).ok());
  EXPECT_FALSE(BuildEpisodeBatch(groups, std::vector<double>{1, 0, 0}, {}).ok());
}

}  // namespace
}  // namespace arle::rl
