// OpenAI request bodies -> validated C++ requests: /v1/chat/completions, /v1/completions,
// /v1/responses, /tokenize and /detokenize. Every accepted parameter is applied; anything else is
// an ApiError naming the parameter (OpenAI's envelope), never silently ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "arle/core/check.h"
#include "arle/runtime/engine.h"
#include "arle/runtime/sampler.h"

namespace arle::server {

// An error in OpenAI's envelope {"error":{"message","type","param","code"}} plus its HTTP status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string param;  // empty = null; the offending parameter, e.g. "temperature", "messages[1].role"
  std::string code;   // empty = null, e.g. "model_not_found"
  std::string type;   // empty = derived from the status (see http_server.h ErrorBody)
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Retry-After
};

// Either a T or an ApiError.
template <typename T>
class ApiOr {
 public:
  ApiOr(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  ApiOr(ApiError error) : v_(std::move(error)) {}  // NOLINT: implicit by design
  bool ok() const { return v_.index() == 0; }
  T& value() {
    ARLE_CHECK(ok()) << "ApiOr has no value: " << error().message;
    return std::get<0>(v_);
  }
  const T& value() const {
    ARLE_CHECK(ok()) << "ApiOr has no value: " << error().message;
    return std::get<0>(v_);
  }
  const ApiError& error() const {
    ARLE_CHECK(!ok());
    return std::get<1>(v_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, ApiError> v_;
};

// What the parsers need to know about the served model.
struct ParseContext {
  std::string served_model_name;  // `model` must equal it (else 404 model_not_found)
  int32_t n_vocab = 0;            // token ids (logit_bias, stop_token_ids, prompts) are < n_vocab
};

// Parameters shared by the generation endpoints (already range-checked).
struct GenerationParams {
  runtime::SamplingParams sampling;  // logprobs/top_logprobs filled per endpoint
  std::optional<int64_t> max_tokens;  // unset = until the context is full
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop_strings;
  int n = 1;  // samples per prompt, [1, 16]
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string user;            // recorded at debug level only
};

inline constexpr int kMaxSamples = runtime::kMaxSamples;
inline constexpr int kMaxLogprobs = runtime::kMaxTopLogprobs;

enum class ToolChoice {
  kAuto,      // render the tools; parse tool calls
  kNone,      // do not render the tools; no tool-call parsing
  kRequired,  // render the tools; the assistant turn starts with "<tool_call>\n"
  kNamed,     // render the tools; the turn starts with the named call's prefix
};

struct ChatRequest {
  GenerationParams params;
  // The conversation as a JSON array for the chat template: text content parts joined into strings,
  // "developer" mapped to "system", every other field (tool_calls, tool_call_id, name,
  // reasoning_content) passed through as transformers does.
  std::string messages_json;
  std::string tools_json;  // the `tools` array as given; empty = no tools
  ToolChoice tool_choice = ToolChoice::kAuto;
  std::string tool_choice_name;  // kNamed: the function name
  // Extra template variables (chat_template_kwargs, with a top-level enable_thinking merged in).
  std::string template_kwargs_json = "{}";
  bool logprobs = false;  // chat `logprobs` (with sampling.top_logprobs)
};

// One completions prompt: text, or token ids.
struct CompletionPrompt {
  bool is_tokens = false;
  std::string text;
  std::vector<int32_t> tokens;
};

struct CompletionRequest {
  GenerationParams params;
  std::vector<CompletionPrompt> prompts;  // non-empty
  bool echo = false;
  // `logprobs`: unset = none; k in [0, 20] = the sampled token's logprob and the k most likely.
  std::optional<int> logprobs;
  // vLLM's `return_token_ids`: each choice carries `prompt_token_ids` (in its first stream chunk)
  // and the generated `token_ids` (per chunk when streaming), so a client can continue a
  // conversation on the exact tokens (token in, token out) and hit the prefix cache.
  bool return_token_ids = false;
};

struct ResponsesRequest {
  GenerationParams params;  // max_output_tokens -> max_tokens; n = 1
  std::string messages_json;  // instructions (as a system message) + input, as in ChatRequest
  std::string template_kwargs_json = "{}";
  // Echoed in the response object.
  std::optional<std::string> instructions;
  std::optional<int64_t> max_output_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
};

// vLLM's /tokenize: {prompt, add_special_tokens=true} or {messages, add_generation_prompt=true,
// add_special_tokens=false, tools, chat_template_kwargs}, both with return_token_strs.
struct TokenizeRequest {
  bool is_chat = false;
  std::string prompt;
  std::string messages_json;
  std::string tools_json;
  std::string template_kwargs_json = "{}";
  bool add_generation_prompt = true;
  bool add_special_tokens = true;
  bool return_token_strs = false;
};

struct DetokenizeRequest {
  std::vector<int32_t> tokens;
};

// Each parser: malformed JSON or a non-object body -> 400; a wrong `model` -> 404
// (code model_not_found); unknown or unsupported keys, wrong types and out-of-range values ->
// 400 naming the parameter. Thread-safe (pure functions).
ApiOr<ChatRequest> ParseChatRequest(std::string_view body, const ParseContext& context);
ApiOr<CompletionRequest> ParseCompletionRequest(std::string_view body, const ParseContext& context);
ApiOr<ResponsesRequest> ParseResponsesRequest(std::string_view body, const ParseContext& context);
// `model` is optional here (vLLM), but must match when given.
ApiOr<TokenizeRequest> ParseTokenizeRequest(std::string_view body, const ParseContext& context);
ApiOr<DetokenizeRequest> ParseDetokenizeRequest(std::string_view body, const ParseContext& context);

// The assistant-turn prefix forced by tool_choice (appended to the rendered prompt and fed to the
// output parser first, never emitted as content), for a chat format whose calls open with
// `tool_call_open` ("<tool_call>") and carry a JSON object {"name": ..., "arguments": ...}: ""
// for auto/none, "<tool_call>\n" for required, "<tool_call>\n{\"name\": \"N\", \"arguments\": "
// for a named function (N JSON-escaped).
std::string ForcedToolPrefix(ToolChoice choice, std::string_view name,
                             std::string_view tool_call_open);

}  // namespace arle::server
