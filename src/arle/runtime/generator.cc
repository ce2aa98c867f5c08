// Single-sequence generation loop.
#include "arle/runtime/generator.h"

#include <algorithm>
#include <chrono>

#include "arle/tokenizer/incremental_decoder.h"

namespace arle::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

StopParams DefaultStopParams(const models::Model& model, const tokenizer::Tokenizer& tokenizer) {
  StopParams stop;
  for (int64_t id : model.config().eos_token_ids) {
    if (id >= 0 && id < model.config().n_vocab) stop.eos_token_ids.push_back(static_cast<int32_t>(id));
  }
  if (stop.eos_token_ids.empty() && tokenizer.eos_id().has_value() &&
      *tokenizer.eos_id() < model.config().n_vocab) {
    stop.eos_token_ids.push_back(*tokenizer.eos_id());
  }
  stop.max_context_tokens = model.config().n_ctx_train > 0 ? model.config().n_ctx_train : 2048;
  return stop;
}

core::StatusOr<GenerationResult> Generate(models::Model& model,
                                          const tokenizer::Tokenizer& tokenizer,
                                          const GenerationRequest& request,
                                          const TokenCallback& on_token) {
  const auto start = Clock::now();
  const int32_t n_vocab = static_cast<int32_t>(model.config().n_vocab);
  if (request.prompt_tokens.empty()) {
    return core::InvalidArgumentError("the prompt is empty", "give at least one token");
  }
  for (int32_t id : request.prompt_tokens) {
    if (id < 0 || id >= n_vocab) {
      return core::InvalidArgumentError("prompt token id " + std::to_string(id) +
                                        " is outside the vocabulary [0, " +
                                        std::to_string(n_vocab) + ")");
    }
  }
  ARLE_RETURN_IF_ERROR(request.sampling.Validate(n_vocab));
  ARLE_RETURN_IF_ERROR(request.stop.Validate(n_vocab));
  ARLE_RETURN_IF_ERROR(ValidateStopStrings(request.stop_strings));
  const int64_t n_prompt = static_cast<int64_t>(request.prompt_tokens.size());
  ARLE_RETURN_IF_ERROR(request.stop.CheckPromptLength(n_prompt));

  int64_t max_total = request.stop.max_context_tokens;
  if (request.stop.max_tokens) max_total = std::min(max_total, n_prompt + *request.stop.max_tokens);
  std::unique_ptr<models::KvCache> cache = model.NewKvCache(max_total);

  Sampler sampler(request.sampling, request.default_seed);
  StopChecker stop(request.stop, n_prompt);
  tokenizer::IncrementalDecoder decoder(tokenizer, /*skip_special=*/true);
  decoder.Continue(request.prompt_tokens);
  StopStringMatcher stop_strings(request.stop_strings);
  std::vector<int32_t> context = request.prompt_tokens;
  GenerationResult result;
  result.timings.n_prompt_tokens = n_prompt;

  std::vector<float> logits;
  ARLE_RETURN_IF_ERROR(model.Forward(request.prompt_tokens, *cache, &logits, false));
  result.timings.prefill_seconds = SecondsSince(start);
  Clock::time_point first_token_time;
  while (true) {
    const std::span<const float> last(logits.data() + logits.size() - n_vocab, n_vocab);
    SampledToken token = sampler.Sample(last, context, static_cast<size_t>(n_prompt));
    context.push_back(token.id);
    result.tokens.push_back(token.id);
    if (result.tokens.size() == 1) {
      first_token_time = Clock::now();
      result.timings.ttft_seconds = SecondsSince(start);
    }
    FinishReason reason = stop.Append(token.id);
    std::string decoded = decoder.Push(token.id);
    if (reason != FinishReason::kNone) decoded += decoder.Flush();
    StopStringMatcher::Result matched = stop_strings.Feed(decoded);
    std::string piece = std::move(matched.text);
    if (matched.stopped) {
      if (reason == FinishReason::kNone) stop.FinishWithStopString();
      reason = FinishReason::kStop;
      result.stop_string = stop_strings.matched();
    } else if (reason != FinishReason::kNone) {
      piece += stop_strings.Flush();
    }
    result.text += piece;
    const bool keep_going = !on_token || on_token(token, piece);
    result.sampled.push_back(std::move(token));
    if (reason != FinishReason::kNone) {
      result.finish_reason = reason;
      break;
    }
    if (!keep_going) {
      std::string rest = stop_strings.Feed(decoder.Flush()).text;
      rest += stop_strings.Flush();
      result.text += rest;
      if (on_token && !rest.empty()) on_token(SampledToken{}, rest);
      result.finish_reason = FinishReason::kStop;
      break;
    }
    const int32_t next = context.back();
    ARLE_RETURN_IF_ERROR(model.Forward(std::span<const int32_t>(&next, 1), *cache, &logits, false));
  }
  result.timings.n_generated_tokens = static_cast<int64_t>(result.tokens.size());
  result.timings.decode_seconds = std::chrono::duration<double>(Clock::now() - first_token_time).count();
  result.timings.total_seconds = SecondsSince(start);
  return result;
}

}  // namespace arle::runtime
