// /v1/responses: the request's preparation (instructions + input rendered by the chat template) and
// its Protocol — one choice whose reasoning and text go through the ResponsesBuilder, streamed as
// the Responses API's named events or returned as one Response object.
#include <utility>

#include "arle/server/openai_fields.h"
#include "arle/server/openai_protocol.h"

namespace arle::server::openai_internal {
namespace {

class ResponsesProtocol final : public Protocol {
 public:
  ResponsesProtocol(ResponseMeta meta, ResponsesSettings settings, bool stream,
                    std::unique_ptr<runtime::OutputParser> parser, bool start_in_reasoning)
      : builder_(std::move(meta), std::move(settings)),
        stream_(stream),
        parser_(std::move(parser)),
        in_reasoning_(start_in_reasoning) {}

  std::string ParamName(std::string_view field) const override {
    return openai_fields::ParamFor(field, openai_fields::kResponsesRenames);
  }

  std::string StreamStart() override { return builder_.Start(); }

  std::string OnEvent(size_t, const runtime::EngineOutput& out, ChoiceStatus&) override {
    std::vector<runtime::OutputDelta> deltas;
    parser_->Feed(out.text, &deltas);
    if (out.finish_reason != runtime::FinishReason::kNone) parser_->Flush(&deltas);
    std::string sse;
    for (const runtime::OutputDelta& d : deltas) {
      if (d.kind == runtime::OutputDeltaKind::kReasoning) {
        sse += builder_.ReasoningDelta(d.text);
        in_reasoning_ = true;
      } else if (d.kind == runtime::OutputDeltaKind::kContent) {
        sse += builder_.TextDelta(d.text);
        in_reasoning_ = false;
      }
    }
    if (in_reasoning_) n_reasoning_tokens_ += static_cast<int64_t>(out.tokens.size());
    return stream_ ? sse : "";
  }

  void AddUsage(Usage* usage) const override { usage->reasoning_tokens += n_reasoning_tokens_; }

  std::string StreamEnd(const Usage& usage, std::span<const ChoiceStatus> choices) override {
    return builder_.Finish(choices[0].finish_reason, usage);
  }

  std::string Body(const Usage& usage, std::span<const ChoiceStatus> choices) override {
    (void)builder_.Finish(choices[0].finish_reason, usage);
    return builder_.ResponseJson();
  }

 private:
  ResponsesBuilder builder_;
  const bool stream_;
  std::unique_ptr<runtime::OutputParser> parser_;
  // Tokens generated while inside reasoning: an estimate for usage's reasoning_tokens.
  bool in_reasoning_;
  int64_t n_reasoning_tokens_ = 0;
};

}  // namespace

ApiOr<CallPlan> PrepareResponses(const Shared& shared, const HttpRequest& request) {
  ApiOr<ResponsesRequest> parsed = ParseResponsesRequest(request.body, shared.parse_context);
  if (!parsed.ok()) return parsed.error();
  ResponsesRequest& req = *parsed;

  auto rendered = shared.options.render_chat(req.messages_json, "", true, req.template_kwargs_json);
  if (!rendered.ok()) return openai_fields::FromStatus(rendered.status(), "input");
  const std::string prompt = std::move(rendered).value();
  const bool start_in_reasoning = ReasoningOpen(shared.options.chat_format.output_parser, prompt);

  CallPlan plan;  // n = 1: the parser leaves n out of req.params
  if (auto e = PlanChatPrompt(shared, req.params, prompt, "input", "max_output_tokens", &plan)) {
    return *e;
  }
  auto parser = MakeOutputParser(shared.options.chat_format.output_parser, /*parse_tools=*/false,
                                 start_in_reasoning);
  if (!parser.ok()) return openai_fields::FromStatus(parser.status(), "");
  ResponsesSettings settings;
  settings.instructions = req.instructions;
  settings.max_output_tokens = req.max_output_tokens;
  settings.temperature = req.temperature;
  settings.top_p = req.top_p;
  settings.user = req.params.user;
  plan.protocol = std::make_unique<ResponsesProtocol>(MakeMeta(shared, "resp_"), std::move(settings),
                                                      req.params.stream, std::move(parser).value(),
                                                      start_in_reasoning);
  return plan;
}

}  // namespace arle::server::openai_internal
