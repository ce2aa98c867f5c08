// OpenAiService: the routes (the generation routes hand their API's preparer to one Call each; the
// models, tokenize and metrics routes are answered here) and the service's shutdown controls. The
// request lifecycle is in openai_call.cc, each API's preparation and response in openai_api_*.cc.
#include "arle/server/openai_service.h"

#include <fmt/format.h>

#include <chrono>
#include <utility>
#include <vector>

#include "arle/core/logging.h"
#include "arle/server/openai_call.h"
#include "arle/server/openai_fields.h"
#include "arle/server/openai_request.h"
#include "arle/server/openai_response.h"

namespace arle::server {
namespace {

using openai_internal::Call;
using openai_internal::Clock;
using openai_internal::Preparer;
using openai_internal::SendApiError;
using openai_internal::Shared;
using openai_fields::FromStatus;

void Fail(Shared& shared, ResponseWriter& writer, const ApiError& e) {
  shared.metrics.RecordRequest(e.status);
  SendApiError(writer, e);
}

bool RejectIfStopping(Shared& shared, ResponseWriter& writer) {
  if (shared.accepting.load()) return false;
  ApiError e;
  e.status = 503;
  e.message = "The server is shutting down.";
  Fail(shared, writer, e);
  return true;
}

// The three generation routes: the API's preparer builds the plan (and its Protocol), the Call
// runs it.
void HandleGeneration(const std::shared_ptr<Shared>& shared, Preparer prepare,
                      const HttpRequest& request, std::shared_ptr<ResponseWriter> writer) {
  const Clock::time_point arrival = Clock::now();
  if (RejectIfStopping(*shared, *writer)) return;
  ApiOr<openai_internal::CallPlan> plan = prepare(*shared, request);
  if (!plan.ok()) return Fail(*shared, *writer, plan.error());
  std::make_shared<Call>(shared, std::move(writer), std::move(*plan), arrival)->Run();
}

// GET /v1/models/{id}: the model object, or OpenAI's 404 for another id.
void HandleModel(const Shared& shared, const HttpRequest& request, ResponseWriter& writer) {
  const std::string& id = request.path_params.at("id");
  if (id != shared.options.served_model_name) {
    ApiError e;
    e.status = 404;
    e.type = "invalid_request_error";
    e.code = "model_not_found";
    e.message = fmt::format("The model `{}` does not exist. This server serves `{}`.", id,
                            shared.options.served_model_name);
    return SendApiError(writer, e);
  }
  writer.Send(200, "application/json",
              ModelJson(id, shared.created, shared.engine.max_context_tokens()));
}

void HandleTokenize(const std::shared_ptr<Shared>& shared, const HttpRequest& request,
                    const std::shared_ptr<ResponseWriter>& writer) {
  ApiOr<TokenizeRequest> parsed = ParseTokenizeRequest(request.body, shared->parse_context);
  if (!parsed.ok()) return SendApiError(*writer, parsed.error());
  TokenizeRequest& req = *parsed;
  std::string text = req.prompt;
  if (req.is_chat) {
    auto rendered = shared->options.render_chat(req.messages_json, req.tools_json,
                                                req.add_generation_prompt, req.template_kwargs_json);
    if (!rendered.ok()) return SendApiError(*writer, FromStatus(rendered.status(), "messages"));
    text = std::move(rendered).value();
  }
  const tokenizer::Tokenizer& tok = shared->engine.tokenizer();
  tokenizer::EncodeOptions options;
  options.add_special_tokens = req.add_special_tokens;
  const std::vector<int32_t> tokens = tok.Encode(text, options);
  std::vector<std::string> strs;
  if (req.return_token_strs) {
    for (int32_t id : tokens) strs.emplace_back(tok.IdToToken(id));
  }
  writer->Send(200, "application/json",
               TokenizeJson(tokens, shared->engine.max_context_tokens(),
                            req.return_token_strs ? &strs : nullptr));
}

void HandleDetokenize(const std::shared_ptr<Shared>& shared, const HttpRequest& request,
                      const std::shared_ptr<ResponseWriter>& writer) {
  ApiOr<DetokenizeRequest> parsed = ParseDetokenizeRequest(request.body, shared->parse_context);
  if (!parsed.ok()) return SendApiError(*writer, parsed.error());
  writer->Send(200, "application/json",
               DetokenizeJson(shared->engine.tokenizer().Decode(parsed->tokens)));
}

}  // namespace

OpenAiService::OpenAiService(runtime::Engine& engine, OpenAiServiceOptions options)
    : shared_(std::make_shared<Shared>(engine, std::move(options))) {
  ARLE_CHECK(shared_->options.render_chat) << "OpenAiServiceOptions::render_chat is required";
  shared_->parse_context.served_model_name = shared_->options.served_model_name;
  shared_->parse_context.n_vocab = engine.n_vocab();
}

OpenAiService::~OpenAiService() = default;

void OpenAiService::RegisterRoutes(HttpServer& server) {
  std::shared_ptr<Shared> s = shared_;
  const std::pair<const char*, Preparer> generation[] = {
      {"/v1/chat/completions", &openai_internal::PrepareChat},
      {"/v1/completions", &openai_internal::PrepareCompletion},
      {"/v1/responses", &openai_internal::PrepareResponses}};
  for (const auto& route : generation) {
    // Not a structured binding: clang 14 cannot capture one.
    Preparer prepare = route.second;
    server.Route("POST", route.first,
                 [s, prepare](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
                   HandleGeneration(s, prepare, r, std::move(w));
                 });
  }
  server.Route("GET", "/v1/models", [s](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->Send(200, "application/json",
            ModelsJson(s->options.served_model_name, s->created, s->engine.max_context_tokens()));
  });
  // Model ids may contain '/' ("Qwen/Qwen3-0.6B"): the id is the rest of the path, sent either
  // as is or percent-encoded.
  server.Route("GET", "/v1/models/{id...}",
               [s](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) { HandleModel(*s, r, *w); });
  server.Route(
      "GET", "/health",
      [s](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
        // 503 while draining, so a load balancer stops sending new requests here.
        if (s->accepting.load()) {
          w->Send(200, "application/json", "{\"status\":\"ok\"}");
        } else {
          w->Send(503, "application/json", "{\"status\":\"shutting_down\"}");
        }
      },
      /*auth=*/false);
  server.Route(
      "GET", "/metrics",
      [s](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
        w->Send(200, std::string(Metrics::kPrometheusContentType),
                s->metrics.RenderPrometheus(s->engine.Stats()));
      },
      /*auth=*/false);
  server.Route("GET", "/v1/stats", [s](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->Send(200, "application/json", s->metrics.RenderJson(s->engine.Stats()));
  });
  server.Route("POST", "/tokenize", [s](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    HandleTokenize(s, r, w);
  });
  server.Route("POST", "/detokenize", [s](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    HandleDetokenize(s, r, w);
  });
}

void OpenAiService::StopAccepting() { shared_->accepting.store(false); }

void OpenAiService::CancelAll() {
  std::vector<std::shared_ptr<openai_internal::Call>> calls;
  {
    std::lock_guard lock(shared_->mu);
    for (auto& [serial, weak] : shared_->active) {
      if (auto c = weak.lock()) calls.push_back(std::move(c));
    }
  }
  for (auto& c : calls) c->Cancel(/*client_gone=*/false);
}

int64_t OpenAiService::n_active() const {
  std::lock_guard lock(shared_->mu);
  return static_cast<int64_t>(shared_->active.size());
}

const Metrics& OpenAiService::metrics() const { return shared_->metrics; }

}  // namespace arle::server
