#include "arle/eval/runners.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>

#include "arle/eval/answer_extraction.h"
#include "arle/tokenizer/unicode.h"

namespace arle::eval {
namespace {

core::StatusOr<std::vector<ScoredWindow>> Windows(const runtime::Engine& engine,
                                                  const std::vector<int32_t>& tokens,
                                                  const PerplexityOptions& o) {
  if (o.ctx > engine.max_context_tokens()) {
    return core::InvalidArgumentError("--ctx " + std::to_string(o.ctx) +
                                          " is longer than the model's context of " +
                                          std::to_string(engine.max_context_tokens()),
                                      "use a smaller --ctx");
  }
  if (o.stride > 0) return SlidingWindows(tokens, o.ctx, o.stride, o.chunks);
  const tokenizer::Tokenizer& tok = engine.tokenizer();
  const std::optional<int32_t> bos =
      tok.adds_bos() && tok.bos_id().has_value() ? tok.bos_id() : std::nullopt;
  return LlamaPerplexityChunks(tokens, o.ctx, o.chunks, bos);
}

// As llama-perplexity tokenizes the file (common_tokenize(ctx, text, add_special = true) with
// parse_special false): the tokenizer's special prefix (BOS), and text such as "<|endoftext|>"
// encoded as plain text, not as the special token.
tokenizer::EncodeOptions PerplexityEncoding() {
  tokenizer::EncodeOptions o;
  o.add_special_tokens = true;
  o.parse_special = false;
  return o;
}

runtime::EngineRequest ScoringRequest(const runtime::Engine& engine, const ScoredWindow& w) {
  runtime::EngineRequest r;
  r.prompt_tokens = w.tokens;
  r.stop.max_tokens = 0;
  r.stop.max_context_tokens = engine.max_context_tokens();
  r.prompt_logprobs =
      runtime::PromptLogprobsParams{.from = w.score_from, .top_logprobs = 0, .on_logits = {}};
  return r;
}

// Runs windows through the engine with at most `max_in_flight` at once; `done(k, out)` is called
// (on this thread) in window order with each window's final event.
core::Status RunWindows(runtime::Engine& engine, const std::vector<ScoredWindow>& windows,
                        int max_in_flight,
                        const std::function<void(size_t, const runtime::EngineOutput&)>& done,
                        const std::function<runtime::EngineRequest(size_t)>& make) {
  std::mutex mu;
  std::condition_variable cv;
  std::map<size_t, runtime::EngineOutput> finished;
  size_t next_submit = 0, next_report = 0;
  int in_flight = 0;
  bool aborted = false;
  while (next_report < windows.size()) {
    while (in_flight < std::max(1, max_in_flight) && next_submit < windows.size()) {
      const size_t k = next_submit++;
      auto id = engine.Submit(make(k), [&, k](const runtime::EngineOutput& out) {
        if (out.finish_reason == runtime::FinishReason::kNone) return;
        std::lock_guard<std::mutex> lock(mu);
        if (out.finish_reason == runtime::FinishReason::kAbort) aborted = true;
        finished.emplace(k, out);
        cv.notify_all();
      });
      if (!id.ok()) return id.status();
      ++in_flight;
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return finished.count(next_report) > 0 || aborted; });
    if (aborted) return core::InternalError("the engine aborted a perplexity chunk (see the log)");
    runtime::EngineOutput out = std::move(finished.at(next_report));
    finished.erase(next_report);
    lock.unlock();
    --in_flight;
    done(next_report++, out);
  }
  return core::OkStatus();
}

}  // namespace

core::StatusOr<PerplexityReport> RunPerplexity(
    runtime::Engine& engine, const std::string& text, const PerplexityOptions& options,
    const std::function<void(int64_t, double)>& on_chunk) {
  const std::vector<int32_t> tokens = engine.tokenizer().Encode(text, PerplexityEncoding());
  ARLE_ASSIGN_OR_RETURN(std::vector<ScoredWindow> windows, Windows(engine, tokens, options));
  PerplexityReport report;
  report.file_tokens = static_cast<int64_t>(tokens.size());
  report.chunks = static_cast<int64_t>(windows.size());
  report.sliding = options.stride > 0;
  ARLE_RETURN_IF_ERROR(RunWindows(
      engine, windows, options.max_in_flight,
      [&](size_t k, const runtime::EngineOutput& out) {
        for (const runtime::PromptTokenLogprob& t : out.prompt_logprobs) {
          report.stats.Add(-static_cast<double>(t.logprob));
        }
        report.running_ppl.push_back(report.stats.perplexity());
        if (on_chunk) on_chunk(static_cast<int64_t>(k), report.stats.perplexity());
      },
      [&](size_t k) { return ScoringRequest(engine, windows[k]); }));
  return report;
}

