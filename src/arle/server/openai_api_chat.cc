// /v1/chat/completions: the request's preparation (template rendering, tools and tool_choice's
// forced prefix) and its Protocol — the model family's output parser splits each choice into
// content, reasoning and tool calls, streamed as chat.completion.chunk events or returned whole.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <utility>

#include "arle/core/logging.h"
#include "arle/server/openai_fields.h"
#include "arle/server/openai_protocol.h"

namespace arle::server::openai_internal {
namespace {

struct ChatChoiceState {
  std::unique_ptr<runtime::OutputParser> parser;
  // Non-stream: every logprob; stream: those not sent yet (they ride on the next chunk).
  std::vector<TokenLogprob> logprobs;
};

class ChatProtocol final : public Protocol {
 public:
  ChatProtocol(const tokenizer::Tokenizer& tokenizer, ResponseMeta meta, const ChatRequest& req)
      : tokenizer_(tokenizer),
        meta_(std::move(meta)),
        stream_(req.params.stream),
        include_usage_(req.params.include_usage),
        want_logprobs_(req.logprobs) {}

  std::vector<ChatChoiceState> choices;

  std::string ParamName(std::string_view field) const override {
    return openai_fields::ParamFor(field, openai_fields::kChatRenames);
  }

  // The role chunk goes first, as OpenAI and vLLM send it, before any token.
  std::string StreamStart() override {
    std::string out;
    for (size_t i = 0; i < choices.size(); ++i) {
      ChatChunkChoice c;
      c.index = static_cast<int>(i);
      c.role = true;
      out += SseData(ChatChunkJson(meta_, c, include_usage_));
    }
    return out;
  }

  std::string OnEvent(size_t ci, const runtime::EngineOutput& out, ChoiceStatus& status) override {
    ChatChoiceState& c = choices[ci];
    const int index = static_cast<int>(ci);
    const bool final = out.finish_reason != runtime::FinishReason::kNone;
    std::vector<runtime::OutputDelta> deltas;
    c.parser->Feed(out.text, &deltas);
    if (final) {
      c.parser->Flush(&deltas);
      const runtime::ParsedOutput& parsed = c.parser->result();
      if (parsed.malformed) {
        ARLE_LOG_DEBUG("{} choice {}: malformed model output: {}", meta_.id, index,
                       fmt::join(parsed.problems, "; "));
      }
      // OpenAI reports "tool_calls" when the model called tools (not when it ran out of tokens).
      if (out.finish_reason == runtime::FinishReason::kStop && !parsed.tool_calls.empty()) {
        status.finish_reason = "tool_calls";
      }
    }
    if (want_logprobs_) {
      for (TokenLogprob& t : TokenLogprobs(tokenizer_, out.tokens)) c.logprobs.push_back(std::move(t));
    }
    if (!stream_) return "";

    auto take_logprobs = [&]() -> std::optional<std::vector<TokenLogprob>> {
      if (!want_logprobs_ || c.logprobs.empty()) return std::nullopt;
      return std::exchange(c.logprobs, {});
    };
    std::string sse;
    // Consecutive content (or reasoning) deltas go out as one chunk; each tool-call delta as its
    // own chunk, the way OpenAI streams them.
    size_t k = 0;
    while (k < deltas.size()) {
      ChatChunkChoice chunk;
      chunk.index = index;
      const runtime::OutputDeltaKind kind = deltas[k].kind;
      if (kind == runtime::OutputDeltaKind::kContent ||
          kind == runtime::OutputDeltaKind::kReasoning) {
        std::string text;
        while (k < deltas.size() && deltas[k].kind == kind) text += deltas[k++].text;
        if (text.empty()) continue;
        (kind == runtime::OutputDeltaKind::kContent ? chunk.content : chunk.reasoning) =
            std::move(text);
      } else if (kind == runtime::OutputDeltaKind::kToolCallEnd) {
        ++k;
        continue;
      } else {
        chunk.tool_calls.push_back(deltas[k++]);
      }
      chunk.logprobs = take_logprobs();
      sse += SseData(ChatChunkJson(meta_, chunk, include_usage_));
    }
    if (final) {
      ChatChunkChoice chunk;
      chunk.index = index;
      chunk.logprobs = take_logprobs();
      chunk.finish_reason = status.finish_reason;
      sse += SseData(ChatChunkJson(meta_, chunk, include_usage_));
    }
    return sse;
  }

