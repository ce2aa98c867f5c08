// `arle train plot` (metrics JSONL -> loss SVG) and `arle train estimate-memory` (the bytes a
// run holds, from train::LlamaTrainer::EstimateMemory): flags and printing.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/arle/commands.h"
#include "arle/convert/model_presets.h"
#include "arle/core/file_util.h"
#include "arle/models/llama/llama_spec.h"
#include "arle/train/llama_train.h"
#include "arle/train/loss_plot.h"

namespace arle::app {
namespace {

struct PlotFlags {
  std::string metrics;
  std::string out;
  std::string title;
  int width = 800, height = 480;
  std::string metric = "loss", eval_metric = "eval_loss";
};

int RunPlot(const PlotFlags& f) {
  auto text = core::ReadFile(f.metrics);
  if (!text.ok()) return ReportError(text.status());
  auto curves = train::ParseMetricsJsonl(*text, f.metrics, {f.metric, f.eval_metric});
  if (!curves.ok()) return ReportError(curves.status());
  for (const std::string& w : curves->warnings) fmt::print(stderr, "arle: warning: {}\n", w);
  if (f.width < 200 || f.height < 150 || f.width > 10000 || f.height > 10000) {
    return ReportError(core::InvalidArgumentError("--width/--height must be in [200, 10000] x "
                                                  "[150, 10000] pixels"));
  }
  train::PlotOptions o;
  o.title = f.title.empty() ? f.metrics : f.title;
  o.width = f.width;
  o.height = f.height;
  if (f.metric != "loss" || f.eval_metric != "eval_loss") {
    o.y_label = f.metric + " / " + f.eval_metric;
    o.train_label = f.metric;
    o.eval_label = f.eval_metric;
  }
  const std::string svg = train::LossPlotSvg(*curves, o);
  if (core::Status s = core::WriteFileAtomic(f.out, svg); !s.ok()) return ReportError(s);
  fmt::print("{}: {} train points, {} eval points\n", f.out, curves->train.size(),
             curves->eval.size());
  return kExitOk;
}

struct MemoryFlags {
  std::string model, arch, preset = "tiny", config;
  int64_t batch = 8, seq = 256;
  int64_t lora_rank = 0;
  std::string lora_targets = "q_proj,v_proj";
  bool json = false;
};

std::string Mib(int64_t bytes) {
  return fmt::format("{:>10.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

int RunEstimateMemory(const MemoryFlags& f) {
  models::llama::LlamaConfig config;
  if (!f.model.empty()) {
    if (!f.arch.empty()) {
      return ReportError(core::InvalidArgumentError("give --model or --arch/--preset, not both"));
    }
    auto c = models::llama::LoadHfConfig(f.model);
    if (!c.ok()) return ReportError(c.status());
    config = *c;
  } else if (!f.arch.empty()) {
    auto text = convert::PresetConfigJson(f.arch, f.preset, f.config);
    if (!text.ok()) return ReportError(text.status());
    auto c = models::llama::ParseHfConfig(*text, "--arch/--preset/--config");
    if (!c.ok()) return ReportError(c.status());
    config = *c;
  } else {
    return ReportError(core::InvalidArgumentError("give --model DIR or --arch/--preset"));
  }
  if (f.batch < 1 || f.seq < 1 || f.batch > 65536 || f.seq > (1 << 20)) {
    return ReportError(core::InvalidArgumentError("--batch and --seq must be >= 1"));
  }
  if (f.lora_rank < 0) return ReportError(core::InvalidArgumentError("--lora-rank must be >= 0"));
  train::LoraOptions lora;
  lora.rank = f.lora_rank;
  if (lora.rank > 0) {
    lora.targets = SplitList(f.lora_targets);
  }
  const int64_t n_tokens = f.batch * f.seq;
  auto m = train::LlamaTrainer::EstimateMemory(config, n_tokens, lora);
  if (!m.ok()) return ReportError(m.status());
  if (f.json) {
    const nlohmann::ordered_json j = {
        {"tokens", n_tokens},          {"trainable_params", m->trainable_params},
        {"weights", m->weights},       {"gradients", m->gradients},
        {"optimizer", m->optimizer},   {"activations", m->activations},
        {"attention_lse", m->attention_lse}, {"grad_workspace", m->grad_workspace},
        {"loss_head", m->loss_head},   {"head_chunk_rows", m->head_chunk_rows},
        {"lora_merge", m->lora_merge}, {"total", m->total()}};
    fmt::print("{}\n", j.dump());
    return kExitOk;
  }
  fmt::print("{} layers, hidden {}, vocab {}; micro-batch {} x {} = {} tokens; {}\n",
             config.n_layer, config.n_embd, config.n_vocab, f.batch, f.seq, n_tokens,
             lora.rank > 0 ? fmt::format("LoRA rank {} ({} values train)", lora.rank,
                                         m->trainable_params)
                           : fmt::format("full training ({} values)", m->trainable_params));
  fmt::print("weights (f32 master{})  {}\n", lora.rank > 0 ? " + adapters" : "", Mib(m->weights));
  fmt::print("gradients                {}\n", Mib(m->gradients));
  fmt::print("optimizer (AdamW m, v)   {}\n", Mib(m->optimizer));
  fmt::print("activations (kept)       {}\n", Mib(m->activations));
  fmt::print("attention lse            {}\n", Mib(m->attention_lse));
  fmt::print("gradient workspace       {}\n", Mib(m->grad_workspace));
  fmt::print("loss head ({} rows)  {}\n", fmt::format("{:>6}", m->head_chunk_rows),
             Mib(m->loss_head));
  if (m->lora_merge > 0) fmt::print("LoRA merge temporary     {}\n", Mib(m->lora_merge));
  fmt::print("total                    {}\n", Mib(m->total()));
  fmt::print("not counted: the process (~50 MiB), the tokenized data, and while loading one more "
             "copy of the weights (the model file)\n");
  return kExitOk;
}

}  // namespace

void RegisterTrainToolCommands(CLI::App& train, int& exit_code) {
  static PlotFlags plot;
  CLI::App* p = train.add_subcommand(
      "plot", "Draw a run's --metrics-jsonl as an SVG plot (losses, or --metric/--eval-metric)");
  p->add_option("metrics", plot.metrics, "The metrics JSONL of a run")->required();
  p->add_option("-o,--out", plot.out, "The SVG file to write")->required();
  p->add_option("--title", plot.title, "Plot title (default: the metrics file's name)");
  p->add_option("--width", plot.width, "Pixels")->capture_default_str();
  p->add_option("--height", plot.height, "Pixels")->capture_default_str();
  p->add_option("--metric", plot.metric,
                "Key of the per-step curve (e.g. reward_mean of arle train grpo)")
      ->capture_default_str();
  p->add_option("--eval-metric", plot.eval_metric,
                "Key of the evaluation curve (e.g. eval_accuracy of arle train grpo)")
      ->capture_default_str();
  p->callback([&exit_code] { exit_code = RunPlot(plot); });

  static MemoryFlags mem;
  CLI::App* m = train.add_subcommand(
      "estimate-memory", "Bytes a training run holds: weights, gradients, AdamW, activations");
  m->add_option("--model", mem.model, "Hugging Face directory (its config.json is read)");
  m->add_option("--arch", mem.arch, "Random init: qwen3 | llama (instead of --model)");
  m->add_option("--preset", mem.preset, "Random init preset")->capture_default_str();
  m->add_option("--config", mem.config, "JSON config.json fields over the preset");
  m->add_option("--batch", mem.batch, "Sequences per micro-batch")->capture_default_str();
  m->add_option("--seq", mem.seq, "Tokens per sequence")->capture_default_str();
  m->add_option("--lora-rank", mem.lora_rank, "LoRA rank (0 = full training)")
      ->capture_default_str();
  m->add_option("--lora-targets", mem.lora_targets, "all-linear or a comma list of projections")
      ->capture_default_str();
  m->add_flag("--json", mem.json, "One JSON object (bytes)");
  m->callback([&exit_code] { exit_code = RunEstimateMemory(mem); });

  RegisterTrainSelfTest(train, exit_code);
}

}  // namespace arle::app
