// Internal to arle_server: the state the service shares with every request, and the API-specific
// half of a generation request: one Protocol per API (chat completions, completions, responses;
// openai_api_*.cc) prepares the request (CallPlan) and turns engine events into that API's stream
// chunks or final JSON. The Call that drives it (openai_call.h) is the same for all three.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "arle/core/status.h"
#include "arle/runtime/engine.h"
#include "arle/runtime/output_parser.h"
#include "arle/server/http_server.h"
#include "arle/server/metrics.h"
#include "arle/server/openai_request.h"
#include "arle/server/openai_response.h"
#include "arle/server/openai_service.h"

namespace arle::server {

namespace openai_internal {
class Call;
inline int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }
}  // namespace openai_internal

// What the service shares with every request; outlives the service while Calls (held by engine
// callbacks) still run.
struct OpenAiService::Shared {
  Shared(runtime::Engine& e, OpenAiServiceOptions o) : engine(e), options(std::move(o)) {}

  runtime::Engine& engine;
  OpenAiServiceOptions options;
  ParseContext parse_context;
  Metrics metrics;
  int64_t created = openai_internal::UnixNow();
  std::atomic<bool> accepting{true};

  mutable std::mutex mu;
  uint64_t next_call = 0;
  std::unordered_map<uint64_t, std::weak_ptr<openai_internal::Call>> active;  // guarded by mu
};

namespace openai_internal {

using Clock = std::chrono::steady_clock;
using Shared = OpenAiService::Shared;

// What the Call tracks for each choice, whatever the API.
struct ChoiceStatus {
  bool finished = false;
  std::string finish_reason;  // OpenAI's; set from the engine's on the final event
  int64_t n_generated = 0;
  std::optional<Clock::time_point> last_token;
};

// Response building for one request of one API. The Call calls it from one thread at a time (the
// connection's strand, see openai_call.h), in the engine's event order per choice; it is never
// called concurrently, so it needs no locks.
class Protocol {
 public:
  virtual ~Protocol() = default;

  // The request parameter this API calls a runtime field named by a Status (Status::field(), e.g.
  // "prompt" -> "messages" on chat); "" for an error about no field.
  virtual std::string ParamName(std::string_view field) const = 0;

  // Streaming: the events that go out before any token (chat: every choice's role chunk;
  // Responses: response.created and response.in_progress).
  virtual std::string StreamStart() = 0;

  // One engine event of choice `ci` (submission ci / n, sample ci % n). On the final event
  // `status.finish_reason` is already the engine's reason; the protocol may refine it (chat:
  // "tool_calls"). Returns the bytes to stream now ("" for none); a non-streamed request
  // accumulates instead and returns "".
  virtual std::string OnEvent(size_t ci, const runtime::EngineOutput& out,
                              ChoiceStatus& status) = 0;

  // Adds what only this API counts to `usage` (Responses: reasoning tokens).
  virtual void AddUsage(Usage* usage) const {}

  // After the last choice finished: the closing events of a stream (usage chunk, [DONE], or
  // response.completed/incomplete/failed), or the whole body of a non-streamed response.
  virtual std::string StreamEnd(const Usage& usage, std::span<const ChoiceStatus> choices) = 0;
  virtual std::string Body(const Usage& usage, std::span<const ChoiceStatus> choices) = 0;
};

// A prepared request: the engine requests (one per prompt, each with `n` samples) and the
// protocol that will build the response.
struct CallPlan {
  std::unique_ptr<Protocol> protocol;
  std::vector<runtime::EngineRequest> requests;
  int n = 1;
  bool stream = false;
};

// Each API's preparation: parse the body, render and tokenize the prompt(s), check the context,
// and build its Protocol. Errors are for the client. Run on the handler's (I/O) thread.
using Preparer = ApiOr<CallPlan> (*)(const Shared& shared, const HttpRequest& request);
ApiOr<CallPlan> PrepareChat(const Shared& shared, const HttpRequest& request);
ApiOr<CallPlan> PrepareCompletion(const Shared& shared, const HttpRequest& request);
ApiOr<CallPlan> PrepareResponses(const Shared& shared, const HttpRequest& request);

// ---- Shared by the preparers (openai_protocol.cc) ----

// A fresh id with `id_prefix` ("chatcmpl-", ...), the current time and the served model.
ResponseMeta MakeMeta(const Shared& shared, std::string_view id_prefix);

// The engine request for one prompt: sampling and stop parameters from `params` and the
// service's defaults. Checks that the prompt is not empty and fits the context with max_tokens
// (errors naming `prompt_param` or `max_tokens_param`; `what` is the prompt's name in messages).
// Parameter ranges are not checked here: the parser did (SamplingParams::Validate), and
// Engine::Submit checks again at its own boundary.
std::optional<ApiError> MakeEngineRequest(const Shared& shared, const GenerationParams& params,
                                          std::vector<int32_t> tokens,
                                          std::string_view prompt_param,
                                          std::string_view max_tokens_param, std::string_view what,
                                          runtime::EngineRequest* out);

// The plan of chat and Responses: one chat-template prompt (encoded here), `params.n` samples
// and its stream flag; errors as MakeEngineRequest's (the prompt's name is `prompt_param`).
std::optional<ApiError> PlanChatPrompt(const Shared& shared, const GenerationParams& params,
                                       const std::string& prompt, std::string_view prompt_param,
                                       std::string_view max_tokens_param, CallPlan* plan);

// Whether the rendered prompt leaves a reasoning block open for the family's parser.
bool ReasoningOpen(std::string_view family, std::string_view prompt);
// Whether the family's output parser knows tool calls.
bool HasToolParser(std::string_view family);
// An output parser for one choice; tool calls are parsed only when `parse_tools`.
core::StatusOr<std::unique_ptr<runtime::OutputParser>> MakeOutputParser(
    const std::string& family, bool parse_tools, bool start_in_reasoning);

// The logprob entries (token texts resolved) of an event's tokens.
std::vector<TokenLogprob> TokenLogprobs(const tokenizer::Tokenizer& tokenizer,
                                        const std::vector<runtime::SampledToken>& tokens);

}  // namespace openai_internal
}  // namespace arle::server
