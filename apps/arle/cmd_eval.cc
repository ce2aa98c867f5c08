// `arle eval ppl | kld | mc | gen`: flags, the model or server they run on, progress and printing.
// The evaluations themselves are src/arle/eval (runners.h).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/arle/commands.h"
#include "apps/arle/model_source.h"
#include "arle/eval/engine_backend.h"
#include "arle/eval/openai_backend.h"
#include "arle/eval/report.h"
#include "arle/eval/runners.h"
#include "arle/eval/tasks.h"
#include "arle/runtime/engine.h"

namespace arle::app {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct EvalFlags {
  std::string model;
  std::string url, api_key, served_model;
  int concurrency = 8;
  int threads = 0;
  int64_t kv_cache_mb = 0;
  int64_t max_batch_tokens = 512;
  int max_seqs = 32;
  int max_in_flight = 0;  // 0: 2 * max_seqs
  bool no_prefix_cache = false;
  bool add_bos = false;
  bool json = false;
  std::string out_dir;
  std::string chat_template;
  // ppl / kld
  std::string file, base;
  int64_t ctx = 512, chunks = -1, stride = 0;
  // tasks
  std::string task, data, fewshot_data;
  int shots = -1;
  uint64_t seed = 1234;
  int64_t limit = -1;
  // gen
  int n = 1;
  float temperature = 0, top_p = 1;
  int64_t max_tokens = 0;
  bool chat = false;
  std::string enable_thinking;
  double timeout = 3.0;
  bool unsafe_no_sandbox = false;
  std::vector<int> pass_at;
};

// A progress line on stderr: done/total, items/s and ETA; rewritten in place on a terminal,
// one line per 10 % otherwise.
class ProgressLine {
 public:
  ProgressLine(std::string what, int64_t total)
      : what_(std::move(what)),
        total_(total),
        start_(Clock::now()),
        tty_(isatty(STDERR_FILENO) != 0) {}
  void Update(int64_t done) {
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = s > 0 ? static_cast<double>(done) / s : 0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
    const std::string line =
        fmt::format("{} {}/{}  {:.2f}/s  eta {:.0f}s", what_, done, total_, rate, eta);
    if (tty_) {
      fmt::print(stderr, "\r\033[K{}", line);
      if (done >= total_) fmt::print(stderr, "\n");
    } else if (total_ > 0 && (done * 10 / total_ != last_decile_ || done == total_)) {
      last_decile_ = done * 10 / total_;
      fmt::print(stderr, "{}\n", line);
    }
    std::fflush(stderr);
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  std::string what_;
  int64_t total_;
  Clock::time_point start_;
  bool tty_;
  int64_t last_decile_ = -1;
};

// A loaded model with its engine (and chat setup, for chat generation).
struct LocalModel {
  LoadedModel loaded;
  std::optional<tokenizer::ChatSetup> chat;
  std::unique_ptr<runtime::Engine> engine;
};

core::StatusOr<std::unique_ptr<LocalModel>> OpenLocal(const std::string& spec, const EvalFlags& f,
                                                      bool with_chat) {
  auto local = std::make_unique<LocalModel>();
  models::LoadOptions load;
  load.n_threads = f.threads;
  ARLE_ASSIGN_OR_RETURN(local->loaded, LoadModel(spec, load));
  if (with_chat) {
    ARLE_ASSIGN_OR_RETURN(local->chat,
                          tokenizer::LoadChatSetup(local->loaded.location, *local->loaded.tokenizer,
                                                   f.chat_template, local->loaded.gguf.get()));
  }
  runtime::EngineOptions o;
  o.kv_cache_bytes = f.kv_cache_mb << 20;
  o.max_batch_tokens = f.max_batch_tokens;
  o.max_seqs = f.max_seqs;
  o.enable_prefix_cache = !f.no_prefix_cache;
  ARLE_ASSIGN_OR_RETURN(local->engine,
                        runtime::Engine::Create(*local->loaded.model, *local->loaded.tokenizer, o));
  return local;
}

core::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::IoError("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Finish(const EvalFlags& f, const eval::Summary& summary,
           const std::vector<std::string>& samples) {
  if (!f.out_dir.empty()) {
    if (core::Status s = eval::WriteReport(f.out_dir, summary, samples); !s.ok()) {
      return ReportError(s);
    }
  }
  if (f.json) {
    fmt::print("{}\n", eval::SummaryJson(summary));
  } else {
    fmt::print("{}", eval::SummaryText(summary));
  }
  return kExitOk;
}

int RunPpl(const EvalFlags& f) {
  auto local = OpenLocal(f.model, f, false);
  if (!local.ok()) return ReportError(local.status());
  auto text = ReadText(f.file);
  if (!text.ok()) return ReportError(text.status());
  eval::PerplexityOptions o{.ctx = f.ctx, .chunks = f.chunks, .stride = f.stride};
  const auto start = Clock::now();
  // llama-perplexity's running line: [1]ppl,[2]ppl,...
  auto report = eval::RunPerplexity(*(*local)->engine, *text, o, [&](int64_t k, double ppl) {
    if (!f.json) fmt::print(stderr, "[{}]{:.4f},", k + 1, ppl);
    std::fflush(stderr);
  });
  if (!f.json) fmt::print(stderr, "\n");
  if (!report.ok()) return ReportError(report.status());
  eval::Summary s;
  s.task = report->sliding ? "ppl (sliding window)" : "ppl";
  s.model = f.model.empty() ? "stories260K (built in)" : f.model;
  s.metrics = {{"ppl", report->stats.perplexity(), report->stats.perplexity_stderr()},
               {"nll", report->stats.mean(), std::nullopt},
               {"tokens", static_cast<double>(report->stats.count()), std::nullopt},
               {"chunks", static_cast<double>(report->chunks), std::nullopt}};
  s.samples = report->chunks;
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  s.settings_json = Json{{"file", f.file},
                         {"ctx", f.ctx},
                         {"chunks", f.chunks},
                         {"stride", f.stride},
                         {"file_tokens", report->file_tokens}}
                        .dump();
  if (f.json) {
    // The fields the issue names, flat, for scripts.
    fmt::print("{}\n", Json{{"ppl", report->stats.perplexity()},
                            {"ppl_stderr", report->stats.perplexity_stderr()},
                            {"nll", report->stats.mean()},
                            {"tokens", report->stats.count()},
                            {"chunks", report->chunks},
                            {"file_tokens", report->file_tokens},
                            {"ctx", f.ctx},
                            {"stride", f.stride}}
                           .dump());
    if (!f.out_dir.empty()) {
      if (core::Status st = eval::WriteReport(f.out_dir, s, {}); !st.ok()) return ReportError(st);
    }
    return kExitOk;
  }
  return Finish(f, s, {});
}

int RunKld(const EvalFlags& f) {
  auto base = OpenLocal(f.base, f, false);
  if (!base.ok()) return ReportError(base.status());
  auto model = OpenLocal(f.model, f, false);
  if (!model.ok()) return ReportError(model.status());
  auto text = ReadText(f.file);
  if (!text.ok()) return ReportError(text.status());
  eval::PerplexityOptions o{.ctx = f.ctx, .chunks = f.chunks, .stride = f.stride};
  const auto start = Clock::now();
  auto summary = eval::RunKlDivergence(
      *(*base)->engine, *(*model)->engine, *text, o, [&](int64_t k, const eval::KldSummary& r) {
        if (!f.json)
          fmt::print(stderr, "[{}]kld {:.6f} top1 {:.2f}%, ", k + 1, r.kld_mean, 100 * r.same_top);
        std::fflush(stderr);
      });
  if (!f.json) fmt::print(stderr, "\n");
  if (!summary.ok()) return ReportError(summary.status());
  const eval::KldSummary& k = *summary;
  eval::Summary s;
  s.task = "kld";
  s.model = f.model + " vs base " + f.base;
  s.metrics = {{"kld_mean", k.kld_mean, k.kld_stderr},
               {"kld_median", k.kld_median, std::nullopt},
               {"kld_p90", k.kld_p90, std::nullopt},
               {"kld_p99", k.kld_p99, std::nullopt},
               {"kld_p99.9", k.kld_p999, std::nullopt},
               {"kld_max", k.kld_max, std::nullopt},
               {"same_top", k.same_top, k.same_top_stderr},
               {"ppl", k.ppl, k.ppl_stderr},
               {"ppl_base", k.ppl_base, k.ppl_base_stderr},
               {"ln_ppl_ratio", k.ln_ppl_ratio, std::nullopt},
               {"p_diff_rms", k.p_diff_rms, std::nullopt},
               {"tokens", static_cast<double>(k.count), std::nullopt}};
  s.samples = k.count;
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  s.settings_json = Json{{"file", f.file}, {"ctx", f.ctx}, {"chunks", f.chunks}}.dump();
  return Finish(f, s, {});
}

// The backend of mc / gen: --url, else a local --model.
struct BackendHolder {
  std::unique_ptr<LocalModel> local;
  std::unique_ptr<eval::Backend> backend;
};

core::StatusOr<BackendHolder> OpenBackend(const EvalFlags& f, bool with_chat) {
  BackendHolder h;
  if (!f.url.empty()) {
    if (!f.model.empty()) {
      return core::InvalidArgumentError("pass --model or --url, not both");
    }
    eval::OpenAiBackendOptions o;
    o.url = f.url;
    o.api_key = f.api_key;
    o.model = f.served_model;
    o.concurrency = f.concurrency;
    o.add_bos = f.add_bos;
    ARLE_ASSIGN_OR_RETURN(h.backend, eval::OpenAiBackend::Connect(o));
    return h;
  }
  ARLE_ASSIGN_OR_RETURN(h.local, OpenLocal(f.model, f, with_chat));
  eval::EngineBackendOptions o;
  o.add_bos = f.add_bos;
  o.max_in_flight = f.max_in_flight > 0 ? f.max_in_flight : 2 * f.max_seqs;
  o.description = f.model.empty() ? "stories260K (built in)" : f.model;
  h.backend = std::make_unique<eval::EngineBackend>(
      *h.local->engine, h.local->chat ? &*h.local->chat : nullptr,
      runtime::DefaultStopParams(*h.local->loaded.model, *h.local->loaded.tokenizer), o);
  return h;
}

eval::TaskOptions TaskOptionsOf(const EvalFlags& f) {
  eval::TaskOptions o;
  o.shots = f.shots;
  o.seed = f.seed;
  o.fewshot_data = f.fewshot_data;
  o.limit = f.limit;
  return o;
}

int RunMc(const EvalFlags& f) {
  auto docs = eval::LoadMcTask(f.task, f.data, TaskOptionsOf(f));
  if (!docs.ok()) return ReportError(docs.status());
  auto backend = OpenBackend(f, false);
  if (!backend.ok()) return ReportError(backend.status());
  ProgressLine progress(f.task, static_cast<int64_t>(docs->size()));
  auto report = eval::RunMultipleChoice(*backend->backend, f.task, *docs,
                                        [&](int64_t done) { progress.Update(done); });
  if (!report.ok()) return ReportError(report.status());
  eval::Summary s;
  s.task = f.task;
  s.model = backend->backend->Describe();
  s.metrics.push_back({"acc", report->acc.mean, report->acc.stderr_});
  if (report->has_acc_norm) {
    s.metrics.push_back({"acc_norm", report->acc_norm.mean, report->acc_norm.stderr_});
  }
  s.samples = static_cast<int64_t>(docs->size());
  s.seconds = progress.seconds();
  s.settings_json = Json{
      {"data", f.data},
      {"shots", f.shots},
      {"seed", f.seed},
      {"fewshot_data", f.fewshot_data},
      {"limit",
       f.limit}}.dump();
  return Finish(f, s, eval::McSampleLines(*docs, *report));
}

int RunGen(const EvalFlags& f) {
  auto docs = eval::LoadGenTask(f.task, f.data, TaskOptionsOf(f));
  if (!docs.ok()) return ReportError(docs.status());
  auto backend = OpenBackend(f, f.chat);
  if (!backend.ok()) return ReportError(backend.status());
  eval::GenOptions o;
  o.n = f.n;
  o.temperature = f.temperature;
  o.top_p = f.top_p;
  o.max_tokens = f.max_tokens;
  o.seed = f.seed;
  o.chat = f.chat;
  if (!f.enable_thinking.empty()) {
    if (f.enable_thinking != "true" && f.enable_thinking != "false") {
      return ReportError(core::InvalidArgumentError("--enable-thinking must be true or false"));
    }
    o.enable_thinking = f.enable_thinking == "true";
  }
  o.code.timeout_seconds = f.timeout;
  o.code.unsafe_no_sandbox = f.unsafe_no_sandbox;
  if (f.unsafe_no_sandbox) WarnUnsafeNoSandbox();
  o.pass_at = f.pass_at;
  ProgressLine progress(f.task, static_cast<int64_t>(docs->size()));
  auto report = eval::RunGenerative(*backend->backend, f.task, *docs, o,
                                    [&](int64_t done) { progress.Update(done); });
  if (!report.ok()) return ReportError(report.status());
  eval::Summary s;
  s.task = f.task;
  s.model = backend->backend->Describe();
  for (const auto& [name, m] : report->metrics) s.metrics.push_back({name, m.mean, m.stderr_});
  s.samples = static_cast<int64_t>(docs->size());
  s.seconds = progress.seconds();
  s.settings_json = Json{{"data", f.data},   {"shots", f.shots},
                         {"n", f.n},         {"temperature", f.temperature},
                         {"top_p", f.top_p}, {"max_tokens", f.max_tokens},
                         {"chat", f.chat},   {"seed", f.seed},
                         {"limit", f.limit}}
                        .dump();
  return Finish(f, s, eval::GenSampleLines(*docs, *report));
}

void AddEngineFlags(CLI::App* c, EvalFlags& f) {
  c->add_option("-t,--threads", f.threads, "Compute threads (default: one per core)");
  c->add_option("--kv-cache-mb", f.kv_cache_mb, "KV cache size (default: a quarter of free RAM)");
  c->add_option("--max-batch-tokens", f.max_batch_tokens, "Tokens per engine step")
      ->capture_default_str();
  c->add_option("--max-seqs", f.max_seqs, "Sequences per engine step")->capture_default_str();
  c->add_option("--max-in-flight", f.max_in_flight,
                "Requests submitted at once (default 2 x --max-seqs; 1 = one at a time)");
  c->add_flag("--no-prefix-cache", f.no_prefix_cache,
              "Recompute shared contexts (for comparisons; the cache never changes a score)");
}

void AddOutputFlags(CLI::App* c, EvalFlags& f) {
  c->add_flag("--json", f.json, "Print one JSON object instead of the table");
  c->add_option("--out", f.out_dir,
                "Write summary.json, summary.md and samples.jsonl into this directory");
}

void AddTaskFlags(CLI::App* c, EvalFlags& f) {
  c->add_option("--task", f.task, "The task (see `arle eval tasks`)")->required();
  c->add_option("--data", f.data, "The task's data file (JSONL, JSON, CSV; see `arle eval tasks`)")
      ->required();
  c->add_option("--shots", f.shots, "Few-shot examples (default: the harness's for the task)");
  c->add_option("--seed", f.seed, "Few-shot sampling seed (and generation seed)")
      ->capture_default_str();
  c->add_option("--fewshot-data", f.fewshot_data,
                "File of few-shot examples (MMLU dev, GSM8K train, ...)");
  c->add_option("--limit", f.limit, "Evaluate only the first N documents");
  c->add_option("--model", f.model, "Model to evaluate in process (default: the built-in one)");
  c->add_option("--url", f.url, "Evaluate an OpenAI-compatible server instead (http://host:port)");
  c->add_option("--api-key", f.api_key, "API key for --url");
  c->add_option("--served-model", f.served_model, "Model name for --url (default: the first)");
  c->add_option("--concurrency", f.concurrency, "Connections to --url")->capture_default_str();
  c->add_flag("--add-bos", f.add_bos,
              "Encode with the tokenizer's BOS (the harness's add_bos_token=True)");
}

}  // namespace

void RegisterEvalCommand(CLI::App& app, int& exit_code) {
  static EvalFlags f;
  CLI::App* eval = app.add_subcommand(
      "eval", "Perplexity, KL divergence, multiple-choice and generative benchmarks");
  eval->require_subcommand(1);

  CLI::App* ppl =
      eval->add_subcommand("ppl", "Perplexity of a text, as llama-perplexity computes it");
  ppl->add_option("--model", f.model, "Model (default: the built-in one)");
  ppl->add_option("--file", f.file, "The text (e.g. wikitext-2's wiki.test.raw)")->required();
  ppl->add_option("--ctx", f.ctx, "Tokens per chunk")->capture_default_str();
  ppl->add_option("--chunks", f.chunks, "At most this many chunks (default: all)");
  ppl->add_option("--stride", f.stride,
                  "Hugging Face's sliding-window perplexity with this stride instead");
  AddEngineFlags(ppl, f);
  AddOutputFlags(ppl, f);
  ppl->callback([&exit_code] { exit_code = RunPpl(f); });

  CLI::App* kld = eval->add_subcommand(
      "kld", "KL divergence of a model's token distributions from a base model's");
  kld->add_option("--base", f.base, "The reference model (e.g. the f16 one)")->required();
  kld->add_option("--model", f.model, "The model compared (e.g. a quantization)")->required();
  kld->add_option("--file", f.file, "The text")->required();
  kld->add_option("--ctx", f.ctx, "Tokens per chunk")->capture_default_str();
  kld->add_option("--chunks", f.chunks, "At most this many chunks (default: all)");
  AddEngineFlags(kld, f);
  AddOutputFlags(kld, f);
  kld->callback([&exit_code] { exit_code = RunKld(f); });

  CLI::App* mc =
      eval->add_subcommand("mc", "Multiple-choice tasks (log-likelihood of each choice)");
  AddTaskFlags(mc, f);
  AddEngineFlags(mc, f);
  AddOutputFlags(mc, f);
  mc->callback([&exit_code] { exit_code = RunMc(f); });

  CLI::App* gen = eval->add_subcommand("gen", "Generative tasks (GSM8K, HumanEval, MATH)");
  AddTaskFlags(gen, f);
  AddEngineFlags(gen, f);
  AddOutputFlags(gen, f);
  gen->add_option("-n", f.n, "Samples per problem")->capture_default_str();
  gen->add_option("--temperature", f.temperature, "Sampling temperature (0 = greedy)")
      ->capture_default_str();
  gen->add_option("--top-p", f.top_p, "Nucleus sampling")->capture_default_str();
  gen->add_option("--max-tokens", f.max_tokens,
                  "Tokens per answer (default: the harness's, 256; humaneval 1024)");
  gen->add_flag("--chat", f.chat, "Send each prompt as a user turn through the chat template");
  gen->add_option("--chat-template", f.chat_template, "Jinja chat template file (with --chat)");
  gen->add_option("--enable-thinking", f.enable_thinking,
                  "true/false: the template's thinking switch (with --chat)");
  gen->add_option("--timeout", f.timeout, "HumanEval: seconds per program")->capture_default_str();
  gen->add_option("--pass-at", f.pass_at, "HumanEval: the k of pass@k (default 1 and n)");
  gen->add_flag("--unsafe-no-sandbox", f.unsafe_no_sandbox,
                "HumanEval: run programs without bubblewrap (DANGEROUS)");
  gen->callback([&exit_code] { exit_code = RunGen(f); });

  CLI::App* tasks = eval->add_subcommand("tasks", "List the tasks, their data and metrics");
  tasks->callback([&exit_code] {
    for (const eval::TaskInfo& t : eval::Tasks()) {
      fmt::print("{:<14} {:<4} {} shots by default; harness task {}\n  data: {}\n  metrics: {}\n",
                 t.name, t.kind == eval::TaskKind::kMultipleChoice ? "mc" : "gen", t.default_shots,
                 t.harness_task, t.data_fields_doc, t.metrics_note);
    }
    exit_code = kExitOk;
  });
}

}  // namespace arle::app
