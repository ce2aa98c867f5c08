// OpenAI response bodies: chat completions and their stream chunks, legacy completions, the
// Responses API object and its SSE events, models, tokenize/detokenize, and both logprobs formats.
// Plain structs in, JSON text out (nlohmann stays inside the .cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "arle/runtime/output_parser.h"
#include "arle/runtime/sampler.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::server {

// Identity of one response (shared by all its chunks).
struct ResponseMeta {
  std::string id;       // "chatcmpl-...", "cmpl-...", "resp_..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  std::string system_fingerprint;  // empty = omitted
};

// One token's string form for logprobs: `token` is its text (valid UTF-8; a partial character
// becomes U+FFFD) and `bytes` its exact bytes (OpenAI's `bytes`).
struct TokenText {
  std::string token;
  std::string bytes;
};

// A generated token with its logprob and alternatives, strings resolved.
struct TokenLogprob {
  TokenText text;
  float logprob = 0.0f;
  std::vector<std::pair<TokenText, float>> top;  // most likely first
};

// The text of token `id` as it appears mid-sequence (SentencePiece's leading space kept), special
// tokens included ("<|im_end|>").
TokenText TokenToText(const tokenizer::Tokenizer& tokenizer, int32_t id);
TokenLogprob MakeTokenLogprob(const tokenizer::Tokenizer& tokenizer,
                              const runtime::SampledToken& sampled);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
  int64_t reasoning_tokens = 0;  // Responses API only (an estimate: not tracked per token yet)
};

// ---- Server-sent events ----
// "data: <json>\n\n".
std::string SseData(std::string_view json);
// "event: <name>\ndata: <json>\n\n" (the Responses API names its events).
std::string SseEvent(std::string_view name, std::string_view json);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// ---- Chat completions ----
struct ChatChoice {
  int index = 0;
  std::string content;   // null in the JSON when empty and there are tool calls
  std::string reasoning;  // `reasoning_content`; null when empty
  std::vector<runtime::ToolCall> tool_calls;
  std::string finish_reason;  // "stop", "length", "tool_calls", "abort"
  std::optional<std::vector<TokenLogprob>> logprobs;  // unset = "logprobs": null
};
// The chat.completion object.
std::string ChatCompletionJson(const ResponseMeta& meta, const std::vector<ChatChoice>& choices,
                               const Usage& usage);

// One choice of one chat.completion.chunk.
struct ChatChunkChoice {
  int index = 0;
  bool role = false;  // the first chunk of a choice carries role "assistant" (and content "")
  std::optional<std::string> content;
  std::optional<std::string> reasoning;
  // Tool-call deltas (kToolCallStart -> {index, id, type, function: {name, arguments: ""}},
  // kToolCallArguments -> {index, function: {arguments}}; kToolCallEnd adds nothing).
  std::vector<runtime::OutputDelta> tool_calls;
  std::optional<std::vector<TokenLogprob>> logprobs;
  std::string finish_reason;  // empty = null
};
// `with_usage_null`: stream_options.include_usage was set, so every chunk has "usage": null.
std::string ChatChunkJson(const ResponseMeta& meta, const ChatChunkChoice& choice,
                          bool with_usage_null);
// The final include_usage chunk: "choices": [] and the usage.
std::string ChatUsageChunkJson(const ResponseMeta& meta, const Usage& usage);

// ---- Legacy completions ----
struct CompletionLogprobs {
  std::vector<std::string> tokens;
  std::vector<float> token_logprobs;
  // Per token: the top alternatives plus the sampled token (OpenAI: up to logprobs + 1 entries).
  std::vector<std::vector<std::pair<std::string, float>>> top_logprobs;
  // Offset of each token's text in the choice's text, in characters (code points), as vLLM and
  // OpenAI count them.
  std::vector<int64_t> text_offset;
};
// Appends `tokens` to `out`, continuing text_offset from `*offset` (advanced past them).
void AppendCompletionLogprobs(const std::vector<TokenLogprob>& tokens, int64_t* offset,
                              CompletionLogprobs* out);

struct CompletionChoice {
  int index = 0;
  std::string text;
  std::string finish_reason;  // empty = null (stream chunks)
  std::optional<CompletionLogprobs> logprobs;
  // return_token_ids: unset = the keys are omitted.
  std::optional<std::vector<int32_t>> prompt_token_ids;
  std::optional<std::vector<int32_t>> token_ids;
};
std::string CompletionJson(const ResponseMeta& meta, const std::vector<CompletionChoice>& choices,
                           const Usage& usage);
std::string CompletionChunkJson(const ResponseMeta& meta, const CompletionChoice& choice,
                                bool with_usage_null);
std::string CompletionUsageChunkJson(const ResponseMeta& meta, const Usage& usage);

// ---- Responses API ----
// Builds one Response object and, for streams, its events in the order the OpenAI clients
// accumulate them: response.created, response.in_progress, then per output item
// output_item.added, content_part.added, *.delta..., *.done, content_part.done,
// output_item.done, and finally response.completed (or response.incomplete with
// incomplete_details.reason "max_output_tokens", or response.failed with an error when the
// request was aborted). Reasoning goes into a "reasoning" item with
// reasoning_text content before the "message" item. Each call returns the SSE text to send (may be
// empty); non-streamed requests ignore it and call ResponseJson() at the end.
struct ResponsesSettings {
  std::optional<std::string> instructions;
  std::optional<int64_t> max_output_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::string user;
};

class ResponsesBuilder {
 public:
  ResponsesBuilder(ResponseMeta meta, ResponsesSettings settings);
  std::string Start();  // response.created + response.in_progress
  std::string ReasoningDelta(std::string_view text);
  std::string TextDelta(std::string_view text);
  // Closes the open items and ends the response: "length" -> incomplete, "abort" -> failed,
  // anything else -> completed.
  std::string Finish(std::string_view finish_reason, const Usage& usage);
  // The Response object in its current state.
  std::string ResponseJson() const;

 private:
  std::string OpenReasoning();
  std::string CloseReasoning();
  std::string OpenMessage();
  std::string CloseMessage();

  ResponseMeta meta_;
  ResponsesSettings settings_;
  int64_t sequence_ = 0;
  std::string status_ = "in_progress";
  std::string incomplete_reason_;
  std::string error_message_;  // status "failed"
  std::optional<Usage> usage_;
  // Output items in order: reasoning (optional) then the message.
  std::string reasoning_id_, message_id_;
  std::string reasoning_, text_;
  enum class ItemState { kNone, kOpen, kDone };
  ItemState reasoning_state_ = ItemState::kNone;
  ItemState message_state_ = ItemState::kNone;
  int reasoning_index_ = -1, message_index_ = -1;
  int n_items_ = 0;
};

// ---- Misc routes ----
// GET /v1/models: a list holding the one served model; GET /v1/models/{id}: the model object.
std::string ModelsJson(std::string_view model, int64_t created, int64_t max_model_len);
std::string ModelJson(std::string_view model, int64_t created, int64_t max_model_len);
std::string TokenizeJson(const std::vector<int32_t>& tokens, int64_t max_model_len,
                         const std::vector<std::string>* token_strs);
std::string DetokenizeJson(std::string_view prompt);

// A random id with `prefix`, e.g. "chatcmpl-" + 24 alphanumerics. Thread-safe.
std::string RandomId(std::string_view prefix);

}  // namespace arle::server
