// EngineBackend: evaluation on the in-process engine (runtime::Engine), many requests in flight
// so continuous batching fills every step. Log-likelihoods are prompt log-probs
// (EngineRequest::prompt_logprobs) of context + continuation with max_tokens 0; the choices of
// one question share their context through the prefix cache: the first choice of each context
// goes first, the others only once its blocks are cached.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "arle/eval/backend.h"
#include "arle/runtime/engine.h"
#include "arle/runtime/stop.h"
#include "arle/tokenizer/chat_prompt.h"

namespace arle::eval {

// The harness's token split of one (context, continuation) pair (see Backend::Loglikelihood).
struct EncodedPair {
  std::vector<int32_t> tokens;  // context + continuation, truncated on the left to the window
  int64_t score_from = 1;       // the continuation's first token in `tokens`
};
using EncodeFn = std::function<core::StatusOr<std::vector<int32_t>>(const std::string& text)>;
// `prefix_token` stands for an empty context; `max_tokens` is the window (>= 2). Errors: the
// encoder's, and InvalidArgument for a continuation that encodes to no token.
core::StatusOr<EncodedPair> EncodePair(const EncodeFn& encode, const LoglikelihoodRequest& request,
                                       int32_t prefix_token, int64_t max_tokens);

struct EngineBackendOptions {
  int max_in_flight = 64;  // requests submitted and not finished (the engine queues the rest)
  bool add_bos = false;    // encode with the tokenizer's special prefix (BOS); the harness does not
  std::string description;  // for Describe()
};

class EngineBackend final : public Backend {
 public:
  // The engine, its tokenizer's chat setup (for chat generation; may be null when no task uses
  // it) and the model's default stop parameters (runtime::DefaultStopParams) must outlive it.
  EngineBackend(runtime::Engine& engine, const tokenizer::ChatSetup* chat,
                runtime::StopParams default_stop, EngineBackendOptions options);

  core::StatusOr<std::vector<LoglikelihoodResult>> Loglikelihood(
      std::span<const LoglikelihoodRequest> requests, const ProgressFn& progress) override;
  core::StatusOr<std::vector<GenerationResult>> Generate(
      std::span<const GenerationRequest> requests, const ProgressFn& progress) override;
  std::string Describe() const override { return options_.description; }

 private:
  core::StatusOr<std::vector<int32_t>> Encode(const std::string& text) const;

  runtime::Engine& engine_;
  const tokenizer::ChatSetup* chat_;
  runtime::StopParams default_stop_;
  EngineBackendOptions options_;
};

}  // namespace arle::eval
