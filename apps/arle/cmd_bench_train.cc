// `arle bench train`: training throughput — tokens/s of forward + backward + optimizer step on
// random tokens — and the process's peak memory, for a model directory or a random-init preset.
// bench/train/torch_train.py runs the same model and step in PyTorch for the side-by-side.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "apps/arle/commands.h"
#include "apps/arle/embedded_assets.h"
#include "arle/convert/model_init.h"
#include "arle/core/random.h"
#include "arle/core/thread_pool.h"
#include "arle/kernels/context.h"
#include "arle/models/llama/llama_model.h"
#include "arle/train/llama_train.h"
#include "arle/train/optimizer.h"

namespace arle::app {
namespace {

struct BenchTrainOptions {
  std::string model;
  std::string arch, preset = "tiny", config;
  int64_t batch = 8, seq = 256;
  int steps = 3;
  int threads = 0;
  std::string output = "md";
};

// The process's peak resident set (VmHWM), in bytes; 0 when /proc is unreadable.
int64_t PeakRssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

int BenchTrain(const BenchTrainOptions& o) {
  if (o.batch < 1 || o.seq < 1 || o.steps < 1) {
    return ReportError(core::InvalidArgumentError("--batch, --seq and --steps must be >= 1"));
  }
  std::string dir = o.model;
  std::filesystem::path tmp;
  if (dir.empty()) {
    if (o.arch.empty()) return ReportError(core::InvalidArgumentError("give --model or --arch"));
    tmp = std::filesystem::temp_directory_path() /
          fmt::format("arle-bench-train-{}", static_cast<long>(::getpid()));
    convert::ModelInitOptions init;
    init.arch = o.arch;
    init.preset = o.preset;
    init.config_overrides = o.config;
    init.dtype = "f32";
    init.out = tmp.string();
    auto written = convert::InitModel(init, EmbeddedTokenizerAssets());
    if (!written.ok()) return ReportError(written.status());
    dir = *written;
  }
  auto model = models::llama::LlamaModel::LoadHf(dir);
  if (!tmp.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);  // the weights are copied below; the file can go
  }
  if (!model.ok()) return ReportError(model.status());
  const models::llama::LlamaConfig config = (*model)->config();
  auto weights = models::llama::OwnedF32Copy((*model)->weights());
  model->reset();  // the mapped file is not needed any more (and would count in the peak)
  if (!weights.ok()) return ReportError(weights.status());
  auto backend = kernels::BackendFromEnvironment();
  if (!backend.ok()) return ReportError(backend.status());
  core::ThreadPool pool(o.threads);
  const kernels::Context ctx = kernels::Context::Cpu(*backend, pool);
  auto trainer = train::LlamaTrainer::Create(config, std::move(weights).value(), ctx);
  if (!trainer.ok()) return ReportError(trainer.status());
  std::vector<train::ParamRef> refs;
  int64_t n_params = 0;
  for (const train::TrainParam& p : (*trainer)->params()) {
    refs.push_back({p.name, *p.value, *p.grad});
    n_params += p.value->numel();
  }
  auto optimizer = train::MakeAdamW(refs, {.pool = &pool});
  if (!optimizer.ok()) return ReportError(optimizer.status());

  const int64_t n = o.batch * o.seq;
  std::vector<int32_t> inputs(n), targets(n);
  core::Rng rng(1);
  auto step = [&]() -> core::Status {
    for (int64_t i = 0; i < n; ++i) {
      inputs[i] = static_cast<int32_t>(rng.NextU64() % config.n_vocab);
      targets[i] = static_cast<int32_t>(rng.NextU64() % config.n_vocab);
    }
    (*trainer)->ZeroGrads();
    auto loss = (*trainer)->ForwardBackward(
        {.inputs = inputs, .targets = targets, .n_seq = o.batch, .seq_len = o.seq},
        1.0 / static_cast<double>(n));
    if (!loss.ok()) return loss.status();
    (*optimizer)->Step(1e-4);
    return core::OkStatus();
  };
  if (core::Status s = step(); !s.ok()) return ReportError(s);  // warmup: buffers allocated
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (int i = 0; i < o.steps; ++i) {
    if (core::Status s = step(); !s.ok()) return ReportError(s);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double tps = static_cast<double>(n * o.steps) / secs;
  const double peak_gb = static_cast<double>(PeakRssBytes()) / 1e9;
  if (o.output == "json") {
    fmt::print(
        "{{\"params\": {}, \"batch\": {}, \"seq\": {}, \"threads\": {}, \"steps\": {}, "
        "\"tokens_per_s\": {:.2f}, \"step_s\": {:.4f}, \"peak_rss_gb\": {:.3f}}}\n",
        n_params, o.batch, o.seq, pool.size(), o.steps, tps, secs / o.steps, peak_gb);
  } else {
    fmt::print("| model | params | batch x seq | threads | train t/s | step s | peak RSS |\n");
    fmt::print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    fmt::print("| {} | {:.2f} M | {} x {} | {} | {:.1f} | {:.3f} | {:.2f} GB |\n",
               config.hf_architecture, n_params / 1e6, o.batch, o.seq, pool.size(), tps,
               secs / o.steps, peak_gb);
  }
  return kExitOk;
}

}  // namespace

void RegisterBenchTrainCommand(CLI::App& bench, int& exit_code) {
  CLI::App* cmd = bench.add_subcommand(
      "train", "Training tokens/s (forward + backward + AdamW step) and peak memory");
  static BenchTrainOptions o;
  cmd->add_option("--model", o.model, "Hugging Face directory (f32 master copy is trained)");
  cmd->add_option("--arch", o.arch, "Random init instead: qwen3 | llama");
  cmd->add_option("--preset", o.preset, "Random init preset")->capture_default_str();
  cmd->add_option("--config", o.config, "Random init: JSON config.json fields over the preset");
  cmd->add_option("--batch", o.batch, "Sequences per step")->capture_default_str();
  cmd->add_option("--seq", o.seq, "Tokens per sequence")->capture_default_str();
  cmd->add_option("--steps", o.steps, "Timed steps (after one warmup step)")->capture_default_str();
  cmd->add_option("-t,--threads", o.threads, "Compute threads (default: one per core)");
  cmd->add_option("-o,--output", o.output, "md | json")
      ->check(CLI::IsMember({"md", "json"}))
      ->capture_default_str();
  cmd->callback([&exit_code] { exit_code = BenchTrain(o); });
}

}  // namespace arle::app
