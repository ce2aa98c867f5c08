// `arle train pretrain | sft | eval`: flags, the compute context and progress printing; the run
// itself is train/run.h.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>

#include "apps/arle/commands.h"
#include "apps/arle/embedded_assets.h"
#include "apps/arle/train_control.h"
#include "arle/convert/model_init.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/context.h"
#include "arle/train/run.h"

namespace arle::app {
namespace {

std::atomic<bool> g_stop{false};
void OnSigint(int) { g_stop.store(true); }

struct TrainFlags {
  train::TrainOptions run;
  std::string arch, preset, config;  // pretraining from random init
  std::string schedule = "constant";
  std::string lora_targets = "q_proj,v_proj";
  std::string save_dtype = "f32";
  bool no_shuffle = false;
  int threads = 0;
  bool dry_run = false;
  bool json = false;
  int64_t dry_run_records = 3;
  int control_port = -1;  // --control-port (train_control.h); -1 = none
};

void AddCommonFlags(CLI::App* cmd, TrainFlags& f) {
  train::TrainOptions& o = f.run;
  cmd->add_option("--data", o.data, "Training data")->required();
  cmd->add_option("--out", o.out, "Run directory (checkpoints OUT/step_N, OUT/latest)");
  cmd->add_option("--steps", o.steps, "Optimizer updates")->capture_default_str();
  cmd->add_option("--batch", o.batch, "Sequences per micro-batch")->capture_default_str();
  cmd->add_option("--seq", o.seq, "Tokens per sequence")->capture_default_str();
  cmd->add_option("--accum", o.accum, "Micro-batches per update")->capture_default_str();
  cmd->add_option("--lr", o.schedule.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--schedule", f.schedule, "constant | linear-warmup | cosine")
      ->capture_default_str();
  cmd->add_option("--warmup", o.schedule.warmup_steps, "Warmup updates")->capture_default_str();
  cmd->add_option("--min-lr", o.schedule.min_lr, "Cosine's final learning rate")
      ->capture_default_str();
  cmd->add_option("--optimizer", o.optimizer, "adamw | sgd")->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "Decoupled weight decay (AdamW), 2-D+ only")
      ->capture_default_str();
  cmd->add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--clip", o.clip, "Global gradient-norm clip (0 = off)")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed (data order, LoRA init, random init)")
      ->capture_default_str();
  cmd->add_flag("--no-shuffle", f.no_shuffle, "Windows/examples in order (see docs/training.md)");
  cmd->add_option("--eval-every", o.eval_every, "Evaluate every N updates (0 = at the end)")
      ->capture_default_str();
  cmd->add_option("--save-every", o.save_every, "Checkpoint every N updates (0 = at the end)")
      ->capture_default_str();
  cmd->add_option("--keep-last", o.keep_last, "Checkpoints kept (0 = all)")->capture_default_str();
  cmd->add_option("--save-dtype", f.save_dtype, "f32 | bf16 | f16 for model.safetensors")
      ->capture_default_str();
  cmd->add_option("--metrics-jsonl", o.metrics_jsonl, "Append per-step and eval metrics here");
  cmd->add_option("--control-port", f.control_port,
                  "Serve /v1/train/{status,events,stop,save} on 127.0.0.1:PORT while running "
                  "(0 = any free port, printed)")
      ->check(CLI::Range(0, 65535));
  cmd->add_flag("--resume", o.resume, "Continue the run in --out from OUT/latest");
  cmd->add_option("-t,--threads", f.threads, "Compute threads (default: one per core)");
}

// Prints one line per logged step: a rewritten progress line on a terminal, plain lines
// otherwise (logs, CI).
class Progress {
 public:
  explicit Progress(int64_t total) : total_(total), tty_(isatty(STDERR_FILENO) != 0) {}
  void Step(const train::StepReport& r) {
    const double eta = r.step > 0 ? r.elapsed_s / static_cast<double>(r.step) *
                                        static_cast<double>(total_ - r.step)
                                  : 0.0;
    const std::string line =
        fmt::format("step {}/{}  loss {:.4f}  lr {:.3g}  grad {:.3f}  {:.0f} tok/s  eta {:.0f}s",
                    r.step, total_, r.loss, r.lr, r.grad_norm, r.tokens_per_s, eta);
    if (tty_) {
      fmt::print(stderr, "\r\033[K{}", line);
    } else {
      fmt::print(stderr, "{}\n", line);
    }
    std::fflush(stderr);
  }
  void Line(const std::string& s) {
    fmt::print(stderr, "{}{}\n", tty_ ? "\r\033[K" : "", s);
    std::fflush(stderr);
  }

