// OpenAiService: the route handlers (parse, render, tokenize, check the context, build a Call and
// run it) and the service's shutdown controls. The request lifecycle is in openai_call.cc.
#include "arle/server/openai_service.h"

#include <fmt/format.h>

#include <chrono>
#include <utility>
#include <vector>

#include "arle/core/logging.h"
#include "arle/runtime/output_parser.h"
#include "arle/server/openai_call.h"
#include "arle/server/openai_request.h"
#include "arle/server/openai_response.h"

namespace arle::server {
namespace {

using openai_internal::Api;
using openai_internal::Call;
using openai_internal::ChoiceState;
using openai_internal::Clock;
using openai_internal::FromStatus;
using openai_internal::SendApiError;
using openai_internal::Shared;
using openai_internal::Submission;
using openai_internal::UnixNow;

// Families whose parser knows <think> and <tool_call> (runtime/output_parser.h).
bool IsTaggedFamily(std::string_view family) {
  for (std::string_view tagged : {"qwen3", "qwen2", "qwen", "hermes"}) {
    if (family == tagged) return true;
  }
  return false;
}

bool HasToolParser(std::string_view family) { return family != "plain"; }

// Whether the rendered prompt leaves a reasoning block open (only tagged families have one).
bool ReasoningOpen(std::string_view family, std::string_view prompt) {
  return IsTaggedFamily(family) && runtime::PromptEndsInsideReasoning(prompt);
}

// The parser for one choice. Tool calls are parsed only when tools were rendered.
core::StatusOr<std::unique_ptr<runtime::OutputParser>> MakeParser(const std::string& family,
                                                                  bool parse_tools,
                                                                  bool start_in_reasoning) {
  runtime::OutputParserOptions options;
  options.start_in_reasoning = start_in_reasoning;
  // Ids must be unique across a conversation: clients send them back with the tool results.
  options.call_id_prefix = RandomId("call_").substr(0, 21) + "_";
  if (!parse_tools && IsTaggedFamily(family)) {
    runtime::TaggedParserConfig config;
    config.tool_open.clear();
    return runtime::MakeTaggedOutputParser(config, options);
  }
  return runtime::CreateOutputParser(family, options);
}


void Fail(Shared& shared, ResponseWriter& writer, const ApiError& e) {
  shared.metrics.RecordRequest(e.status);
  SendApiError(writer, e);
}

ApiError ContextError(int64_t max_ctx, int64_t n_prompt, std::optional<int64_t> max_tokens,
                      std::string_view prompt_param, std::string_view max_tokens_param,
                      std::string_view what) {
  ApiError e;
  e.type = "invalid_request_error";
  e.code = "context_length_exceeded";
  if (!max_tokens) {
    e.message = fmt::format(
        "This model's maximum context length is {} tokens. However, your {} has {} tokens, which "
        "leaves no room to generate. Please reduce the length of the {}.",
        max_ctx, what, n_prompt, what);
    e.param = prompt_param;
  } else {
    e.message = fmt::format(
        "This model's maximum context length is {} tokens. However, you requested {} tokens ({} in "
        "the {}, {} in the completion). Please reduce the length of the {} or completion.",
        max_ctx, n_prompt + *max_tokens, n_prompt, what, *max_tokens, what);
    e.param = max_tokens_param;
  }
  return e;
}

// Fills the engine request shared by every prompt of a call; checks the context. Returns an error
// for the client, if any.
std::optional<ApiError> PrepareRequest(Shared& shared, const GenerationParams& params,
                                       std::vector<int32_t> tokens, std::string_view prompt_param,
                                       std::string_view max_tokens_param, std::string_view what,
                                       runtime::EngineRequest* out) {
  const int64_t max_ctx = shared.engine.max_context_tokens();
  const auto n_prompt = static_cast<int64_t>(tokens.size());
  if (n_prompt == 0) {
    ApiError e;
    e.type = "invalid_request_error";
    e.message = fmt::format("The {} is empty (it encodes to no tokens and this model's tokenizer "
                            "adds no BOS token).",
                            what);
    e.param = prompt_param;
    return e;
  }
  if (n_prompt >= max_ctx) {
    return ContextError(max_ctx, n_prompt, std::nullopt, prompt_param, max_tokens_param, what);
  }
  if (params.max_tokens && n_prompt + *params.max_tokens > max_ctx) {
    return ContextError(max_ctx, n_prompt, params.max_tokens, prompt_param, max_tokens_param, what);
  }
  out->prompt_tokens = std::move(tokens);
  out->sampling = params.sampling;
  out->stop = shared.options.default_stop;
  out->stop.max_context_tokens = max_ctx;
  out->stop.max_tokens = params.max_tokens;
  out->stop.ignore_eos = params.ignore_eos;
  out->stop.stop_token_ids = params.stop_token_ids;
  out->stop_strings = params.stop_strings;
  out->n = params.n;
  const int32_t n_vocab = shared.engine.n_vocab();
  if (core::Status st = out->sampling.Validate(n_vocab); !st.ok()) return FromStatus(st, "");
  if (core::Status st = out->stop.Validate(n_vocab); !st.ok()) return FromStatus(st, "");
  return std::nullopt;
}

ResponseMeta MakeMeta(const Shared& shared, std::string_view id_prefix) {
  ResponseMeta meta;
  meta.id = RandomId(id_prefix);
  meta.created = UnixNow();
  meta.model = shared.options.served_model_name;
  meta.system_fingerprint = shared.options.system_fingerprint;
  return meta;
}

bool RejectIfStopping(Shared& shared, ResponseWriter& writer) {
  if (shared.accepting.load()) return false;
  ApiError e;
  e.status = 503;
  e.message = "The server is shutting down.";
  Fail(shared, writer, e);
  return true;
}

std::vector<int32_t> EncodeChat(const Shared& shared, const std::string& prompt) {
  tokenizer::EncodeOptions options;
  options.add_special_tokens = false;  // the template writes its own special tokens
  return shared.engine.tokenizer().Encode(prompt, options);
}

void HandleChat(const std::shared_ptr<Shared>& shared, const HttpRequest& request,
                std::shared_ptr<ResponseWriter> writer) {
  const Clock::time_point arrival = Clock::now();
  if (RejectIfStopping(*shared, *writer)) return;
  ApiOr<ChatRequest> parsed = ParseChatRequest(request.body, shared->parse_context);
  if (!parsed.ok()) return Fail(*shared, *writer, parsed.error());
  ChatRequest& chat = *parsed;
  if (!chat.params.user.empty()) ARLE_LOG_DEBUG("chat request from user {}", chat.params.user);

  const bool use_tools = !chat.tools_json.empty() && chat.tool_choice != ToolChoice::kNone;
  if (use_tools && !HasToolParser(shared->options.parser_family)) {
    ApiError e;
    e.type = "invalid_request_error";
    e.param = "tools";
    e.message = fmt::format("This model's output parser ('{}') cannot parse tool calls, so tools "
                            "would be silently ignored. Omit 'tools' or pass tool_choice 'none'.",
                            shared->options.parser_family);
    return Fail(*shared, *writer, e);
  }
  auto rendered = shared->options.render_chat(chat.messages_json, use_tools ? chat.tools_json : "",
                                              /*add_generation_prompt=*/true,
                                              chat.template_kwargs_json);
  if (!rendered.ok()) return Fail(*shared, *writer, FromStatus(rendered.status(), "messages"));
  std::string prompt = std::move(rendered).value();
  const bool start_in_reasoning = ReasoningOpen(shared->options.parser_family, prompt);
  std::string forced = ForcedToolPrefix(chat.tool_choice, chat.tool_choice_name);
  // A forced call cannot start inside an open <think> block: close it first.
  if (!forced.empty() && start_in_reasoning) forced = "</think>\n\n" + forced;
  prompt += forced;

  auto call = std::make_shared<Call>(shared, writer, Api::kChat, arrival);
  call->meta = MakeMeta(*shared, "chatcmpl-");
  call->stream = chat.params.stream;
  call->include_usage = chat.params.include_usage;
  call->want_logprobs = chat.logprobs;
  call->n = chat.params.n;
  Submission sub;
  const std::string_view max_param = "max_tokens";
  if (auto e = PrepareRequest(*shared, chat.params, EncodeChat(*shared, prompt), "messages", max_param,
                              "messages", &sub.request)) {
    return Fail(*shared, *writer, *e);
  }
  call->submissions.push_back(std::move(sub));
  call->choices.resize(static_cast<size_t>(chat.params.n));
  for (ChoiceState& c : call->choices) {
    auto parser = MakeParser(shared->options.parser_family, use_tools, start_in_reasoning);
    if (!parser.ok()) return Fail(*shared, *writer, FromStatus(parser.status(), ""));
    c.parser = std::move(parser).value();
    if (!forced.empty()) {
      std::vector<runtime::OutputDelta> ignored;  // the forced text is prompt, not output
      c.parser->Feed(forced, &ignored);
    }
  }
  call->Run();
}

void HandleCompletion(const std::shared_ptr<Shared>& shared, const HttpRequest& request,
                      std::shared_ptr<ResponseWriter> writer) {
  const Clock::time_point arrival = Clock::now();
  if (RejectIfStopping(*shared, *writer)) return;
  ApiOr<CompletionRequest> parsed = ParseCompletionRequest(request.body, shared->parse_context);
  if (!parsed.ok()) return Fail(*shared, *writer, parsed.error());
  CompletionRequest& req = *parsed;
  if (!req.params.user.empty()) ARLE_LOG_DEBUG("completion request from user {}", req.params.user);

  auto call = std::make_shared<Call>(shared, writer, Api::kCompletion, arrival);
  call->meta = MakeMeta(*shared, "cmpl-");
  call->stream = req.params.stream;
  call->include_usage = req.params.include_usage;
  call->want_logprobs = req.logprobs.has_value();
  call->return_token_ids = req.return_token_ids;
  call->n = req.params.n;
  const tokenizer::Tokenizer& tok = shared->engine.tokenizer();
  for (size_t k = 0; k < req.prompts.size(); ++k) {
    CompletionPrompt& p = req.prompts[k];
    std::vector<int32_t> tokens = p.is_tokens ? p.tokens : tok.Encode(p.text);
    const std::string param = req.prompts.size() > 1 ? fmt::format("prompt[{}]", k) : "prompt";
    Submission sub;
    if (req.echo) sub.echo_text = p.is_tokens ? tok.Decode(p.tokens) : p.text;
    if (auto e = PrepareRequest(*shared, req.params, std::move(tokens), param, "max_tokens", "prompt",
                                &sub.request)) {
      return Fail(*shared, *writer, *e);
    }
    call->submissions.push_back(std::move(sub));
  }
  call->choices.resize(req.prompts.size() * static_cast<size_t>(req.params.n));
  call->Run();
}

void HandleResponses(const std::shared_ptr<Shared>& shared, const HttpRequest& request,
                     std::shared_ptr<ResponseWriter> writer) {
  const Clock::time_point arrival = Clock::now();
  if (RejectIfStopping(*shared, *writer)) return;
  ApiOr<ResponsesRequest> parsed = ParseResponsesRequest(request.body, shared->parse_context);
  if (!parsed.ok()) return Fail(*shared, *writer, parsed.error());
  ResponsesRequest& req = *parsed;

  auto rendered = shared->options.render_chat(req.messages_json, "", true, req.template_kwargs_json);
  if (!rendered.ok()) return Fail(*shared, *writer, FromStatus(rendered.status(), "input"));
  const std::string prompt = std::move(rendered).value();
  const bool start_in_reasoning = ReasoningOpen(shared->options.parser_family, prompt);

  auto call = std::make_shared<Call>(shared, writer, Api::kResponses, arrival);
  call->meta = MakeMeta(*shared, "resp_");
  call->stream = req.params.stream;
  call->n = 1;
  ResponsesSettings settings;
  settings.instructions = req.instructions;
  settings.max_output_tokens = req.max_output_tokens;
  settings.temperature = req.temperature;
  settings.top_p = req.top_p;
  settings.user = req.params.user;
  call->responses.emplace(call->meta, settings);
  Submission sub;
  if (auto e = PrepareRequest(*shared, req.params, EncodeChat(*shared, prompt), "input",
                              "max_output_tokens", "input", &sub.request)) {
    return Fail(*shared, *writer, *e);
  }
  call->submissions.push_back(std::move(sub));
  call->choices.resize(1);
  auto parser = MakeParser(shared->options.parser_family, /*parse_tools=*/false, start_in_reasoning);
  if (!parser.ok()) return Fail(*shared, *writer, FromStatus(parser.status(), ""));
  call->choices[0].parser = std::move(parser).value();
  call->choices[0].in_reasoning = start_in_reasoning;
  call->Run();
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
  server.Route("POST", "/v1/chat/completions",
               [s](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) { HandleChat(s, r, std::move(w)); });
  server.Route("POST", "/v1/completions", [s](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    HandleCompletion(s, r, std::move(w));
  });
  server.Route("POST", "/v1/responses", [s](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    HandleResponses(s, r, std::move(w));
  });
  server.Route("GET", "/v1/models", [s](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->Send(200, "application/json",
            ModelsJson(s->options.served_model_name, s->created, s->engine.max_context_tokens()));
  });
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