core::StatusOr<KldSummary> RunKlDivergence(
    runtime::Engine& base, runtime::Engine& model, const std::string& text,
    const PerplexityOptions& options,
    const std::function<void(int64_t, const KldSummary&)>& on_chunk) {
  if (base.n_vocab() != model.n_vocab()) {
    return core::InvalidArgumentError("the models' vocabularies differ (" +
                                      std::to_string(base.n_vocab()) + " and " +
                                      std::to_string(model.n_vocab()) + " tokens)");
  }
  const std::vector<int32_t> tokens = base.tokenizer().Encode(text, PerplexityEncoding());
  if (model.tokenizer().Encode(text, PerplexityEncoding()) != tokens) {
    return core::InvalidArgumentError("the two models' tokenizers encode the text differently",
                                      "KL divergence compares models with the same tokenizer");
  }
  ARLE_ASSIGN_OR_RETURN(std::vector<ScoredWindow> windows, Windows(base, tokens, options));
  if (options.ctx > model.max_context_tokens()) {
    return core::InvalidArgumentError("--ctx is longer than the model's context");
  }
  const size_t vocab = static_cast<size_t>(base.n_vocab());
  KldStats stats;
  std::vector<float> base_rows;  // one chunk's scored rows of the base model
  for (size_t k = 0; k < windows.size(); ++k) {
    const ScoredWindow& w = windows[k];
    const int64_t n_scored = static_cast<int64_t>(w.tokens.size()) - w.score_from;
    base_rows.assign(static_cast<size_t>(n_scored) * vocab, 0.0f);
    const std::vector<ScoredWindow> one = {w};
    // The base model's rows, kept for the chunk (n_scored x n_vocab floats).
    ARLE_RETURN_IF_ERROR(RunWindows(
        base, one, 1, [](size_t, const runtime::EngineOutput&) {},
        [&](size_t) {
          runtime::EngineRequest r = ScoringRequest(base, w);
          r.prompt_logprobs->on_logits = [&](int64_t position, std::span<const float> row) {
            std::copy(
                row.begin(), row.end(),
                base_rows.begin() + static_cast<ptrdiff_t>((position - w.score_from) * vocab));
          };
          return r;
        }));
    ARLE_RETURN_IF_ERROR(RunWindows(
        model, one, 1, [](size_t, const runtime::EngineOutput&) {},
        [&](size_t) {
          runtime::EngineRequest r = ScoringRequest(model, w);
          r.prompt_logprobs->on_logits = [&](int64_t position, std::span<const float> row) {
            const std::span<const float> b(
                base_rows.data() + static_cast<size_t>(position - w.score_from) * vocab, vocab);
            stats.Add(CompareDistributions(b, row, w.tokens[static_cast<size_t>(position)]));
          };
          return r;
        }));
    if (on_chunk) on_chunk(static_cast<int64_t>(k), stats.Summary());
  }
  return stats.Summary();
}

MeanAndStderr HarnessMean(const std::vector<double>& values) {
  MeanAndStderr m;
  if (values.empty()) return m;
  double sum = 0;
  for (double v : values) sum += v;
  const double n = static_cast<double>(values.size());
  m.mean = sum / n;
  if (values.size() > 1) {
    double ss = 0;
    for (double v : values) ss += (v - m.mean) * (v - m.mean);
    m.stderr_ = std::sqrt(ss / (n - 1)) / std::sqrt(n);
  }
  return m;
}

core::StatusOr<McReport> RunMultipleChoice(Backend& backend, std::string_view task,
                                           const std::vector<McDoc>& docs,
                                           const ProgressFn& progress) {
  std::vector<LoglikelihoodRequest> requests;
  for (const McDoc& d : docs) {
    if (d.requests.empty() || d.requests.size() != d.choices.size()) {
      return core::InvalidArgumentError("document " + d.id + " has no choices");
    }
    requests.insert(requests.end(), d.requests.begin(), d.requests.end());
  }
  const int64_t n_docs = static_cast<int64_t>(docs.size());
  // Progress in documents, not requests.
  ProgressFn per_doc;
  if (progress) {
    const double per = requests.empty() ? 1.0 : static_cast<double>(n_docs) / requests.size();
    per_doc = [&progress, per](int64_t done) { progress(static_cast<int64_t>(done * per)); };
  }
  ARLE_ASSIGN_OR_RETURN(std::vector<LoglikelihoodResult> scores,
                        backend.Loglikelihood(requests, per_doc));
  McReport report;
  report.has_acc_norm = task != "winogrande";
  std::vector<double> acc, acc_norm;
  size_t r = 0;
  for (const McDoc& d : docs) {
    McDocResult res;
    double best = -INFINITY, best_norm = -INFINITY;
    for (size_t c = 0; c < d.choices.size(); ++c, ++r) {
      const double ll = scores[r].logprob;
      res.loglikelihoods.push_back(ll);
      res.is_greedy.push_back(scores[r].is_greedy);
      // The harness divides by len(choice): Python characters, i.e. code points.
      const double len = static_cast<double>(tokenizer::Utf8CodePointCount(d.choices[c]));
      const double norm = ll / std::max(1.0, len);
      if (ll > best) {
        best = ll;
        res.predicted = static_cast<int>(c);
      }
      if (norm > best_norm) {
        best_norm = norm;
        res.predicted_norm = static_cast<int>(c);
      }
    }
    res.correct = res.predicted == d.gold;
    res.correct_norm = res.predicted_norm == d.gold;
    acc.push_back(res.correct ? 1.0 : 0.0);
    acc_norm.push_back(res.correct_norm ? 1.0 : 0.0);
    report.docs.push_back(std::move(res));
  }
  report.acc = HarnessMean(acc);
  report.acc_norm = HarnessMean(acc_norm);
  return report;
}

