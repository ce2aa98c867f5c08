// The model an evaluation runs on. Two implementations: EngineBackend (engine_backend.h), the
// in-process continuous-batching engine, and OpenAiBackend (openai_backend.h), any
// OpenAI-compatible server through /v1/completions (echo + logprobs) and /v1/chat/completions.
// Both take whole lists of requests so they can keep many in flight; both score a
// (context, continuation) pair the way lm-evaluation-harness does (below), so the same model
// gives the same numbers through either.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "arle/core/status.h"
#include "arle/eval/tasks.h"

namespace arle::eval {

// log P(continuation | context) summed over the continuation's tokens.
struct LoglikelihoodResult {
  double logprob = 0;
  bool is_greedy = false;  // every continuation token was the model's most likely one
  int64_t n_tokens = 0;    // continuation tokens scored
};

struct GenerationRequest {
  std::string prompt;              // completion-style text, or the user message when `chat`
  std::vector<std::string> until;  // stop strings
  int64_t max_tokens = 256;
  float temperature = 0;  // 0: greedy
  float top_p = 1;
  int n = 1;                            // samples of this prompt
  uint64_t seed = 0;                    // sample i of the request uses seed + i
  bool chat = false;                    // render `prompt` as one user turn with the chat template
  std::optional<bool> enable_thinking;  // the template's switch, when chat
};

struct GenerationResult {
  std::vector<std::string> texts;  // n completions (stop strings removed)
};

// Called after each finished request with the number finished so far.
using ProgressFn = std::function<void(int64_t done)>;

class Backend {
 public:
  virtual ~Backend() = default;
  // Scores every request. Tokenisation is lm-evaluation-harness's (_encode_pair): trailing spaces
  // of the context move to the continuation; the continuation's tokens are those of
  // encode(context + continuation) after the first len(encode(context)); no BOS is added (the
  // harness's default for causal models) except that an empty context becomes the BOS token (EOS
  // when there is none); a pair longer than the context window keeps its last tokens.
  virtual core::StatusOr<std::vector<LoglikelihoodResult>> Loglikelihood(
      std::span<const LoglikelihoodRequest> requests, const ProgressFn& progress) = 0;
  virtual core::StatusOr<std::vector<GenerationResult>> Generate(
      std::span<const GenerationRequest> requests, const ProgressFn& progress) = 0;
  // What it runs on, for reports ("engine: qwen3 ...", "http://127.0.0.1:8000").
  virtual std::string Describe() const = 0;
};

}  // namespace arle::eval
