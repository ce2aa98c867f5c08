// Internal to arle_server: one generation request in flight (Call) — it ties the HTTP writer to its
// engine submissions, turns engine events into SSE chunks or the final JSON, and cancels on
// disconnect — and the state OpenAiService shares with every Call (OpenAiService::Shared).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "arle/runtime/engine.h"
#include "arle/runtime/output_parser.h"
#include "arle/server/metrics.h"
#include "arle/server/openai_request.h"
#include "arle/server/openai_response.h"
#include "arle/server/openai_service.h"

namespace arle::server {

namespace openai_internal {
class Call;
inline int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }
}  // namespace openai_internal

// Outlives the service while Calls (held by engine callbacks) still run.
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
  std::unordered_map<uint64_t, std::weak_ptr<openai_internal::Call>> active;
};

namespace openai_internal {

using Clock = std::chrono::steady_clock;
using Shared = OpenAiService::Shared;

enum class Api { kChat, kCompletion, kResponses };

// Sends `e` as OpenAI's error envelope.
void SendApiError(ResponseWriter& writer, const ApiError& e);
// A Status as an ApiError: ResourceExhausted -> 503, Internal -> 500, else 400 naming `param` (or
// the parameter the message starts with).
ApiError FromStatus(const core::Status& status, std::string param);

// What a handler prepared for one prompt.
struct Submission {
  runtime::EngineRequest request;
  std::string echo_text;  // completions with echo
  int64_t cached_tokens = 0;
};

struct ChoiceState {
  std::unique_ptr<runtime::OutputParser> parser;  // chat and responses
  bool started = false;                           // stream: first chunk (role / echo) sent
  bool finished = false;
  std::string finish_reason;
  int64_t n_generated = 0;
  std::optional<Clock::time_point> last_token;
  // Chat: logprobs (non-stream: all of them; stream: not yet sent).
  std::vector<TokenLogprob> logprobs;
  // Completions.
  std::string text;
  std::optional<CompletionLogprobs> completion_logprobs;
  int64_t text_offset = 0;
  std::vector<int32_t> token_ids;  // return_token_ids, non-stream: every generated id
  bool sent_prompt_ids = false;    // return_token_ids, stream: prompt_token_ids went out
  // Responses: tokens generated while inside reasoning (an estimate for reasoning_tokens).
  bool in_reasoning = false;
  int64_t n_reasoning_tokens = 0;
};

// One generation request. Locks: mu_ guards the response state and is held while writing to the
// client (so chunks keep their order); ids_mu_ guards only the engine ids, so a disconnect
// reported from inside a write (OnClose) can cancel without needing mu_.
class Call : public std::enable_shared_from_this<Call> {
 public:
  Call(std::shared_ptr<Shared> shared, std::shared_ptr<ResponseWriter> writer, Api api,
       Clock::time_point arrival)
      : shared_(std::move(shared)), writer_(std::move(writer)), api_(api), arrival_(arrival) {}

  // Setup before Run().
  ResponseMeta meta;
  bool stream = false;
  bool include_usage = false;
  bool want_logprobs = false;  // chat logprobs / completions logprobs
  bool return_token_ids = false;  // completions: prompt_token_ids and token_ids per choice
  int n = 1;
  std::vector<Submission> submissions;
  std::vector<ChoiceState> choices;  // submissions.size() * n
  std::optional<ResponsesBuilder> responses;

  // Registers, submits every prompt, and starts the response. Errors are sent to the client.
  void Run();

  // Cancels the engine requests (client gone, or shutdown). Never takes mu_.
  void Cancel(bool client_gone);

 private:
  std::vector<uint64_t> EngineIds() const;

  void OnOutput(size_t j, const runtime::EngineOutput& out);

  void Write(std::string data) { writer_->Write(std::move(data)); }

  // First stream events: the role chunk of every chat choice (as OpenAI and vLLM send it before
  // any token), the Responses API's created/in_progress.
  void WriteStreamStart();

  // REQUIRES: mu_ held.
  void Process(size_t j, const runtime::EngineOutput& out);

  void ProcessChat(int index, ChoiceState& c, const runtime::EngineOutput& out,
                   std::vector<TokenLogprob> lps, bool final);

  void ProcessCompletion(int index, ChoiceState& c, const runtime::EngineOutput& out,
                         const std::vector<TokenLogprob>& lps, bool final);

  void ProcessResponses(ChoiceState& c, const runtime::EngineOutput& out, bool final);

  // Every choice finished. REQUIRES: mu_ held.
  void Complete();

  // Records the outcome and leaves the active set.
  void Finalize(int http_status);

  std::shared_ptr<Shared> shared_;
  std::shared_ptr<ResponseWriter> writer_;
  const Api api_;
  const Clock::time_point arrival_;
  uint64_t serial_ = 0;

  std::mutex mu_;
  bool started_ = false;  // every Submit succeeded; events are processed as they come
  bool failed_ = false;   // a Submit failed; the error was sent, events are dropped
  std::atomic<bool> closed_{false};  // the client went away
  mutable std::mutex ids_mu_;
  std::vector<uint64_t> engine_ids_;
  std::vector<std::pair<size_t, runtime::EngineOutput>> backlog_;
  std::optional<Clock::time_point> first_token_;
  size_t n_finished_ = 0;
};

}  // namespace openai_internal
}  // namespace arle::server
