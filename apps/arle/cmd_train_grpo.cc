// `arle train grpo` and `arle train multi-turn`: flags and per-step printing; the run itself is
// rl/grpo.h (multi-turn episodes: rl/episodes.h).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "apps/arle/commands.h"
#include "apps/arle/train_control.h"
#include "arle/rl/grpo.h"

namespace arle::app {
namespace {

std::atomic<bool> g_grpo_stop{false};
void OnGrpoSigint(int) { g_grpo_stop.store(true); }

struct GrpoFlags {
  rl::GrpoOptions run;
  std::string objective = "grpo";
  std::string loss_agg = "seq-mean-token-mean";
  std::string schedule = "constant";
  std::string save_dtype = "f32";
  std::string lora_targets = "q_proj,v_proj";
  bool no_std_norm = false;
  bool no_chat = false;
  int control_port = -1;  // --control-port (train_control.h); -1 = none
  std::string command = "grpo";  // the subcommand, for messages
};

int RunGrpoCommand(GrpoFlags& f) {
  rl::GrpoOptions& o = f.run;
  // max_turns 0 is single-turn GRPO to the loop; the multi-turn command needs episodes.
  if (f.command == "multi-turn" && o.max_turns < 1) {
    return ReportError(
        core::InvalidArgumentError("--max-turns must be at least 1").WithField("--max-turns"));
  }
  if (o.max_turns > 0 && o.unsafe_no_sandbox) WarnUnsafeNoSandbox();
  auto objective = rl::ParseObjectiveKind(f.objective);
  if (!objective.ok()) return ReportError(objective.status());
  o.objective.kind = *objective;
  auto agg = rl::ParseLossAggregation(f.loss_agg);
  if (!agg.ok()) return ReportError(agg.status());
  o.objective.loss_agg = *agg;
  auto kind = train::ParseScheduleKind(f.schedule);
  if (!kind.ok()) return ReportError(kind.status());
  o.schedule.kind = *kind;
  o.std_norm = !f.no_std_norm;
  o.chat = !f.no_chat;
  auto save_dtype = ParseSaveDtype(f.save_dtype);
  if (!save_dtype.ok()) return ReportError(save_dtype.status());
  o.save_dtype = *save_dtype;
  if (o.lora.rank > 0) {
    o.lora.targets = SplitList(f.lora_targets);
    o.lora.seed = o.seed;
  }
  g_grpo_stop.store(false);
  // --control-port: the /v1/train/* routes of `arle train sft`, fed with GRPO's steps (their own
  // metrics under "metrics"), held-out evaluations (accuracy instead of loss) and saves.
  std::unique_ptr<TrainControl> control;
  train::TrainCallbacks monitor;
  if (f.control_port >= 0) {
    auto started = TrainControl::Start(f.control_port, o.steps, o.out, &g_grpo_stop);
    if (!started.ok()) return ReportError(started.status());
    control = std::move(started).value();
    monitor = control->Wrap({});
    fmt::print(stderr, "arle train {}: control on http://127.0.0.1:{}/v1/train/status\n", f.command,
               control->port());
  }
  rl::GrpoCallbacks cb;
  cb.on_step = [&](const rl::GrpoStepReport& r) {
    if (monitor.on_step) {
      train::StepReport s;
      s.step = r.step;
      s.loss = r.loss;
      s.lr = r.lr;
      s.grad_norm = r.grad_norm;
      s.tokens = r.tokens_generated;
      s.tokens_per_s = r.rollout_tokens_per_s;
      s.elapsed_s = r.elapsed_s;
      s.metrics_json = rl::GrpoStepJson(r);
      monitor.on_step(s);
    }
    fmt::print(stderr,
               "step {}/{}  reward {:.3f} (acc {:.3f})  loss {:+.4f}  kl {:.4f}  clip {:.3f}  "
               "entropy {:.3f}  logprob_max_diff {:.3g}  {} tokens  rollout {:.1f}s ({:.0f} tok/s)"
               "  train {:.1f}s\n",
               r.step, o.steps, r.reward_mean, r.accuracy, r.loss, r.kl, r.clip_fraction, r.entropy,
               r.logprob_max_diff, r.tokens_generated, r.rollout_s, r.rollout_tokens_per_s,
               r.train_s);
    if (r.multi_turn) {
      fmt::print(stderr, "  episodes: {:.2f} model calls, python in {:.3f}, {} malformed calls\n",
                 r.calls_mean, r.python_share, r.malformed_calls);
    }
  };
  cb.on_eval = [&](const rl::GrpoEvalReport& r) {
    if (monitor.on_eval) {
      train::EvalReport e;
      e.step = r.step;
      e.metrics_json = rl::GrpoEvalJson(r, /*with_step=*/false);
      monitor.on_eval(e);
    }
    fmt::print(stderr, "eval @ step {}: accuracy {:.3f}  reward {:.3f}  ({} tasks){}\n", r.step,
               r.accuracy, r.reward_mean, r.n,
               r.multi_turn ? fmt::format("  python in {:.3f}", r.python_share) : "");
  };
  cb.on_save = [&](const std::string& dir) {
    if (monitor.on_save) monitor.on_save(dir);
    fmt::print(stderr, "saved {}\n", dir);
  };
  cb.stop = &g_grpo_stop;
  cb.save_now = monitor.save_now;
  auto previous = std::signal(SIGINT, OnGrpoSigint);
  auto result = rl::RunGrpo(o, cb);
  std::signal(SIGINT, previous);
  if (control) control->Finish(result.status());
  if (!result.ok()) return ReportError(result.status());
  if (g_grpo_stop.load()) fmt::print(stderr, "interrupted: saved {}\n", *result);
  fmt::print("{}\n", *result);
  return kExitOk;
}

// The flags `grpo` and `multi-turn` share.
void AddRlFlags(CLI::App* g, GrpoFlags& f) {
  rl::GrpoOptions& o = f.run;
  o.lora.alpha = 16;
  g->add_option("--model", o.model_dir, "Hugging Face directory to start from")->required();
  g->add_option("--tasks", o.tasks, "Tasks JSONL {\"prompt\"|\"messages\", \"answer\", \"tests\"?}")
      ->required();
  g->add_option("--tasks-format", o.tasks_format, "jsonl | gsm8k (GSM8K's {question, answer})")
      ->capture_default_str();
  g->add_option("--verifier", o.verifier,
                "Reward term [WEIGHT*]KIND, repeatable: number | exact | regex:P | match:P | "
                "python-tests")
      ->capture_default_str();
  g->add_option("--python-timeout", o.verifier_options.python_timeout_seconds,
                "python-tests: seconds per program")
      ->capture_default_str();
  g->add_option("--out", o.out, "Run directory (checkpoints OUT/step_N, OUT/latest)")->required();
  g->add_flag("--resume", o.resume, "Continue the run in --out from OUT/latest");
  g->add_option("--steps", o.steps, "Steps (rollouts + update)")->capture_default_str();
  g->add_option("--batch", o.batch, "Tasks (prompts) per step")->capture_default_str();
  g->add_option("--group", o.group, "Completions per task (G)")->capture_default_str();
  g->add_option("--max-tokens", o.max_tokens, "Tokens per completion at most")
      ->capture_default_str();
  g->add_option("--temperature", o.temperature, "Sampling temperature")->capture_default_str();
  g->add_option("--top-p", o.top_p, "Nucleus sampling")->capture_default_str();
  g->add_flag("--no-chat", f.no_chat, "Plain prompts as text, not a user turn of the template");
  g->add_option("--enable-thinking", o.enable_thinking, "The chat template's switch: true | false");
  g->add_option("--objective", f.objective, "grpo | gspo")->capture_default_str();
  g->add_option("--loss-agg", f.loss_agg, "seq-mean-token-mean | token-mean")
      ->capture_default_str();
  g->add_option("--clip-eps", o.objective.clip_eps, "PPO clip range (low)")->capture_default_str();
  g->add_option("--clip-eps-high", o.objective.clip_eps_high, "Upper clip (0: = --clip-eps)")
      ->capture_default_str();
  g->add_option("--kl-coef", o.objective.kl_coef, "k3 KL to the starting model (0: no reference)")
      ->capture_default_str();
  g->add_flag("--no-std-norm", f.no_std_norm, "Advantages r - mean, not divided by the std");
  g->add_option("--epochs-per-batch", o.epochs_per_batch, "Updates per batch of rollouts")
      ->capture_default_str();
  g->add_option("--micro-batch", o.micro_batch, "Sequences per forward/backward")
      ->capture_default_str();
  g->add_option("--lr", o.schedule.lr, "Learning rate")->capture_default_str();
  g->add_option("--schedule", f.schedule, "constant | linear-warmup | cosine")
      ->capture_default_str();
  g->add_option("--warmup", o.schedule.warmup_steps, "Warmup steps")->capture_default_str();
  g->add_option("--weight-decay", o.optimizer.weight_decay, "AdamW decoupled weight decay")
      ->capture_default_str();
  g->add_option("--clip", o.clip_grad, "Global gradient-norm clip (0 = off)")
      ->capture_default_str();
  g->add_option("--lora-rank", o.lora.rank, "LoRA rank (0 = full weights)")->capture_default_str();
  g->add_option("--lora-alpha", o.lora.alpha, "LoRA alpha")->capture_default_str();
  g->add_option("--lora-targets", f.lora_targets, "LoRA target modules, comma-separated")
      ->capture_default_str();
  g->add_option("--seed", o.seed, "Task order and sampling seeds")->capture_default_str();
  g->add_option("--eval-tasks", o.eval_tasks, "Held-out tasks, evaluated greedily");
  g->add_option("--eval-every", o.eval_every, "Steps between held-out evaluations (0: end)")
      ->capture_default_str();
  g->add_option("--eval-limit", o.eval_limit, "Held-out tasks used (0: all)")
      ->capture_default_str();
  g->add_option("--save-every", o.save_every, "Checkpoint every N steps (0: at the end)")
      ->capture_default_str();
  g->add_option("--keep-last", o.keep_last, "Checkpoints kept (0 = all)")->capture_default_str();
  g->add_option("--save-dtype", f.save_dtype, "f32 | bf16 | f16 for model.safetensors")
      ->capture_default_str();
  g->add_option("--metrics-jsonl", o.metrics_jsonl, "Append per-step and eval metrics here");
  g->add_option("--kv-cache-bytes", o.kv_cache_bytes, "The engine's K/V memory (0: default)");
  g->add_option("-t,--threads", o.n_threads, "Compute threads (default: one per core)");
  g->add_option("--control-port", f.control_port,
                "Serve /v1/train/{status,events,save,stop} on 127.0.0.1:PORT (0 = any free port)");
}

}  // namespace

void RegisterTrainGrpoCommand(CLI::App& train, int& exit_code) {
  static GrpoFlags grpo;
  CLI::App* g = train.add_subcommand(
      "grpo",
      "Reinforcement learning with verifiable rewards (GRPO/GSPO), rollouts from the engine");
  AddRlFlags(g, grpo);
  g->add_option("--rollout-url", grpo.run.rollout_urls,
                "Take rollouts from this `arle serve --accept-weights` server (repeatable) and "
                "push it the weights after every update");
  g->add_option("--api-key", grpo.run.api_key, "The rollout servers' API key");
  g->callback([&exit_code] { exit_code = RunGrpoCommand(grpo); });

  static GrpoFlags mt;
  mt.command = "multi-turn";
  mt.run.max_turns = 4;
  mt.run.max_tokens = 256;
  CLI::App* m = train.add_subcommand(
      "multi-turn",
      "Multi-turn tool RL: episodes are agent loops with the sandboxed python and shell tools, "
      "trained per model call on discounted returns (stepwise GRPO) or per episode (GSPO)");
  AddRlFlags(m, mt);
  m->add_option("--max-turns", mt.run.max_turns, "Model calls per episode at most")
      ->capture_default_str();
  m->add_option("--gamma", mt.run.gamma, "Discount of later calls' rewards in a call's return")
      ->capture_default_str();
  m->add_option("--malformed-penalty", mt.run.malformed_penalty,
                "Reward subtracted per malformed or refused tool call")
      ->capture_default_str();
  m->add_option("--tool-timeout", mt.run.tool_timeout, "Seconds per tool run")
      ->capture_default_str();
  m->add_option("--output-parser", mt.run.output_parser,
                "Output parser family that finds tool calls (qwen3, ...; default: the model's)");
  m->add_flag("--unsafe-no-sandbox", mt.run.unsafe_no_sandbox,
              "Run tool calls without the bubblewrap sandbox (no isolation)");
  m->callback([&exit_code] { exit_code = RunGrpoCommand(mt); });
}

}  // namespace arle::app
