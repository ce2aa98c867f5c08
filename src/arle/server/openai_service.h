// OpenAiService: the OpenAI-compatible routes over one runtime::Engine — request parsing, prompt
// rendering and tokenization, submission, streaming (SSE) or whole responses from the engine's
// callbacks, cancellation when a client disconnects, and metrics.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "arle/core/status.h"
#include "arle/models/registry.h"
#include "arle/runtime/engine.h"
#include "arle/runtime/stop.h"
#include "arle/server/http_server.h"
#include "arle/server/metrics.h"

namespace arle::server {

// Renders a conversation with the model's chat template. Arguments are JSON texts: `messages` an
// array (OpenAI messages, see ChatRequest::messages_json), `tools` an array or "" for none,
// `kwargs` an object of extra template variables (e.g. {"enable_thinking": false}). Returns the
// prompt text, or an InvalidArgument error the client caused (e.g. the template raised).
// Must be thread-safe (called concurrently from I/O threads).
using ChatRenderer = std::function<core::StatusOr<std::string>(
    std::string_view messages_json, std::string_view tools_json, bool add_generation_prompt,
    std::string_view kwargs_json)>;

struct OpenAiServiceOptions {
  std::string served_model_name;
  ChatRenderer render_chat;  // REQUIRED
  // The model's chat format, from the family registry (models::ChatFormatFor): its output
  // parser splits chat output into content, reasoning and tool calls, and its tool_call_open is
  // what tool_choice "required" or a named function forces. The default (plain, no tool calls)
  // suits a model without a known chat format.
  models::ChatFormat chat_format;
  // EOS ids (and anything else model-specific) every request starts from; max_context_tokens is
  // taken from the engine.
  runtime::StopParams default_stop;
  int retry_after_seconds = 1;  // the Retry-After of a 503 when the queue is full
  std::string system_fingerprint;  // empty = omitted
};

// Routes (POST unless noted; all need the API key when one is set, except /health and /metrics):
//   /v1/chat/completions, /v1/completions, /v1/responses, GET /v1/models, GET /health (no auth),
//   GET /metrics (no auth, Prometheus text), GET /v1/stats (JSON), /tokenize, /detokenize.
//
// Lifetime: the engine must outlive the service's use of it: stop the HttpServer (so no handler
// or OnClose runs any more) before destroying the engine. Requests still running when the engine
// is destroyed get its final kAbort events, which the service handles after the server stopped
// (their writers are closed). Thread-safe.
class OpenAiService {
 public:
  OpenAiService(runtime::Engine& engine, OpenAiServiceOptions options);
  ~OpenAiService();
  OpenAiService(const OpenAiService&) = delete;
  OpenAiService& operator=(const OpenAiService&) = delete;

  void RegisterRoutes(HttpServer& server);

  // Shutdown: new generation requests get 503; requests already running continue.
  void StopAccepting();
  // Cancels every running request (their streams end cleanly with finish_reason "abort").
  void CancelAll();
  // Generation requests whose response has not finished yet.
  int64_t n_active() const;

  const Metrics& metrics() const;

  struct Shared;  // state shared with in-flight requests (outlives the service if they do)

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace arle::server