int64_t GenTaskMaxTokens(std::string_view task) { return task == "humaneval" ? 1024 : 256; }

core::StatusOr<GenReport> RunGenerative(Backend& backend, std::string_view task,
                                        const std::vector<GenDoc>& docs, const GenOptions& options,
                                        const ProgressFn& progress) {
  if (task != "gsm8k" && task != "math" && task != "humaneval") {
    return core::InvalidArgumentError(fmt::format("`{}` is not a generative task", task));
  }
  if (options.n < 1) return core::InvalidArgumentError("-n must be >= 1");
  std::vector<GenerationRequest> requests;
  for (const GenDoc& d : docs) {
    GenerationRequest g;
    g.prompt = d.prompt;
    g.until = d.until;
    g.max_tokens = options.max_tokens > 0 ? options.max_tokens : GenTaskMaxTokens(task);
    g.temperature = options.temperature;
    g.top_p = options.top_p;
    g.n = options.n;
    g.seed = options.seed;
    g.chat = options.chat;
    g.enable_thinking = options.enable_thinking;
    requests.push_back(std::move(g));
  }
  ARLE_ASSIGN_OR_RETURN(std::vector<GenerationResult> generated,
                        backend.Generate(requests, progress));
  GenReport report;
  std::vector<double> first, first_flexible;
  std::map<int, std::vector<double>> pass_at;
  std::vector<int> ks = options.pass_at;
  if (ks.empty()) {
    ks.push_back(1);
    if (options.n > 1) ks.push_back(options.n);
  }
  for (int k : ks) {
    if (k < 1 || k > options.n) {
      return core::InvalidArgumentError("pass@" + std::to_string(k) +
                                        " needs -n >= " + std::to_string(k));
    }
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    const GenDoc& d = docs[i];
    GenDocResult res;
    int64_t n_correct = 0;
    for (const std::string& text : generated[i].texts) {
      GenSampleScore s;
      s.completion = text;
      if (task == "gsm8k") {
        s.extracted = Gsm8kStrictExtract(text);
        s.extracted_flexible = Gsm8kFlexibleExtract(text);
        s.correct = Gsm8kExactMatch(s.extracted, d.reference);
        s.correct_flexible = Gsm8kExactMatch(s.extracted_flexible, d.reference);
      } else if (task == "math") {
        s.extracted = MathExtractAnswer(text);
        s.correct = MathIsEquiv(s.extracted, d.reference);
      } else {
        const std::string program =
            HumanEvalProgram(d.humaneval_prompt, text, d.test, d.entry_point);
        ARLE_ASSIGN_OR_RETURN(CodeRunResult run, RunPythonProgram(program, options.code));
        s.correct = run.passed;
        s.outcome = run.outcome;
      }
      n_correct += s.correct ? 1 : 0;
      res.samples.push_back(std::move(s));
    }
    first.push_back(res.samples.front().correct ? 1.0 : 0.0);
    first_flexible.push_back(res.samples.front().correct_flexible ? 1.0 : 0.0);
    for (int k : ks) pass_at[k].push_back(PassAtK(options.n, n_correct, k));
    report.docs.push_back(std::move(res));
  }
  if (task == "gsm8k") {
    report.metrics.emplace_back("exact_match,strict-match", HarnessMean(first));
    report.metrics.emplace_back("exact_match,flexible-extract", HarnessMean(first_flexible));
  } else if (task == "math") {
    report.metrics.emplace_back("exact_match", HarnessMean(first));
  } else {
    for (int k : ks)
      report.metrics.emplace_back("pass@" + std::to_string(k), HarnessMean(pass_at[k]));
  }
  return report;
}

}  // namespace arle::eval
