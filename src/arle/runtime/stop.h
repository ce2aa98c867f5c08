// Stop conditions for one generating sequence at the token level: EOS ids from the model's
// configs, per-request stop token ids, max_tokens and the context length. Reports OpenAI's
// finish_reason ("stop" / "length").
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::runtime {

enum class FinishReason {
  kNone,    // keep generating
  kStop,    // an EOS or stop token (later: a stop string) ended the sequence
  kLength,  // max_tokens reached or the context is full
  kAbort,   // cancelled (client gone, server shutting down); vLLM's "abort"
};

// Returns OpenAI's finish_reason string: "stop", "length", "abort", or "" for kNone.
std::string_view FinishReasonName(FinishReason reason);

struct StopParams {
  // From the model: generation_config.json `eos_token_id` (int or list), else config.json's,
  // else GGUF `tokenizer.ggml.eos_token_id`. Ignored when ignore_eos is set.
  std::vector<int32_t> eos_token_ids;
  // Per request (vLLM `stop_token_ids`); they stop even when ignore_eos is set.
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;  // vLLM's flag; benchmarks use it to generate exactly max_tokens
  // Generated tokens allowed, the stop token included; unset = until the context is full.
  std::optional<int64_t> max_tokens;
  // Model context length (max_position_embeddings or a smaller serving limit), in tokens,
  // prompt included.
  int64_t max_context_tokens = 0;

  // Returns OK when max_tokens >= 1 (>= 0 when the request scores its prompt: max_tokens 0 then
  // asks for the prompt's log-probs only) (if set), max_context_tokens >= 1 and every EOS / stop
  // token id is in [0, n_vocab); else InvalidArgument naming the field in its message, and in
  // Status::field() for the per-request ones ("max_tokens", "stop_token_ids"; the model's
  // eos_token_ids and the context length are configuration, not request fields).
  core::Status Validate(int32_t n_vocab, bool scores_prompt = false) const;
  // Returns OK when a prompt of `n_prompt_tokens` leaves room for at least one generated token
  // (with max_tokens 0: fits the context),
  // else InvalidArgument ("prompt has N tokens but the context length is M"; field() "prompt").
  core::Status CheckPromptLength(int64_t n_prompt_tokens) const;
};

// Tracks one sequence. The engine calls Append() once per generated token, after sampling it;
// the first non-kNone answer is final (the token that caused it is part of the output token ids,
// as in vLLM; the detokenizer leaves special tokens such as EOS out of the text).
//
// Precedence when several conditions hold for the same token: EOS/stop token (kStop) before
// length (kLength), as vLLM's check_stop does.
//
// Seam for stop strings (chat issue): they are matched on detokenized text across chunk
// boundaries by a separate matcher that the engine consults after Append() returns kNone; when
// it matches, the engine calls FinishWithStopString(). This class stays token-level and never
// sees text.
//
// Thread safety: one thread at a time (the engine thread).
class StopChecker {
 public:
  // REQUIRES: params.Validate(n_vocab).ok() and params.CheckPromptLength(n_prompt_tokens).ok().
  StopChecker(StopParams params, int64_t n_prompt_tokens);

  // Records one generated token and returns whether the sequence is finished.
  // REQUIRES: finish_reason() == kNone (appending after the end is a bug).
  FinishReason Append(int32_t token_id);

  // Marks the sequence finished by a stop string matched outside this class.
  // REQUIRES: finish_reason() == kNone.
  void FinishWithStopString();

  FinishReason finish_reason() const { return reason_; }
  std::optional<int64_t> max_tokens() const { return params_.max_tokens; }
  int64_t n_generated() const { return n_generated_; }
  // The EOS / stop token id that ended the sequence (OpenAI/vLLM `stop_reason`), if any.
  std::optional<int32_t> stop_token_id() const { return stop_token_id_; }

 private:
  bool IsStopToken(int32_t token_id) const;

  StopParams params_;
  int64_t n_prompt_tokens_;
  int64_t n_generated_ = 0;
  FinishReason reason_ = FinishReason::kNone;
  std::optional<int32_t> stop_token_id_;
};

}  // namespace arle::runtime
