// `arle bench`: prefill (pp) and decode (tg) throughput in llama-bench's format, measured through
// the engine. pp<N> runs one forward over N prompt tokens from an empty cache; tg<N> generates N
// tokens one forward at a time from an empty cache (llama-bench's definitions), so the two tools'
// rows line up.
#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "apps/arle/cmd_bench_membw.h"
#include "apps/arle/cmd_bench_serve.h"
#include "apps/arle/commands.h"
#include "apps/arle/model_source.h"
#include "arle/convert/model_init.h"
#include "arle/core/random.h"
#include "arle/models/registry.h"
#include "arle/runtime/engine.h"
#include "arle/runtime/request_stream.h"

namespace arle::app {
namespace {

struct BenchOptions {
  std::string model;
  int n_prompt = 512;
  int n_gen = 128;
  std::string threads;  // comma-separated list
  std::string batches;  // comma-separated sequence counts for batched decode ("" = none)
  int reps = 5;
  std::string output = "md";
};

struct Stat {
  double mean = 0, sd = 0;
};

Stat MeanSd(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(s.sd / static_cast<double>(v.size() - 1));
  }
  return s;
}

// Seconds for one test, run as requests on the engine (the path every command takes): pp<N> is
// one request of N random prompt tokens whose first token ends it (one forward over the prompt,
// as the step budget holds it whole); tg<N> is one request of a single random token generating N
// tokens with EOS ignored (N forwards of one token); with n_seq > 1, that many such requests
// decoding together in each step.
core::StatusOr<double> TimeOnce(runtime::Engine& engine, int n_prompt, int n_gen, int n_seq,
                                uint64_t seed) {
  core::Rng rng(seed);
  const int64_t n_vocab = engine.n_vocab();
  std::vector<std::unique_ptr<runtime::RequestStream>> streams;
  for (int s = 0; s < std::max(n_seq, 1); ++s) {
    runtime::EngineRequest request;
    request.prompt_tokens.resize(n_prompt > 0 ? n_prompt : 1);
    for (auto& t : request.prompt_tokens) t = static_cast<int32_t>(rng.NextU64() % n_vocab);
    request.sampling.temperature = 0;
    request.stop.ignore_eos = true;
    request.stop.max_tokens = n_prompt > 0 ? 1 : n_gen;
    request.skip_special_tokens = false;
    ARLE_ASSIGN_OR_RETURN(auto stream, runtime::RequestStream::Submit(engine, std::move(request)));
    streams.push_back(std::move(stream));
  }
  runtime::RequestStream::Clock::time_point end = streams.front()->submitted();
  for (auto& stream : streams) {
    while (std::optional<runtime::EngineOutput> out = stream->Next()) {
      if (out->finish_reason == runtime::FinishReason::kAbort) {
        return core::InternalError("bench: the engine aborted a request");
      }
    }
    end = std::max(end, *stream->finished());
  }
  // From the first submission to the last token, as the engine thread saw them.
  return std::chrono::duration<double>(end - streams.front()->submitted()).count();
}

int Bench(const BenchOptions& o) {
  auto thread_counts = ParseThreadCounts(o.threads);
  if (!thread_counts.ok()) return ReportError(thread_counts.status());
  if (o.reps < 1 || o.n_prompt < 0 || o.n_gen < 0) {
    return ReportError(core::InvalidArgumentError("-r must be >= 1 and -p/-n >= 0"));
  }
  std::vector<int> batches;
  if (!o.batches.empty()) {
    auto parsed = ParseThreadCounts(o.batches);  // the same comma-separated integers
    const bool in_range = parsed.ok() && std::all_of(parsed->begin(), parsed->end(),
                                                     [](int b) { return b >= 1 && b <= 1024; });
    if (!in_range) {
      return ReportError(core::InvalidArgumentError("bad -b '" + o.batches + "'",
                                                    "comma-separated sequence counts from 1 to 1024, e.g. 1,4,8"));
    }
    batches = *parsed;
    if (o.n_gen < 1) return ReportError(core::InvalidArgumentError("-b needs -n >= 1"));
  }
  nlohmann::json rows = nlohmann::json::array();
  bool printed_header = false;
  std::vector<std::string> roofline_lines;
  for (int threads : *thread_counts) {
    models::LoadOptions load;
    load.n_threads = threads;
    auto loaded = LoadModel(o.model, load);
    if (!loaded.ok()) return ReportError(loaded.status());
    models::Model& model = *loaded->model;
    const models::ModelInfo& info = model.info();
    const int64_t params = info.n_params;
    const double bytes = static_cast<double>(info.weight_bytes);
    auto arch = models::FindHfArchitecture(info.architecture);
    const std::string model_name =
        fmt::format("{} {:.2f}B {}", arch.ok() ? arch->architecture.gguf_name : info.architecture,
                    params / 1e9, info.weight_format);
    const int n_threads = model.context() != nullptr ? model.context()->pool().size() : threads;
    // One engine per thread count, sized for the longest test; no prefix cache (random tokens
    // would never hit it, and a bench must not measure lookups).
    const int max_seqs = batches.empty() ? 1 : *std::max_element(batches.begin(), batches.end());
    runtime::EngineOptions engine_options;
    engine_options.max_seqs = max_seqs;
    engine_options.max_batch_tokens = std::max({o.n_prompt, max_seqs, 512});
    engine_options.enable_prefix_cache = false;
    engine_options.max_context_tokens = std::max(o.n_prompt, 1) + o.n_gen + 1;
    auto engine = runtime::Engine::Create(model, *loaded->tokenizer, engine_options);
    if (!engine.ok()) return ReportError(engine.status());
    struct Test {
      std::string name;
      int n_prompt = 0, n_gen = 0, n_seq = 0;  // n_seq > 0: batched decode of n_seq sequences
    };
    std::vector<Test> tests;
    if (o.n_prompt > 0) tests.push_back({fmt::format("pp{}", o.n_prompt), o.n_prompt, 0, 0});
    if (o.n_gen > 0) tests.push_back({fmt::format("tg{}", o.n_gen), 0, o.n_gen, 0});
    for (int b : batches) tests.push_back({fmt::format("tg{} b{}", o.n_gen, b), 0, o.n_gen, b});
    for (const Test& test : tests) {
      const std::string& name = test.name;
      auto time_once = [&](uint64_t seed) {
        return TimeOnce(**engine, test.n_prompt, test.n_gen, test.n_seq, seed);
      };
      auto warmup = time_once(1);
      if (!warmup.ok()) return ReportError(warmup.status());
      std::vector<double> tps;
      for (int r = 0; r < o.reps; ++r) {
        auto secs = time_once(2 + r);
        if (!secs.ok()) return ReportError(secs.status());
        // Batched decode: tokens generated per second over all sequences.
        tps.push_back((test.n_prompt + test.n_gen * std::max(test.n_seq, 1)) / *secs);
      }
      const Stat s = MeanSd(tps);
      nlohmann::json row = {{"model", model_name},      {"size_bytes", bytes},
                            {"params", params},         {"backend", "CPU"},
                            {"threads", n_threads}, {"test", name},
                            {"avg_ts", s.mean},         {"stddev_ts", s.sd},
                            {"samples_ts", tps}};
      if (test.n_gen > 0 && test.n_seq == 0) {
        // The decode roofline: every weight byte is read once per token.
        core::ThreadPool bw_pool(n_threads);
        auto bw = MeasureReadBandwidth(bw_pool, int64_t{1} << 30, 3);
        if (!bw.ok()) return ReportError(bw.status());
        const double roof = bw->bytes_per_second / static_cast<double>(info.decode_weight_bytes);
        row["read_gbps"] = bw->bytes_per_second / 1e9;
        row["roofline_ts"] = roof;
        row["roofline_pct"] = 100.0 * s.mean / roof;
        roofline_lines.push_back(fmt::format(
            "{} t={}: read bandwidth {:.1f} GB/s / {:.3f} GiB of weights per token = {:.1f} t/s "
            "roofline; reached {:.0f} %",
            name, n_threads, bw->bytes_per_second / 1e9,
            static_cast<double>(info.decode_weight_bytes) / (1 << 30), roof, 100.0 * s.mean / roof));
      }
      rows.push_back(row);
      if (o.output == "md") {
        if (!printed_header) {
          fmt::print("| model | size | params | backend | threads | test | t/s |\n");
          fmt::print("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
          printed_header = true;
        }
        fmt::print("| {} | {:.2f} GiB | {:.2f} M | CPU | {} | {} | {:.2f} ± {:.2f} |\n", model_name,
                   bytes / (1024.0 * 1024 * 1024), params / 1e6, n_threads, name, s.mean,
                   s.sd);
        std::fflush(stdout);
      }
    }
  }
  if (o.output == "md" && !roofline_lines.empty()) {
    fmt::print("\n");
    for (const std::string& line : roofline_lines) fmt::print("{}\n", line);
  }
  if (o.output == "json") fmt::print("{}\n", rows.dump(2));
  return kExitOk;
}

}  // namespace

void RegisterBenchCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("bench", "Prefill and decode throughput (llama-bench style)");
  static BenchOptions o;
  cmd->add_option("-m,--model", o.model, "Model (default: built-in)");
  cmd->add_option("-p,--n-prompt", o.n_prompt, "Prompt tokens for the pp test (0 = skip)")
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", o.n_gen, "Generated tokens for the tg test (0 = skip)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", o.threads, "Comma-separated thread counts (default: physical cores)");
  cmd->add_option("-b,--batch", o.batches,
                  "Batched decode: comma-separated sequence counts (tokens/s over all sequences)");
  cmd->add_option("-r,--repetitions", o.reps, "Timed repetitions per test")->capture_default_str();
  cmd->add_option("-o,--output", o.output, "md | json")
      ->check(CLI::IsMember({"md", "json"}))->capture_default_str();
  RegisterBenchServeCommand(*cmd, exit_code);
  RegisterBenchMembwCommand(*cmd, exit_code);
  RegisterBenchTrainCommand(*cmd, exit_code);
  cmd->callback([cmd, &exit_code] {
    if (cmd->get_subcommands().empty()) exit_code = Bench(o);  // not bench serve / membw / train
  });
}

}  // namespace arle::app
