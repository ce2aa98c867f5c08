// StopChecker and StopParams validation.
#include "arle/runtime/stop.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace arle::runtime {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
  }
  return "";
}

core::Status StopParams::Validate(int32_t n_vocab, bool scores_prompt) const {
  const int64_t min_tokens = scores_prompt ? 0 : 1;
  if (max_tokens.has_value() && *max_tokens < min_tokens) {
    return core::InvalidArgumentError(
               fmt::format("max_tokens must be >= {}, got {}", min_tokens, *max_tokens),
               scores_prompt ? "" : "max_tokens 0 is allowed only with prompt log-probs (echo)")
        .WithField("max_tokens");
  }
  if (max_context_tokens < 1) {
    return core::InvalidArgumentError(
        fmt::format("the context length must be >= 1, got {}", max_context_tokens));
  }
  for (int32_t id : eos_token_ids) {
    if (id < 0 || id >= n_vocab) {
      return core::InvalidArgumentError(
          fmt::format("eos_token_id {} is outside the vocabulary [0, {})", id, n_vocab),
          "check eos_token_id in the model's generation_config.json / config.json");
    }
  }
  for (int32_t id : stop_token_ids) {
    if (id < 0 || id >= n_vocab) {
      return core::InvalidArgumentError(
          fmt::format("stop_token_ids entry {} is outside the vocabulary [0, {})", id, n_vocab))
          .WithField("stop_token_ids");
    }
  }
  return core::OkStatus();
}

core::Status StopParams::CheckPromptLength(int64_t n_prompt_tokens) const {
  if (max_tokens == 0 && n_prompt_tokens <= max_context_tokens) return core::OkStatus();
  if (n_prompt_tokens >= max_context_tokens) {
    return core::InvalidArgumentError(
        fmt::format("the prompt has {} tokens but the context length is {}, leaving no room to "
                    "generate",
                    n_prompt_tokens, max_context_tokens),
        "shorten the prompt")
        .WithField("prompt");
  }
  return core::OkStatus();
}

StopChecker::StopChecker(StopParams params, int64_t n_prompt_tokens)
    : params_(std::move(params)), n_prompt_tokens_(n_prompt_tokens) {
  ARLE_CHECK_GE(n_prompt_tokens_, 0);
  ARLE_CHECK(params_.CheckPromptLength(n_prompt_tokens_).ok());
}

bool StopChecker::IsStopToken(int32_t token_id) const {
  auto contains = [token_id](const std::vector<int32_t>& ids) {
    return std::find(ids.begin(), ids.end(), token_id) != ids.end();
  };
  return (!params_.ignore_eos && contains(params_.eos_token_ids)) ||
         contains(params_.stop_token_ids);
}

FinishReason StopChecker::Append(int32_t token_id) {
  ARLE_CHECK(reason_ == FinishReason::kNone) << "Append after the sequence finished";
  ++n_generated_;
  if (IsStopToken(token_id)) {
    stop_token_id_ = token_id;
    reason_ = FinishReason::kStop;
  } else if ((params_.max_tokens.has_value() && n_generated_ >= *params_.max_tokens) ||
             n_prompt_tokens_ + n_generated_ >= params_.max_context_tokens) {
    reason_ = FinishReason::kLength;
  }
  return reason_;
}

void StopChecker::FinishWithStopString() {
  ARLE_CHECK(reason_ == FinishReason::kNone) << "FinishWithStopString after the sequence finished";
  reason_ = FinishReason::kStop;
}

}  // namespace arle::runtime
