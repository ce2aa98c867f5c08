// RunGrpo end to end on a tiny random Llama (the stories260K tokenizer): every step's engine
// log-probs are the trainer's (logprob_max_diff 0), an interrupted and resumed run continues with
// exactly the losses of an uninterrupted one, the reward rises on an easy target, LoRA runs
// too, and bad options name their flag.
#include "arle/rl/grpo.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <string>
#include <vector>

#include "tests/common/temp_dir.h"
#include "tests/train/tiny_model.h"

namespace arle::rl {
namespace {

struct Fixture {
  test::TempDir tmp;
  std::string model, tasks;
  Fixture() {
    model = tmp.File("model");
    train::testing::TinyModel tiny(model, 5);
    tasks = tmp.File("tasks.jsonl");
    std::ofstream f(tasks);
    for (int i = 0; i < 6; ++i) {
      f << "{\"prompt\": \"Once upon a time " << i << "\", \"answer\": \"" << i << "\"}\n";
    }
  }
  GrpoOptions Options(const std::string& out) const {
    GrpoOptions o;
    o.model_dir = model;
    o.tasks = tasks;
    // A reward that random text earns sometimes: the completion has a letter 's' in it.
    o.verifier = {"match:s"};
    o.out = out;
    o.steps = 4;
    o.batch = 2;
    o.group = 4;
    o.max_tokens = 6;
    o.chat = false;
    o.micro_batch = 3;  // micro-batches that cut groups
    o.schedule.lr = 1e-2;
    o.n_threads = 2;
    o.seed = 3;
    return o;
  }
};

std::vector<GrpoStepReport> RunSteps(const GrpoOptions& o, int64_t stop_after = 0) {
  std::vector<GrpoStepReport> steps;
  std::atomic<bool> stop{false};
  GrpoCallbacks cb;
  cb.on_step = [&](const GrpoStepReport& r) {
    steps.push_back(r);
    if (stop_after > 0 && r.step == stop_after) stop = true;
  };
  cb.stop = &stop;
  auto dir = RunGrpo(o, cb);
  EXPECT_TRUE(dir.ok()) << dir.status().ToString();
  return steps;
}

TEST(GrpoTest, EngineLogprobsMatchAndResumeContinuesExactly) {
  Fixture fx;
  const std::vector<GrpoStepReport> whole = RunSteps(fx.Options(fx.tmp.File("whole")));
  ASSERT_EQ(whole.size(), 4u);
  bool learned_something = false;
  for (const GrpoStepReport& r : whole) {
    EXPECT_EQ(r.logprob_max_diff, 0.0) << "step " << r.step;
    EXPECT_EQ(r.tokens_generated > 0, true);
    EXPECT_EQ(r.verifier_failures, 0);
    learned_something |= r.reward_std > 0 && r.grad_norm > 0;
  }
  EXPECT_TRUE(learned_something) << "no step had a reward signal: the test would not see a "
                                    "resume that loses state";

  GrpoOptions o = fx.Options(fx.tmp.File("split"));
  const std::vector<GrpoStepReport> first = RunSteps(o, 2);
  ASSERT_EQ(first.size(), 2u);
  o.resume = true;
  const std::vector<GrpoStepReport> rest = RunSteps(o);
  ASSERT_EQ(rest.size(), 2u);
  for (size_t i = 0; i < 4; ++i) {
    const GrpoStepReport& a = whole[i];
    const GrpoStepReport& b = i < 2 ? first[i] : rest[i - 2];
    EXPECT_EQ(b.step, a.step);
    EXPECT_EQ(b.loss, a.loss) << "step " << a.step;
    EXPECT_EQ(b.reward_mean, a.reward_mean) << "step " << a.step;
    EXPECT_EQ(b.grad_norm, a.grad_norm) << "step " << a.step;
    EXPECT_EQ(b.entropy, a.entropy) << "step " << a.step;
  }
}

// The loop optimises its reward: on a target the random model rarely hits (a short completion
// with an 's' in it), the mean reward of the last steps is far above that of the first ones.
TEST(GrpoTest, RewardRisesOnAnEasyTarget) {
  Fixture fx;
  GrpoOptions o = fx.Options(fx.tmp.File("learn"));
  o.steps = 16;
  o.group = 8;
  o.max_tokens = 2;
  o.schedule.lr = 3e-2;
  o.micro_batch = 8;
  const std::vector<GrpoStepReport> steps = RunSteps(o);
  ASSERT_EQ(steps.size(), 16u);
  double first = 0, last = 0;
  for (int i = 0; i < 4; ++i) {
    first += steps[i].reward_mean / 4;
    last += steps[12 + i].reward_mean / 4;
  }
  EXPECT_LT(first, 0.4) << "last " << last;
  EXPECT_GT(last, 0.8) << "first " << first;
}

TEST(GrpoTest, LoraGspoWithKlAndSeveralEpochsRuns) {
  Fixture fx;
  GrpoOptions o = fx.Options(fx.tmp.File("lora"));
  o.steps = 2;
  o.lora.rank = 2;
  o.lora.alpha = 4;
  o.lora.targets = {"q_proj", "v_proj"};
  o.objective.kind = ObjectiveKind::kGspo;
  o.objective.clip_eps = 3e-4;
  o.objective.clip_eps_high = 4e-4;
  o.objective.kl_coef = 0.05;
  o.epochs_per_batch = 2;
  const std::vector<GrpoStepReport> steps = RunSteps(o);
  ASSERT_EQ(steps.size(), 2u);
  for (const GrpoStepReport& r : steps) EXPECT_EQ(r.logprob_max_diff, 0.0);
  // Step 2 samples from the updated adapter; the reference is the starting model.
  EXPECT_GE(steps[1].kl, 0.0);
}

TEST(GrpoTest, BadOptionsNameTheirFlag) {
  Fixture fx;
  GrpoOptions o = fx.Options(fx.tmp.File("bad"));
  o.group = 1;
  auto r = RunGrpo(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().field(), "--group");
  o = fx.Options(fx.tmp.File("bad"));
  o.tasks = fx.tmp.File("missing.jsonl");
  EXPECT_FALSE(RunGrpo(o).ok());
  o = fx.Options(fx.tmp.File("bad"));
  o.verifier = {"nonsense"};
  r = RunGrpo(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().field(), "verifier");
}

}  // namespace
}  // namespace arle::rl