 private:
  int64_t total_;
  bool tty_;
};

int RunTrain(TrainFlags& f) {
  train::TrainOptions& o = f.run;
  auto kind = train::ParseScheduleKind(f.schedule);
  if (!kind.ok()) return ReportError(kind.status());
  o.schedule.kind = *kind;
  o.shuffle = !f.no_shuffle;
  auto save_dtype = ParseSaveDtype(f.save_dtype);
  if (!save_dtype.ok()) return ReportError(save_dtype.status());
  o.save_dtype = *save_dtype;
  if (o.task == train::TrainOptions::Task::kSft && o.lora.rank > 0) {
    o.lora.targets = SplitList(f.lora_targets);
    o.lora.seed = o.seed;
  }
  if (f.dry_run) {
    if (o.task != train::TrainOptions::Task::kSft) {
      return ReportError(core::InvalidArgumentError("--dry-run is for `arle train sft`"));
    }
    auto text = train::DescribeSft(o, f.dry_run_records);
    if (!text.ok()) return ReportError(text.status());
    fmt::print("{}\n", *text);
    return kExitOk;
  }
  // --control-port binds before anything is written, so a port in use fails first. A stop it
  // receives before the run starts is kept (g_stop is not reset later).
  g_stop.store(false);
  std::unique_ptr<TrainControl> control;
  if (f.control_port >= 0) {
    auto started = TrainControl::Start(f.control_port, o.steps, o.out, &g_stop);
    if (!started.ok()) return ReportError(started.status());
    control = std::move(started).value();
    fmt::print(stderr, "arle train: control on http://127.0.0.1:{}/v1/train/status\n",
               control->port());
    std::fflush(stderr);
  }
  // Pretraining from scratch: a random model (seeded) written into OUT/init first.
  if (o.model_dir.empty() && !o.resume) {
    if (f.arch.empty()) {
      return ReportError(core::InvalidArgumentError("give --model DIR or --arch/--preset"));
    }
    convert::ModelInitOptions init;
    init.arch = f.arch;
    init.preset = f.preset.empty() ? "tiny" : f.preset;
    init.config_overrides = f.config;
    init.dtype = "f32";
    init.seed = o.seed;
    init.out = o.out + "/init";
    std::error_code ec;
    std::filesystem::create_directories(o.out, ec);
    auto written = convert::InitModel(init, EmbeddedTokenizerAssets());
    if (!written.ok()) return ReportError(written.status());
    o.model_dir = *written;
  } else if (o.model_dir.empty()) {
    o.model_dir = o.out + "/init";  // a resumed run from random init
  }
  auto backend = kernels::BackendFromEnvironment();
  if (!backend.ok()) return ReportError(backend.status());
  core::ThreadPool pool(f.threads);
  const kernels::Context ctx = kernels::Context::Cpu(*backend, pool);

  Progress progress(o.steps);
  train::TrainCallbacks cb;
  cb.on_step = [&](const train::StepReport& r) { progress.Step(r); };
  cb.on_eval = [&](const train::EvalReport& r) {
    progress.Line(fmt::format("eval @ step {}: loss {:.4f}  ppl {:.3f}  {:.4f} bits/byte  ({} "
                              "tokens, {} bytes)",
                              r.step, r.loss, r.ppl, r.bits_per_byte, r.tokens, r.bytes));
  };
  cb.on_save = [&](const std::string& dir) { progress.Line("saved " + dir); };
  cb.stop = &g_stop;
  if (control) cb = control->Wrap(std::move(cb));
  auto previous = std::signal(SIGINT, OnSigint);
  auto result = train::RunTraining(o, ctx, cb);
  std::signal(SIGINT, previous);
  if (control) control->Finish(result.status());
  if (!result.ok()) {
    progress.Line("");
    return ReportError(result.status());
  }
  if (g_stop.load()) progress.Line("interrupted: saved " + *result);
  fmt::print("{}\n", *result);
  return kExitOk;
}

}  // namespace

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

core::StatusOr<core::DType> ParseSaveDtype(const std::string& name) {
  if (name == "f32") return core::DType::kF32;
  if (name == "bf16") return core::DType::kBF16;
  if (name == "f16") return core::DType::kF16;
  return core::InvalidArgumentError("--save-dtype must be f32, bf16 or f16, got " + name)
      .WithField("--save-dtype");
}

