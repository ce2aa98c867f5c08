// RunGrpo: tasks -> rollouts (engine) -> rewards (verifier) -> advantages -> policy update
// (trainer), with metrics, held-out evaluation, checkpoints and exact resume. The math lives in
// grpo_objective.h; rollouts and scoring in rollout.h and policy.h.
#include "arle/rl/grpo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <utility>

#include "arle/core/random.h"
#include "arle/models/registry.h"
#include "arle/rl/episodes.h"
#include "arle/rl/policy.h"
#include "arle/rl/policy_update.h"
#include "arle/rl/remote_rollouts.h"
#include "arle/rl/rl_tasks.h"
#include "arle/rl/rollout.h"
#include "arle/runtime/output_parser.h"
#include "arle/train/checkpoint.h"

namespace arle::rl {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

core::Status CheckOptions(const GrpoOptions& o) {
  auto bad = [](const std::string& flag, const std::string& what) {
    return core::InvalidArgumentError(flag + " " + what).WithField(flag);
  };
  if (o.model_dir.empty()) return bad("--model", "is required");
  if (o.tasks.empty()) return bad("--tasks", "is required");
  if (o.out.empty()) return bad("--out", "is required");
  if (o.tasks_format != "jsonl" && o.tasks_format != "gsm8k") {
    return bad("--tasks-format", "must be jsonl or gsm8k, got " + o.tasks_format);
  }
  if (o.steps < 1) return bad("--steps", "must be at least 1");
  if (o.batch < 1) return bad("--batch", "must be at least 1");
  if (o.group < 2 || o.group > 1024) return bad("--group", "must be in [2, 1024]");
  if (o.max_tokens < 1) return bad("--max-tokens", "must be at least 1");
  if (!(o.temperature >= runtime::kGreedyTemperature) || !std::isfinite(o.temperature)) {
    return bad("--temperature", "must be a positive number (GRPO samples)");
  }
  if (!(o.top_p > 0 && o.top_p <= 1)) return bad("--top-p", "must be in (0, 1]");
  if (o.epochs_per_batch < 1) return bad("--epochs-per-batch", "must be at least 1");
  if (o.micro_batch < 1) return bad("--micro-batch", "must be at least 1");
  if (!(o.clip_grad >= 0) || !std::isfinite(o.clip_grad)) return bad("--clip", "must be >= 0");
  if (o.eval_every < 0) return bad("--eval-every", "must be >= 0");
  if (o.save_every < 0) return bad("--save-every", "must be >= 0");
  if (o.max_turns < 0) return bad("--max-turns", "must be >= 1");
  if (o.max_turns > 0) {
    if (!(o.gamma >= 0 && o.gamma <= 1)) return bad("--gamma", "must be in [0, 1]");
    if (!(o.malformed_penalty >= 0) || !std::isfinite(o.malformed_penalty)) {
      return bad("--malformed-penalty", "must be >= 0");
    }
    if (!(o.tool_timeout > 0) || !std::isfinite(o.tool_timeout)) {
      return bad("--tool-timeout", "must be a positive number of seconds");
    }
    if (!o.rollout_urls.empty()) {
      return bad("--rollout-url", "is for single-turn GRPO; multi-turn episodes run in process");
    }
  }
  ARLE_RETURN_IF_ERROR(o.objective.Validate());
  return train::ValidateSchedule(o.schedule);
}

core::StatusOr<std::vector<RlTask>> LoadTaskFile(const std::string& path, const std::string& format,
                                                 const Verifier& verifier) {
  ARLE_ASSIGN_OR_RETURN(std::vector<RlTask> tasks,
                        format == "gsm8k" ? LoadGsm8kTasks(path) : LoadTasks(path));
  for (const RlTask& t : tasks) ARLE_RETURN_IF_ERROR(verifier.CheckTask(t));
  return tasks;
}

// Which task each step's j-th prompt is: the tasks in a seeded random order, a new order per pass
// over them (Fisher-Yates on core::Rng, the same on every platform).
class TaskOrder {
 public:
  TaskOrder(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  int64_t At(int64_t k) {
    const int64_t pass = k / n_;
    if (pass != pass_) {
      order_.resize(static_cast<size_t>(n_));
      for (int64_t i = 0; i < n_; ++i) order_[i] = i;
      core::Rng rng(seed_ * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(pass));
      for (int64_t i = n_ - 1; i > 0; --i) {
        std::swap(order_[i], order_[rng.NextU64() % static_cast<uint64_t>(i + 1)]);
      }
      pass_ = pass;
    }
    return order_[k % n_];
  }

 private:
  int64_t n_;
  uint64_t seed_;
  int64_t pass_ = -1;
  std::vector<int64_t> order_;
};

}  // namespace

std::string GrpoEvalJson(const GrpoEvalReport& r, bool with_step) {
  Json j;
  if (with_step) j["step"] = r.step;
  j["eval_accuracy"] = r.accuracy;
  j["eval_reward_mean"] = r.reward_mean;
  j["eval_n"] = r.n;
  if (r.multi_turn) j["eval_python_share"] = r.python_share;
  return j.dump();
}

std::string GrpoStepJson(const GrpoStepReport& r) {
  Json j{{"step", r.step},
         {"reward_mean", r.reward_mean},
         {"reward_std", r.reward_std},
         {"reward_max", r.reward_max},
         {"accuracy", r.accuracy},
         {"loss", r.loss},
         {"kl", r.kl},
         {"clip_fraction", r.clip_fraction},
         {"entropy", r.entropy},
         {"logprob_max_diff", r.logprob_max_diff},
         {"grad_norm", r.grad_norm},
         {"lr", r.lr},
         {"tokens_generated", r.tokens_generated},
         {"rollout_s", r.rollout_s},
         {"train_s", r.train_s},
         {"rollout_tokens_per_s", r.rollout_tokens_per_s},
         {"verifier_failures", r.verifier_failures},
         {"verifier_timeouts", r.verifier_timeouts},
         {"elapsed_s", r.elapsed_s}};
  if (r.weights_push_s > 0) j["weights_push_s"] = r.weights_push_s;
  if (r.multi_turn) {
    j["calls_mean"] = r.calls_mean;
    j["python_share"] = r.python_share;
    j["malformed_calls"] = r.malformed_calls;
  }
  return j.dump();
}

namespace {

// One trajectory per completion (groups[j][g]): its prompt as context, its tokens as one
// objective unit with the advantage advantages[j * G + g].
void AddCompletions(const std::vector<std::vector<int32_t>>& prompts,
                    const std::vector<std::vector<RolloutSample>>& groups,
                    std::span<const double> advantages, std::vector<Trajectory>* trajectories,
                    std::vector<ObjectiveUnit>* units) {
  size_t k = 0;
  for (size_t j = 0; j < groups.size(); ++j) {
    for (const RolloutSample& sample : groups[j]) {
      Trajectory t;
      t.AddContext(prompts[j]);
      t.AddGenerated(sample.ids, sample.logprobs);
      units->push_back({.trajectory = trajectories->size(),
                        .first = 0,
                        .count = t.n_generated(),
                        .advantage = advantages[k++]});
      trajectories->push_back(std::move(t));
    }
  }
}

}  // namespace

core::StatusOr<std::string> RunGrpo(const GrpoOptions& options, const GrpoCallbacks& cb) {
  GrpoOptions o = options;
  ARLE_RETURN_IF_ERROR(CheckOptions(o));
  o.schedule.total_steps = o.steps;
  ARLE_ASSIGN_OR_RETURN(Verifier verifier, Verifier::Create(o.verifier, o.verifier_options));
  ARLE_ASSIGN_OR_RETURN(std::vector<RlTask> tasks, LoadTaskFile(o.tasks, o.tasks_format, verifier));
  if (tasks.empty()) return core::InvalidArgumentError("--tasks " + o.tasks + " has no tasks");
  std::vector<RlTask> eval_tasks;
  if (!o.eval_tasks.empty()) {
    ARLE_ASSIGN_OR_RETURN(eval_tasks, LoadTaskFile(o.eval_tasks, o.tasks_format, verifier));
    if (o.eval_limit > 0 && static_cast<int64_t>(eval_tasks.size()) > o.eval_limit) {
      eval_tasks.resize(static_cast<size_t>(o.eval_limit));
    }
  }

  // A resume continues from the run's latest checkpoint: its weights (full fine-tuning) or the
  // base model plus its adapter (LoRA), and the optimizer's state.
  std::optional<train::LoadedCheckpoint> resumed;
  std::string weights_dir = o.model_dir;
  if (o.resume) {
    ARLE_ASSIGN_OR_RETURN(train::LoadedCheckpoint ck, train::LoadCheckpoint(o.out));
    resumed = std::move(ck);
    if (o.lora.rank == 0) weights_dir = resumed->dir;
  }
  ARLE_ASSIGN_OR_RETURN(train::TrainableModel loaded, train::LoadTrainableModel(weights_dir));
  PolicyOptions po;
  po.n_threads = o.n_threads;
  po.lora = o.lora;
  po.engine.kv_cache_bytes = o.kv_cache_bytes;
  po.engine.max_seqs = static_cast<int>(std::clamp<int64_t>(o.batch * o.group, 1, 256));
  ARLE_ASSIGN_OR_RETURN(
      std::unique_ptr<Policy> policy,
      Policy::Create(loaded.config, std::move(loaded.weights), *loaded.tokenizer, po));
  ARLE_ASSIGN_OR_RETURN(
      std::unique_ptr<train::Optimizer> optimizer,
      train::MakeOptimizer(o.optimizer, policy->trainer(), policy->train_context()));
  int64_t step = 0;
  if (resumed) {
    ARLE_RETURN_IF_ERROR(train::RestoreRun(*resumed, policy->trainer(), *optimizer));
    step = resumed->step;
    // The engine must not reuse anything computed before the weights were restored.
    ARLE_RETURN_IF_ERROR(policy->Update([] { return core::OkStatus(); }));
  }
  // The frozen reference of the KL term: the starting model, also on resume.
  std::unique_ptr<train::LlamaTrainer> reference;
  if (o.objective.kl_coef > 0) {
    ARLE_ASSIGN_OR_RETURN(train::TrainableModel ref, train::LoadTrainableModel(o.model_dir));
    ARLE_ASSIGN_OR_RETURN(reference, train::LlamaTrainer::Create(ref.config, std::move(ref.weights),
                                                                 policy->train_context()));
  }

  ARLE_ASSIGN_OR_RETURN(
      PromptRenderer renderer,
      PromptRenderer::Create(o.model_dir, *loaded.tokenizer, o.chat, o.enable_thinking));
  std::vector<std::vector<int32_t>> prompts, eval_prompts;
  for (const RlTask& t : tasks) {
    ARLE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, renderer.Render(t));
    prompts.push_back(std::move(ids));
  }
  for (const RlTask& t : eval_tasks) {
    ARLE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, renderer.Render(t));
    eval_prompts.push_back(std::move(ids));
  }
  // Held-out evaluation always samples in process; the steps' rollouts come from the rollout
  // servers when there are any, which first get the weights the run starts from.
  Rollouts local(policy->engine(), policy->model());
  std::unique_ptr<RemoteRollouts> remote;
  if (!o.rollout_urls.empty()) {
    ARLE_ASSIGN_OR_RETURN(remote,
                          RemoteRollouts::Create({.urls = o.rollout_urls, .api_key = o.api_key}));
    ARLE_RETURN_IF_ERROR(remote->PushWeights(loaded.config, policy->engine_weights(), step));
  }
  RolloutGenerator& rollouts = remote ? static_cast<RolloutGenerator&>(*remote) : local;

  const bool multi_turn = o.max_turns > 0;
  EpisodeOptions episode_options;
  episode_options.max_turns = o.max_turns;
  episode_options.max_tokens = o.max_tokens;
  episode_options.temperature = o.temperature;
  episode_options.top_p = o.top_p;
  episode_options.tools = o.tools;
  episode_options.limits.wall_seconds = o.tool_timeout;
  episode_options.limits.cpu_seconds = o.tool_timeout;
  episode_options.unsafe_no_sandbox = o.unsafe_no_sandbox;
  const std::string parser_family =
      !o.output_parser.empty()
          ? o.output_parser
          : models::ChatFormatFor(policy->model().info().architecture).output_parser;
  if (auto parser = runtime::CreateOutputParser(parser_family, {}); !parser.ok()) {
    return parser.status().WithField("--output-parser");
  }

  auto evaluate = [&](int64_t at_step) -> core::Status {
    if (eval_tasks.empty()) return core::OkStatus();
    std::vector<uint64_t> seeds(eval_prompts.size(), 0);
    std::vector<std::string> texts;
    GrpoEvalReport r;
    if (multi_turn) {
      std::vector<const RlTask*> ptrs;
      for (const RlTask& t : eval_tasks) ptrs.push_back(&t);
      EpisodeOptions greedy = episode_options;
      greedy.temperature = 0;
      ARLE_ASSIGN_OR_RETURN(std::vector<std::vector<Episode>> got,
                            RunEpisodes(policy->engine(), policy->model(), renderer, parser_family,
                                        ptrs, 1, seeds, greedy));
      int64_t python = 0;
      for (const auto& g : got) {
        texts.push_back(g[0].answer);
        python += g[0].n_python_calls > 0 ? 1 : 0;
      }
      r.multi_turn = true;
      r.python_share = static_cast<double>(python) / static_cast<double>(got.size());
    } else {
      RolloutParams p;
      p.n = 1;
      p.temperature = 0;
      p.max_tokens = o.max_tokens;
      ARLE_ASSIGN_OR_RETURN(std::vector<std::vector<RolloutSample>> got,
                            local.Run(eval_prompts, p, seeds));
      for (const auto& g : got) texts.push_back(g[0].text);
    }
    const std::vector<VerifyResult> results = VerifyBatch(verifier, eval_tasks, texts, o.n_threads);
    const VerifyCounts counts = CountResults(results, verifier.full_reward());
    r.step = at_step;
    r.n = counts.n;
    r.accuracy = counts.accuracy();
    r.reward_mean = counts.mean_reward;
    ARLE_RETURN_IF_ERROR(train::AppendMetricsLine(o.metrics_jsonl, GrpoEvalJson(r, true)));
    if (cb.on_eval) cb.on_eval(r);
    return core::OkStatus();
  };

  auto save = [&](int64_t at_step) -> core::StatusOr<std::string> {
    const Json state = {{"model", o.model_dir},
                        {"task", "grpo"},
                        {"tasks", o.tasks},
                        {"seed", o.seed},
                        {"steps", o.steps}};
    ARLE_ASSIGN_OR_RETURN(std::string dir,
                          train::SaveRun(o.out, at_step, policy->trainer(), *optimizer, o.model_dir,
                                         o.save_dtype, state.dump(), o.keep_last));
    if (cb.on_save) cb.on_save(dir);
    return dir;
  };

  const UpdateOptions update_options{.objective = o.objective,
                                     .epochs = o.epochs_per_batch,
                                     .micro_batch = o.micro_batch,
                                     .temperature = o.temperature,
                                     .clip_grad = o.clip_grad};
  if (step == 0) ARLE_RETURN_IF_ERROR(evaluate(0));
  TaskOrder order(static_cast<int64_t>(tasks.size()), o.seed);
  const Clock::time_point start = Clock::now();
  std::string last_dir;
  while (step < o.steps) {
    // --- The step's tasks and their seeds.
    const Clock::time_point t0 = Clock::now();
    std::vector<const RlTask*> step_tasks;
    std::vector<std::vector<int32_t>> step_prompts;
    std::vector<uint64_t> seeds;
    for (int64_t j = 0; j < o.batch; ++j) {
      const int64_t k = order.At(step * o.batch + j);
      step_tasks.push_back(&tasks[k]);
      step_prompts.push_back(prompts[k]);
      seeds.push_back(
          MixSeed(MixSeed(o.seed, static_cast<uint64_t>(step)), static_cast<uint64_t>(j)));
    }
    // --- Samples: completions (GRPO) or agent episodes (multi-turn), and the texts to verify.
    std::vector<std::vector<RolloutSample>> groups;
    std::vector<std::vector<Episode>> episodes;
    std::vector<std::string> texts;
    if (multi_turn) {
      ARLE_ASSIGN_OR_RETURN(episodes,
                            RunEpisodes(policy->engine(), policy->model(), renderer, parser_family,
                                        step_tasks, o.group, seeds, episode_options));
      for (const auto& group : episodes) {
        for (const Episode& e : group) texts.push_back(e.answer);
      }
    } else {
      RolloutParams rp;
      rp.n = o.group;
      rp.temperature = o.temperature;
      rp.top_p = o.top_p;
      rp.max_tokens = o.max_tokens;
      ARLE_ASSIGN_OR_RETURN(groups, rollouts.Run(step_prompts, rp, seeds));
      for (const auto& group : groups) {
        for (const RolloutSample& sample : group) texts.push_back(sample.text);
      }
    }
    const double rollout_s = std::chrono::duration<double>(Clock::now() - t0).count();

    // --- Rewards, then what the update trains on.
    std::vector<RlTask> flat_tasks;
    for (const RlTask* t : step_tasks) flat_tasks.push_back(*t);
    const std::vector<VerifyResult> results = VerifyBatch(verifier, flat_tasks, texts, o.n_threads);
    std::vector<double> rewards;
    for (const VerifyResult& v : results) rewards.push_back(v.reward);
    std::vector<Trajectory> trajectories;
    std::vector<ObjectiveUnit> units;
    GrpoStepReport r;
    if (multi_turn) {
      ARLE_ASSIGN_OR_RETURN(
          EpisodeBatch batch,
          BuildEpisodeBatch(episodes, rewards,
                            {.gamma = o.gamma,
                             .malformed_penalty = o.malformed_penalty,
                             .std_norm = o.std_norm,
                             .episode_level = o.objective.kind == ObjectiveKind::kGspo}));
      trajectories = std::move(batch.trajectories);
      units = std::move(batch.units);
      r.multi_turn = true;
      r.calls_mean = static_cast<double>(batch.n_calls) / static_cast<double>(batch.n_episodes);
      r.python_share =
          static_cast<double>(batch.n_python_episodes) / static_cast<double>(batch.n_episodes);
      r.malformed_calls = batch.n_malformed;
    } else {
      ARLE_ASSIGN_OR_RETURN(std::vector<double> advantages,
                            GroupAdvantages(rewards, o.group, o.std_norm));
      AddCompletions(step_prompts, groups, advantages, &trajectories, &units);
    }
    const Clock::time_point t1 = Clock::now();
    const double lr = train::LearningRate(o.schedule, step);
    ARLE_ASSIGN_OR_RETURN(UpdateStats u, UpdatePolicy(*policy, *optimizer, reference.get(),
                                                      trajectories, units, update_options, lr));
    r.loss = u.loss;
    r.kl = u.kl;
    r.clip_fraction = u.clip_fraction;
    r.entropy = u.entropy;
    r.logprob_max_diff = u.logprob_max_diff;
    r.grad_norm = u.grad_norm;
    const int64_t n_tokens = u.n_tokens;
    ++step;
    const Clock::time_point t2 = Clock::now();
    if (remote) {
      ARLE_RETURN_IF_ERROR(remote->PushWeights(loaded.config, policy->engine_weights(), step));
      r.weights_push_s = std::chrono::duration<double>(Clock::now() - t2).count();
    }
    r.step = step;
    r.lr = lr;
    r.tokens_generated = n_tokens;
    r.rollout_s = rollout_s;
    r.train_s = std::chrono::duration<double>(t2 - t1).count();
    r.rollout_tokens_per_s = rollout_s > 0 ? static_cast<double>(n_tokens) / rollout_s : 0;
    const VerifyCounts counts = CountResults(results, verifier.full_reward());
    r.reward_mean = counts.mean_reward;
    r.reward_std = counts.std_reward;
    r.reward_max = counts.max_reward;
    r.accuracy = counts.accuracy();
    r.verifier_failures = counts.n_failed;
    r.verifier_timeouts = counts.n_timed_out;
    r.elapsed_s = std::chrono::duration<double>(t2 - start).count();
    ARLE_RETURN_IF_ERROR(train::AppendMetricsLine(o.metrics_jsonl, GrpoStepJson(r)));
    if (cb.on_step) cb.on_step(r);

    if (o.eval_every > 0 && step % o.eval_every == 0) ARLE_RETURN_IF_ERROR(evaluate(step));
    const bool stop = cb.stop != nullptr && cb.stop->load();
    const bool save_now =
        cb.save_now != nullptr && const_cast<std::atomic<bool>*>(cb.save_now)->exchange(false);
    if ((o.save_every > 0 && step % o.save_every == 0) || save_now || stop || step == o.steps) {
      ARLE_ASSIGN_OR_RETURN(last_dir, save(step));
    }
    if (stop) return last_dir;
  }
  if (o.eval_every == 0 || o.steps % o.eval_every != 0) ARLE_RETURN_IF_ERROR(evaluate(step));
  return last_dir;
}

}  // namespace arle::rl
