// `arle bench`: prefill (pp) and decode (tg) throughput in llama-bench's format. pp<N> runs one
// forward over N prompt tokens from an empty cache; tg<N> generates N tokens one forward at a
// time from an empty cache (llama-bench's definitions), so the two tools' rows line up.
#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "apps/arle/cmd_bench_membw.h"
#include "apps/arle/cmd_bench_serve.h"
#include "apps/arle/commands.h"
#include "apps/arle/model_source.h"
#include "arle/convert/model_init.h"
#include "arle/core/random.h"

namespace arle::app {
namespace {

// Bytes of the weights as loaded (a tied embedding counted once) and a label for their types:
// the matrices' dtype, or "q4_k+q6_k" style when a quantized file mixes several, as llama-bench's
// model column names the file type.
struct WeightFootprint {
  int64_t bytes = 0;
  int64_t decode_bytes = 0;  // read once per decode step: all but an untied embedding table
  std::string label;
};

WeightFootprint Footprint(const models::ModelWeights& w) {
  WeightFootprint fp;
  std::set<const void*> seen;
  std::map<std::string, int64_t> matrix_bytes;  // dtype name -> bytes
  auto add = [&](const core::Tensor& t, bool matrix) {
    if (t.empty() || !seen.insert(t.data()).second) return;
    fp.bytes += t.nbytes();
    if (matrix) matrix_bytes[std::string(core::DTypeName(t.dtype()))] += t.nbytes();
  };
  add(w.embed, true);
  add(w.lm_head, true);
  add(w.out_norm, false);
  for (const models::LayerWeights& l : w.layers) {
    for (const core::Tensor* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      add(*m, true);
    }
    for (const core::Tensor* v : {&l.attn_norm, &l.ffn_norm, &l.q_norm, &l.k_norm, &l.bq, &l.bk,
                                  &l.bv, &l.bo, &l.b_gate, &l.b_up, &l.b_down}) {
      add(*v, false);
    }
  }
  // Largest share first.
  std::vector<std::pair<int64_t, std::string>> order;
  for (const auto& [name, b] : matrix_bytes) order.emplace_back(-b, name);
  std::sort(order.begin(), order.end());
  for (const auto& [neg, name] : order) fp.label += (fp.label.empty() ? "" : "+") + name;
  // A decode step gathers one embedding row; only a tied table is read whole (as the LM head).
  fp.decode_bytes = fp.bytes - (w.embed.data() != w.lm_head.data() ? w.embed.nbytes() : 0);
  return fp;
}

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

// Seconds for one pp or tg run.
core::StatusOr<double> TimeOnce(models::Model& model, int n_prompt, int n_gen, uint64_t seed) {
  core::Rng rng(seed);
  const int64_t n_vocab = model.config().n_vocab;
  auto random_token = [&] { return static_cast<int32_t>(rng.NextU64() % n_vocab); };
  std::vector<float> logits;
  const auto start = std::chrono::steady_clock::now();
  if (n_prompt > 0) {
    auto cache = model.NewKvCache(n_prompt);
    std::vector<int32_t> tokens(n_prompt);
    for (auto& t : tokens) t = random_token();
    ARLE_RETURN_IF_ERROR(model.Forward(tokens, *cache, &logits, false));
  } else {
    auto cache = model.NewKvCache(n_gen);
    for (int i = 0; i < n_gen; ++i) {
      const int32_t t = random_token();
      ARLE_RETURN_IF_ERROR(model.Forward(std::span<const int32_t>(&t, 1), *cache, &logits, false));
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Seconds for n_gen decode steps of `n_seq` sequences at once (paged KV, as the server batches
// them): every step feeds one new token per sequence and computes every sequence's logits.
core::StatusOr<double> TimeBatchedDecode(models::Model& model, int n_seq, int n_gen, uint64_t seed) {
  constexpr int64_t kBlock = 16;
  const int64_t blocks_per_seq = (n_gen + kBlock - 1) / kBlock;
  ARLE_ASSIGN_OR_RETURN(auto kv, model.NewPagedKv(n_seq * blocks_per_seq, kBlock, core::DType::kF32));
  std::vector<int32_t> tables(static_cast<size_t>(n_seq * blocks_per_seq));
  for (size_t i = 0; i < tables.size(); ++i) tables[i] = static_cast<int32_t>(i);
  core::Rng rng(seed);
  const int64_t n_vocab = model.config().n_vocab;
  std::vector<int32_t> tokens(n_seq);
  std::vector<models::PagedSequence> seqs(n_seq);
  std::vector<float> logits;
  const auto start = std::chrono::steady_clock::now();
  for (int step = 0; step < n_gen; ++step) {
    for (int s = 0; s < n_seq; ++s) {
      tokens[s] = static_cast<int32_t>(rng.NextU64() % n_vocab);
      seqs[s].token_begin = s;
      seqs[s].n_tokens = 1;
      seqs[s].n_past = step;
      seqs[s].block_table = std::span<const int32_t>(tables).subspan(s * blocks_per_seq, blocks_per_seq);
      seqs[s].want_logits = true;
    }
    ARLE_RETURN_IF_ERROR(model.ForwardPaged(tokens, seqs, *kv, &logits));
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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
    const io::ModelConfig& c = model.config();
    int64_t params = 0;
    for (const convert::WeightSpec& w : convert::HfWeightSpecs(c)) {
      int64_t n = 1;
      for (int64_t d : w.shape) n *= d;
      params += n;
    }
    const WeightFootprint fp = Footprint(model.weights());
    const double bytes = static_cast<double>(fp.bytes);
    const std::string model_name = fmt::format("{} {:.2f}B {}", io::ArchitectureName(c.arch),
                                               params / 1e9, fp.label);
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
        return test.n_seq > 0 ? TimeBatchedDecode(model, test.n_seq, test.n_gen, seed)
                              : TimeOnce(model, test.n_prompt, test.n_gen, seed);
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
                            {"threads", model.pool().size()}, {"test", name},
                            {"avg_ts", s.mean},         {"stddev_ts", s.sd},
                            {"samples_ts", tps}};
      if (test.n_gen > 0 && test.n_seq == 0) {
        // The decode roofline: every weight byte is read once per token.
        auto bw = MeasureReadBandwidth(model.pool(), int64_t{1} << 30, 3);
        if (!bw.ok()) return ReportError(bw.status());
        const double roof = bw->bytes_per_second / static_cast<double>(fp.decode_bytes);
        row["read_gbps"] = bw->bytes_per_second / 1e9;
        row["roofline_ts"] = roof;
        row["roofline_pct"] = 100.0 * s.mean / roof;
        roofline_lines.push_back(fmt::format(
            "{} t={}: read bandwidth {:.1f} GB/s / {:.3f} GiB of weights per token = {:.1f} t/s "
            "roofline; reached {:.0f} %",
            name, model.pool().size(), bw->bytes_per_second / 1e9,
            static_cast<double>(fp.decode_bytes) / (1 << 30), roof, 100.0 * s.mean / roof));
      }
      rows.push_back(row);
      if (o.output == "md") {
        if (!printed_header) {
          fmt::print("| model | size | params | backend | threads | test | t/s |\n");
          fmt::print("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
          printed_header = true;
        }
        fmt::print("| {} | {:.2f} GiB | {:.2f} M | CPU | {} | {} | {:.2f} ± {:.2f} |\n", model_name,
                   bytes / (1024.0 * 1024 * 1024), params / 1e6, model.pool().size(), name, s.mean,
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
  cmd->callback([cmd, &exit_code] {
    if (cmd->get_subcommands().empty()) exit_code = Bench(o);  // not `bench serve` / `bench membw`
  });
}

}  // namespace arle::app
