// The evaluations `arle eval` runs: perplexity and KL divergence on the engine (they need logits
// rows, which only the in-process engine gives), multiple-choice and generative tasks on any
// Backend. Each returns its numbers and per-sample records; printing is the caller's.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "arle/core/status.h"
#include "arle/eval/backend.h"
#include "arle/eval/code_execution.h"
#include "arle/eval/perplexity.h"
#include "arle/eval/tasks.h"
#include "arle/runtime/engine.h"

namespace arle::eval {

struct PerplexityOptions {
  int64_t ctx = 512;      // tokens per chunk (window)
  int64_t chunks = -1;    // at most this many chunks; < 0: all
  int64_t stride = 0;     // > 0: Hugging Face's sliding windows with this stride
  int max_in_flight = 8;  // chunks submitted at once
};

struct PerplexityReport {
  NllStats stats;
  int64_t file_tokens = 0;  // tokens of the whole text (BOS included when the tokenizer adds it)
  int64_t chunks = 0;
  bool sliding = false;
  std::vector<double> running_ppl;  // after each chunk, in order
};

// Tokenizes `text` as llama-perplexity does (the tokenizer's special prefix; special-token text
// is plain text), cuts it (LlamaPerplexityChunks or SlidingWindows) and scores it through the
// engine. `on_chunk(k, ppl)` is called in chunk order with the running perplexity after chunk k
// (0-based). Errors: too short a text, ctx larger than the engine's context, engine errors.
core::StatusOr<PerplexityReport> RunPerplexity(
    runtime::Engine& engine, const std::string& text, const PerplexityOptions& options,
    const std::function<void(int64_t chunk, double ppl)>& on_chunk);

// llama-perplexity --kl-divergence, with both models in memory: each chunk runs on `base`, then
// on `model`, and every scored position's distributions are compared (see KldStats). The two
// engines' tokenizers must encode the text to the same tokens and have the same vocabulary.
core::StatusOr<KldSummary> RunKlDivergence(
    runtime::Engine& base, runtime::Engine& model, const std::string& text,
    const PerplexityOptions& options,
    const std::function<void(int64_t chunk, const KldSummary& running)>& on_chunk);

// Mean of 0/1 (or any) values and lm-evaluation-harness's standard error of it:
// sample standard deviation (n - 1) / sqrt(n).
struct MeanAndStderr {
  double mean = 0, stderr_ = 0;
};
MeanAndStderr HarnessMean(const std::vector<double>& values);

struct McDocResult {
  std::vector<double> loglikelihoods;  // per choice
  std::vector<bool> is_greedy;
  int predicted = 0;       // argmax of the log-likelihoods (first on ties, as numpy)
  int predicted_norm = 0;  // argmax of log-likelihood / length of the choice in characters
  bool correct = false, correct_norm = false;
};

struct McReport {
  MeanAndStderr acc, acc_norm;
  bool has_acc_norm = true;  // winogrande reports acc only
  std::vector<McDocResult> docs;
};

core::StatusOr<McReport> RunMultipleChoice(Backend& backend, std::string_view task,
                                           const std::vector<McDoc>& docs,
                                           const ProgressFn& progress);

struct GenOptions {
  int n = 1;              // samples per problem
  float temperature = 0;  // 0: greedy
  float top_p = 1;
  int64_t max_tokens = 0;  // 0: the task's default (gsm8k/math 256 -> see GenTaskMaxTokens)
  uint64_t seed = 1234;
  bool chat = false;  // the prompt as one user turn of the chat template
  std::optional<bool> enable_thinking;
  CodeRunOptions code;       // humaneval
  std::vector<int> pass_at;  // humaneval: the k of pass@k to report (<= n); empty: 1 (and n)
};

// What one completion was scored as.
struct GenSampleScore {
  std::string completion;
  std::string extracted;           // the answer the task's filter took (gsm8k: strict; math: boxed)
  std::string extracted_flexible;  // gsm8k: flexible-extract
  bool correct = false;            // gsm8k: strict-match; math: equivalent; humaneval: passed
  bool correct_flexible = false;   // gsm8k only
  std::string outcome;             // humaneval: how the program ended
};

struct GenDocResult {
  std::vector<GenSampleScore> samples;
};

struct GenReport {
  // Name -> value, in report order: gsm8k "exact_match,strict-match" and
  // "exact_match,flexible-extract"; math "exact_match"; humaneval "pass@K". Over the first sample
  // of each problem, except pass@k (all n samples, the unbiased estimator).
  std::vector<std::pair<std::string, MeanAndStderr>> metrics;
  std::vector<GenDocResult> docs;
};

core::StatusOr<GenReport> RunGenerative(Backend& backend, std::string_view task,
                                        const std::vector<GenDoc>& docs, const GenOptions& options,
                                        const ProgressFn& progress);

// The harness's generation length per task (max_gen_toks): humaneval 1024, others 256.
int64_t GenTaskMaxTokens(std::string_view task);

}  // namespace arle::eval