void RegisterTrainCommand(CLI::App& app, int& exit_code) {
  CLI::App* train = app.add_subcommand("train", "Pretrain, fine-tune (full or LoRA) and evaluate");
  train->require_subcommand(1);

  static TrainFlags pre;
  pre.run.task = train::TrainOptions::Task::kPretrain;
  CLI::App* p = train->add_subcommand("pretrain", "Pretrain on a .txt or .jsonl {\"text\"} corpus");
  p->add_option("--model", pre.run.model_dir, "Start from this Hugging Face directory");
  p->add_option("--arch", pre.arch, "Random init: qwen3 | llama (instead of --model)");
  p->add_option("--preset", pre.preset, "Random init preset (tiny, qwen3-0.6b, ...)");
  p->add_option("--config", pre.config, "Random init: JSON config.json fields over the preset");
  p->add_option("--eval-frac", pre.run.eval_frac, "Fraction of the corpus' tail held out")
      ->capture_default_str();
  AddCommonFlags(p, pre);
  p->callback([&exit_code] { exit_code = RunTrain(pre); });

  static TrainFlags sft;
  sft.run.task = train::TrainOptions::Task::kSft;
  sft.run.schedule.lr = 1e-4;
  sft.run.seq = 1024;
  sft.run.batch = 1;
  CLI::App* s = train->add_subcommand("sft", "Fine-tune on chat JSONL (assistant turns only)");
  s->add_option("--model", sft.run.model_dir, "Hugging Face directory")->required();
  s->add_option("--lora-rank", sft.run.lora.rank, "LoRA rank (0 = full fine-tuning)")
      ->capture_default_str();
  sft.run.lora.alpha = 16;
  s->add_option("--lora-alpha", sft.run.lora.alpha, "LoRA alpha (scale alpha / rank)")
      ->capture_default_str();
  s->add_option("--lora-targets", sft.lora_targets,
                "all-linear or a comma list of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,"
                "down_proj")
      ->capture_default_str();
  s->add_flag("--dry-run", sft.dry_run,
              "Print the plan and the first records' tokens with their loss mask; train nothing");
  s->add_flag("--json", sft.json, "With --dry-run: JSON output (the only format)");
  s->add_option("--dry-run-records", sft.dry_run_records, "Records shown by --dry-run")
      ->capture_default_str();
  AddCommonFlags(s, sft);
  s->callback([&exit_code] { exit_code = RunTrain(sft); });

  static std::string eval_model, eval_data;
  static int64_t eval_seq = 256, eval_batch = 8;
  static int eval_threads = 0;
  static bool eval_chat = false;
  CLI::App* e = train->add_subcommand("eval", "Loss and perplexity of a model on data");
  e->add_option("--model", eval_model, "Hugging Face directory (e.g. OUT/latest)")->required();
  e->add_option("--data", eval_data, "A .txt/.jsonl corpus, or chat JSONL with --chat")
      ->required();
  e->add_option("--seq", eval_seq, "Tokens per window")->capture_default_str();
  e->add_option("--batch", eval_batch, "Windows per forward")->capture_default_str();
  e->add_flag("--chat", eval_chat, "The data is chat JSONL: the loss of assistant turns");
  e->add_option("-t,--threads", eval_threads, "Compute threads");
  e->callback([&exit_code] {
    auto backend = kernels::BackendFromEnvironment();
    if (!backend.ok()) {
      exit_code = ReportError(backend.status());
      return;
    }
    core::ThreadPool pool(eval_threads);
    const kernels::Context ctx = kernels::Context::Cpu(*backend, pool);
    auto r = train::EvaluateModel(eval_model, eval_data, eval_seq, eval_batch, eval_chat, ctx);
    if (!r.ok()) {
      exit_code = ReportError(r.status());
      return;
    }
    // Bits per byte only for a corpus (chat examples are not cut from one text).
    const std::string per_byte =
        eval_chat ? "" : fmt::format(", \"bytes\": {}, \"bits_per_byte\": {:.6f}", r->bytes,
                                     r->bits_per_byte);
    fmt::print("{{\"loss\": {:.6f}, \"ppl\": {:.6f}, \"tokens\": {}{}}}\n", r->loss, r->ppl,
               r->tokens, per_byte);
    exit_code = kExitOk;
  });
  RegisterTrainToolCommands(*train, exit_code);
  RegisterTrainGrpoCommand(*train, exit_code);
}

}  // namespace arle::app
