// GRPO rollout throughput: the samples of a step generated as groups (each prompt one request of G
// samples, all prompts in flight: what `arle train grpo` does) against the same samples generated
// one request at a time. The two produce identical tokens (sample g of a prompt uses seed + g
// either way; checked), so tokens/s compare like for like. Rounds are interleaved.
//
//   rollout_bench MODEL_DIR TASKS.jsonl [PROMPTS=4] [G=8] [MAX_TOKENS=64] [ROUNDS=2] [THREADS=0]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "arle/rl/policy.h"
#include "arle/rl/rl_tasks.h"
#include "arle/rl/rollout.h"
#include "arle/train/run_state.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const arle::core::Status& s) {
  std::fprintf(stderr, "rollout_bench: %s\n", s.ToString().c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace arle;
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s MODEL_DIR TASKS.jsonl [PROMPTS=4] [G=8] [MAX_TOKENS=64] [ROUNDS=2] "
                 "[THREADS=0]\n",
                 argv[0]);
    return 2;
  }
  const std::string model_dir = argv[1];
  const int n_prompts = argc > 3 ? std::atoi(argv[3]) : 4;
  const int group = argc > 4 ? std::atoi(argv[4]) : 8;
  const int max_tokens = argc > 5 ? std::atoi(argv[5]) : 64;
  const int rounds = argc > 6 ? std::atoi(argv[6]) : 2;
  const int threads = argc > 7 ? std::atoi(argv[7]) : 0;

  auto tasks = rl::LoadTasks(argv[2]);
  if (!tasks.ok()) Die(tasks.status());
  auto loaded = train::LoadTrainableModel(model_dir);
  if (!loaded.ok()) Die(loaded.status());
  rl::PolicyOptions po;
  po.n_threads = threads;
  po.engine.max_seqs = std::max(8, n_prompts * group);
  auto policy =
      rl::Policy::Create(loaded->config, std::move(loaded->weights), *loaded->tokenizer, po);
  if (!policy.ok()) Die(policy.status());
  auto renderer = rl::PromptRenderer::Create(model_dir, *loaded->tokenizer, true, "false");
  if (!renderer.ok()) Die(renderer.status());
  std::vector<std::vector<int32_t>> prompts;
  std::vector<uint64_t> seeds;
  for (int i = 0; i < n_prompts && i < static_cast<int>(tasks->size()); ++i) {
    auto ids = renderer->Render((*tasks)[i]);
    if (!ids.ok()) Die(ids.status());
    prompts.push_back(*ids);
    seeds.push_back(1000 + 100 * static_cast<uint64_t>(i));
  }
  rl::Rollouts rollouts((*policy)->engine(), (*policy)->model());
  rl::RolloutParams grouped;
  grouped.n = group;
  grouped.max_tokens = max_tokens;
  rl::RolloutParams single = grouped;
  single.n = 1;

  std::printf("| round | grouped tok/s | one at a time tok/s | ratio |\n|---:|---:|---:|---:|\n");
  for (int round = 1; round <= rounds; ++round) {
    // The engine's prefix cache would serve the second mode the first one's prompts: start each
    // mode with it empty.
    if (auto s = (*policy)->Update([] { return core::OkStatus(); }); !s.ok()) Die(s);
    auto t0 = Clock::now();
    auto g = rollouts.Run(prompts, grouped, seeds);
    if (!g.ok()) Die(g.status());
    const double grouped_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (auto s = (*policy)->Update([] { return core::OkStatus(); }); !s.ok()) Die(s);
    int64_t tokens = 0;
    t0 = Clock::now();
    for (size_t i = 0; i < prompts.size(); ++i) {
      for (int k = 0; k < group; ++k) {
        auto one = rollouts.Run({prompts[i]}, single, {seeds[i] + static_cast<uint64_t>(k)});
        if (!one.ok()) Die(one.status());
        if ((*one)[0][0].ids != (*g)[i][k].ids) {
          std::fprintf(stderr, "rollout_bench: prompt %zu sample %d differs between modes\n", i, k);
          return 1;
        }
        tokens += static_cast<int64_t>((*one)[0][0].ids.size());
      }
    }
    const double single_s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("| %d | %.1f | %.1f | %.2fx |\n", round, tokens / grouped_s, tokens / single_s,
                single_s / grouped_s);
    std::fflush(stdout);
  }
  return 0;
}
