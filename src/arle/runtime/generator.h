// Generate: one sequence, start to finish, on the model's forward and KV cache: prefill the
// prompt, then sample, check stop conditions, detokenize incrementally and stream pieces, token by
// token. The single-sequence path behind `arle run` and `arle bench`; the batched engine of the
// server issue reuses the same sampler and stop checker.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"
#include "arle/models/model.h"
#include "arle/runtime/sampler.h"
#include "arle/runtime/stop.h"
#include "arle/runtime/stop_strings.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::runtime {

struct GenerationRequest {
  std::vector<int32_t> prompt_tokens;  // REQUIRES: non-empty
  SamplingParams sampling;
  // EOS ids: fill with DefaultStopParams(model) and adjust.
  StopParams stop;
  // Stop strings, matched on the detokenized text across token boundaries; the matched string
  // and anything after it are never emitted (OpenAI/vLLM `stop`).
  std::vector<std::string> stop_strings;
  // Seed used when sampling.seed is unset.
  uint64_t default_seed = 0;
};

struct GenerationTimings {
  int64_t n_prompt_tokens = 0;
  int64_t n_generated_tokens = 0;
  double prefill_seconds = 0;   // prompt forward, up to the first logits
  double ttft_seconds = 0;      // request start to the first sampled token
  double decode_seconds = 0;    // after the first token to the end
  double total_seconds = 0;
};

struct GenerationResult {
  std::vector<int32_t> tokens;        // generated ids (the stop token included)
  std::vector<SampledToken> sampled;  // per generated token, with logprobs when requested
  std::string text;                   // detokenized output (special tokens skipped; cut before a
                                      // matched stop string)
  std::optional<std::string> stop_string;  // the stop string that ended generation, if any
  FinishReason finish_reason = FinishReason::kNone;
  GenerationTimings timings;
};

// Called after each generated token with its sampled record and the new text it completed (may
// be empty while a multi-byte character is incomplete). Return false to stop early (the result
// then has finish_reason kNone... reported as "stop" by callers that cancel on purpose).
using TokenCallback = std::function<bool(const SampledToken& token, std::string_view text)>;

// Stop parameters from the model: its EOS ids (config + generation_config, or the tokenizer's
// eos when the config has none) and its context length.
StopParams DefaultStopParams(const models::Model& model, const tokenizer::Tokenizer& tokenizer);

// Runs the request. Errors: invalid sampling/stop parameters, a prompt too long for the context,
// token ids outside the vocabulary (InvalidArgument, naming the parameter).
core::StatusOr<GenerationResult> Generate(models::Model& model,
                                          const tokenizer::Tokenizer& tokenizer,
                                          const GenerationRequest& request,
                                          const TokenCallback& on_token = {});

}  // namespace arle::runtime