  std::string StreamEnd(const Usage& usage, std::span<const ChoiceStatus>) override {
    std::string out;
    if (include_usage_) out += SseData(ChatUsageChunkJson(meta_, usage));
    out += kSseDone;
    return out;
  }

  std::string Body(const Usage& usage, std::span<const ChoiceStatus> statuses) override {
    std::vector<ChatChoice> out;
    for (size_t i = 0; i < choices.size(); ++i) {
      const runtime::ParsedOutput& parsed = choices[i].parser->result();
      ChatChoice cc;
      cc.index = static_cast<int>(i);
      cc.content = parsed.content;
      cc.reasoning = parsed.reasoning;
      cc.tool_calls = parsed.tool_calls;
      cc.finish_reason = statuses[i].finish_reason;
      if (want_logprobs_) cc.logprobs = std::move(choices[i].logprobs);
      out.push_back(std::move(cc));
    }
    return ChatCompletionJson(meta_, out, usage);
  }

 private:
  const tokenizer::Tokenizer& tokenizer_;
  const ResponseMeta meta_;
  const bool stream_;
  const bool include_usage_;
  const bool want_logprobs_;
};

}  // namespace

ApiOr<CallPlan> PrepareChat(const Shared& shared, const HttpRequest& request) {
  ApiOr<ChatRequest> parsed = ParseChatRequest(request.body, shared.parse_context);
  if (!parsed.ok()) return parsed.error();
  ChatRequest& chat = *parsed;
  if (!chat.params.user.empty()) ARLE_LOG_DEBUG("chat request from user {}", chat.params.user);
  const models::ChatFormat& format = shared.options.chat_format;
  const std::string& family = format.output_parser;

  const bool use_tools = !chat.tools_json.empty() && chat.tool_choice != ToolChoice::kNone;
  if (use_tools && (!HasToolParser(family) || !format.has_tool_calls())) {
    ApiError e;
    e.type = "invalid_request_error";
    e.param = "tools";
    e.message = fmt::format("This model's chat format (output parser '{}') has no tool calls, so "
                            "tools would be silently ignored. Omit 'tools' or pass tool_choice "
                            "'none'.",
                            family);
    return e;
  }
  auto rendered = shared.options.render_chat(chat.messages_json, use_tools ? chat.tools_json : "",
                                             /*add_generation_prompt=*/true,
                                             chat.template_kwargs_json);
  if (!rendered.ok()) return openai_fields::FromStatus(rendered.status(), "messages");
  std::string prompt = std::move(rendered).value();
  const bool start_in_reasoning = ReasoningOpen(family, prompt);
  std::string forced = ForcedToolPrefix(chat.tool_choice, chat.tool_choice_name, format.tool_call_open);
  // A forced call cannot start inside an open <think> block: close it first.
  if (!forced.empty() && start_in_reasoning) forced = "</think>\n\n" + forced;
  prompt += forced;

  CallPlan plan;
  if (auto e = PlanChatPrompt(shared, chat.params, prompt, "messages", "max_tokens", &plan)) {
    return *e;
  }
  auto protocol = std::make_unique<ChatProtocol>(shared.engine.tokenizer(),
                                                 MakeMeta(shared, "chatcmpl-"), chat);
  protocol->choices.resize(static_cast<size_t>(chat.params.n));
  for (ChatChoiceState& c : protocol->choices) {
    auto parser = MakeOutputParser(family, use_tools, start_in_reasoning);
    if (!parser.ok()) return openai_fields::FromStatus(parser.status(), "");
    c.parser = std::move(parser).value();
    if (!forced.empty()) {
      std::vector<runtime::OutputDelta> ignored;  // the forced text is prompt, not output
      c.parser->Feed(forced, &ignored);
    }
  }
  plan.protocol = std::move(protocol);
  return plan;
}

}  // namespace arle::server::openai_internal
