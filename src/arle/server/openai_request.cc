// Request parsing for the OpenAI routes: one function per endpoint over the shared field readers
// (openai_fields.h).
#include "arle/server/openai_request.h"

#include <fmt/format.h>

#include "arle/server/openai_fields.h"

namespace arle::server {

namespace {

using openai_fields::Json;
using openai_fields::MaybeError;
using openai_fields::Invalid;
using openai_fields::TypeMismatch;
using openai_fields::Missing;
using openai_fields::Unsupported;
using openai_fields::ObjectReader;
using openai_fields::ParseBody;
using openai_fields::CheckModel;
using openai_fields::ReadSampling;
using openai_fields::CheckSampling;
using openai_fields::ReadTokenIdList;
using openai_fields::ReadCommon;
using openai_fields::ReadMaxTokens;
using openai_fields::FlattenContent;
using openai_fields::NormalizeMessages;
using openai_fields::CheckTools;
using openai_fields::ReadTemplateKwargs;
using openai_fields::ReadResponseFormat;
using openai_fields::ReadStoreAndMetadata;

}  // namespace

ApiOr<ChatRequest> ParseChatRequest(std::string_view body, const ParseContext& ctx) {
  ApiOr<Json> parsed = ParseBody(body);
  if (!parsed.ok()) return parsed.error();
  const Json& json = *parsed;
  ObjectReader r(json, "");
  ARLE_API_TRY(CheckModel(r, ctx, /*required=*/true));
  ChatRequest req;

  const Json* messages = r.Get("messages");
  if (!messages) return Missing("messages");
  Json normalized;
  ARLE_API_TRY(NormalizeMessages(*messages, &normalized));
  req.messages_json = normalized.dump();

  ARLE_API_TRY(ReadSampling(r, &req.params.sampling));
  ARLE_API_TRY(ReadCommon(r, ctx, &req.params, /*with_n=*/true, /*with_stop=*/true));
  std::optional<int64_t> max_tokens, max_completion_tokens;
  ARLE_API_TRY(ReadMaxTokens(r, "max_tokens", &max_tokens));
  ARLE_API_TRY(ReadMaxTokens(r, "max_completion_tokens", &max_completion_tokens));
  // max_tokens is the deprecated name; the new one wins when both are given (as in vLLM).
  req.params.max_tokens = max_completion_tokens ? max_completion_tokens : max_tokens;

  std::optional<bool> logprobs;
  ARLE_API_TRY(r.Bool("logprobs", &logprobs));
  req.logprobs = logprobs.value_or(false);
  std::optional<int32_t> top_logprobs;
  ARLE_API_TRY(r.Int32("top_logprobs", &top_logprobs));
  if (top_logprobs) {
    if (!req.logprobs && *top_logprobs > 0) {
      return Invalid("Invalid value for 'top_logprobs': 'logprobs' must be set to true when "
                     "'top_logprobs' is used.",
                     "top_logprobs");
    }
    req.params.sampling.top_logprobs = *top_logprobs;
  }
  req.params.sampling.logprobs = req.logprobs;
  ARLE_API_TRY(CheckSampling(req.params.sampling, ctx, openai_fields::kChatRenames));

  std::vector<std::string> tool_names;
  if (const Json* tools = r.Get("tools")) {
    ARLE_API_TRY(CheckTools(*tools, &tool_names));
    if (!tools->empty()) req.tools_json = tools->dump();
  }
  if (const Json* tc = r.Get("tool_choice")) {
    if (tc->is_string()) {
      const std::string s = tc->get<std::string>();
      if (s == "auto") {
        req.tool_choice = ToolChoice::kAuto;
      } else if (s == "none") {
        req.tool_choice = ToolChoice::kNone;
      } else if (s == "required") {
        req.tool_choice = ToolChoice::kRequired;
      } else {
        return Invalid(fmt::format("Invalid value: '{}'. Supported values are: 'none', 'auto', and "
                                   "'required'.",
                                   s),
                       "tool_choice");
      }
    } else if (tc->is_object()) {
      auto type = tc->find("type");
      auto f = tc->find("function");
      if (type == tc->end() || !(type->is_string() && *type == "function")) {
        return Invalid("Invalid value for 'tool_choice': an object must be "
                       "{\"type\": \"function\", \"function\": {\"name\": ...}}",
                       "tool_choice.type");
      }
      if (f == tc->end() || !f->is_object() || !f->contains("name") || !(*f)["name"].is_string()) {
        return Missing("tool_choice.function.name");
      }
      req.tool_choice = ToolChoice::kNamed;
      req.tool_choice_name = (*f)["name"].get<std::string>();
      bool found = false;
      for (const std::string& n : tool_names) found |= n == req.tool_choice_name;
      if (!found && !tool_names.empty()) {
        return Invalid(fmt::format("Invalid value for 'tool_choice': function '{}' is not one of "
                                   "the functions in 'tools'.",
                                   req.tool_choice_name),
                       "tool_choice");
      }
    } else {
      return TypeMismatch("tool_choice", "a string or an object", *tc);
    }
    if ((req.tool_choice == ToolChoice::kRequired || req.tool_choice == ToolChoice::kNamed) &&
        tool_names.empty()) {
      return Invalid("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                     "are specified.",
                     "tool_choice");
    }
  }
  std::optional<bool> parallel;
  ARLE_API_TRY(r.Bool("parallel_tool_calls", &parallel));
  if (parallel && !*parallel) {
    return Unsupported("parallel_tool_calls",
                       "the model may always return several tool calls; omit it or pass true");
  }
  ARLE_API_TRY(ReadTemplateKwargs(r, &req.template_kwargs_json));
  ARLE_API_TRY(ReadResponseFormat(r));
  ARLE_API_TRY(ReadStoreAndMetadata(r));
  ARLE_API_TRY(r.RejectIfGiven("functions", "it is deprecated; use 'tools'"));
  ARLE_API_TRY(r.RejectIfGiven("function_call", "it is deprecated; use 'tool_choice'"));
  ARLE_API_TRY(r.CheckUnknown());
  return req;
}

ApiOr<CompletionRequest> ParseCompletionRequest(std::string_view body, const ParseContext& ctx) {
  ApiOr<Json> parsed = ParseBody(body);
  if (!parsed.ok()) return parsed.error();
  const Json& json = *parsed;
  ObjectReader r(json, "");
  ARLE_API_TRY(CheckModel(r, ctx, /*required=*/true));
  CompletionRequest req;

  const Json* prompt = r.Get("prompt");
  if (!prompt) return Missing("prompt");
  const std::string kPromptTypes = "a string, an array of strings, an array of token ids or an array "
                                   "of token-id arrays";
  if (prompt->is_string()) {
    req.prompts.push_back({false, prompt->get<std::string>(), {}});
  } else if (prompt->is_array()) {
    if (prompt->empty()) {
      return Invalid("Invalid 'prompt': empty array. Expected a non-empty prompt.", "prompt");
    }
    const Json& first = (*prompt)[0];
    if (first.is_number()) {
      CompletionPrompt p{true, {}, {}};
      ARLE_API_TRY(ReadTokenIdList(*prompt, "prompt", ctx.n_vocab, &p.tokens));
      req.prompts.push_back(std::move(p));
    } else {
      for (size_t k = 0; k < prompt->size(); ++k) {
        const Json& item = (*prompt)[k];
        const std::string ip = fmt::format("prompt[{}]", k);
        if (first.is_string() && item.is_string()) {
          req.prompts.push_back({false, item.get<std::string>(), {}});
        } else if (first.is_array() && item.is_array()) {
          if (item.empty()) return Invalid(fmt::format("Invalid '{}': empty token list.", ip), ip);
          CompletionPrompt p{true, {}, {}};
          ARLE_API_TRY(ReadTokenIdList(item, ip, ctx.n_vocab, &p.tokens));
          req.prompts.push_back(std::move(p));
        } else {
          return TypeMismatch(ip, first.is_array() ? "an array of token ids" : "a string", item);
        }
      }
    }
  } else {
    return TypeMismatch("prompt", kPromptTypes, *prompt);
  }

  ARLE_API_TRY(ReadSampling(r, &req.params.sampling));
  ARLE_API_TRY(ReadCommon(r, ctx, &req.params, /*with_n=*/true, /*with_stop=*/true));
  std::optional<bool> echo;
  ARLE_API_TRY(r.Bool("echo", &echo));
  req.echo = echo.value_or(false);
  std::optional<int32_t> logprobs;
  ARLE_API_TRY(r.Int32("logprobs", &logprobs));
  // OpenAI's legacy completions default to 16 tokens; echo with logprobs may ask for none (the
  // prompt's log-probs only, how evaluation harnesses score text).
  req.params.max_tokens = 16;
  ARLE_API_TRY(ReadMaxTokens(r, "max_tokens", &req.params.max_tokens,
                             req.echo && logprobs.has_value() ? 0 : 1));

  if (logprobs) {
    req.logprobs = *logprobs;
    req.params.sampling.logprobs = true;
    req.params.sampling.top_logprobs = *logprobs;
  }
  // The integer `logprobs` is the number of alternatives, SamplingParams' top_logprobs.
  ARLE_API_TRY(CheckSampling(req.params.sampling, ctx, openai_fields::kCompletionRenames));
  std::optional<bool> return_token_ids;
  ARLE_API_TRY(r.Bool("return_token_ids", &return_token_ids));
  req.return_token_ids = return_token_ids.value_or(false);
  std::optional<int64_t> best_of;
  ARLE_API_TRY(r.Int("best_of", &best_of));
  if (best_of && *best_of != req.params.n) {
    return Unsupported("best_of", fmt::format("only best_of == n is supported (got best_of {}, n {})",
                                              *best_of, req.params.n));
  }
  ARLE_API_TRY(r.RejectIfGiven("suffix", "insertion (fill-in-the-middle) is not implemented"));
  ARLE_API_TRY(ReadResponseFormat(r));
  ARLE_API_TRY(r.CheckUnknown());
  return req;
}

ApiOr<ResponsesRequest> ParseResponsesRequest(std::string_view body, const ParseContext& ctx) {
  ApiOr<Json> parsed = ParseBody(body);
  if (!parsed.ok()) return parsed.error();
  const Json& json = *parsed;
  ObjectReader r(json, "");
  ARLE_API_TRY(CheckModel(r, ctx, /*required=*/true));
  ResponsesRequest req;

  Json messages = Json::array();
  std::optional<std::string> instructions;
  ARLE_API_TRY(r.String("instructions", &instructions));
  if (instructions) {
    messages.push_back({{"role", "system"}, {"content", *instructions}});
    req.instructions = instructions;
  }
  const Json* input = r.Get("input");
  if (!input) return Missing("input");
  if (input->is_string()) {
    messages.push_back({{"role", "user"}, {"content", input->get<std::string>()}});
  } else if (input->is_array()) {
    if (input->empty()) {
      return Invalid("Invalid 'input': empty array. Expected an array with minimum length 1.",
                     "input");
    }
    for (size_t i = 0; i < input->size(); ++i) {
      const Json& item = (*input)[i];
      const std::string ip = fmt::format("input[{}]", i);
      if (!item.is_object()) return TypeMismatch(ip, "an object", item);
      ObjectReader ir(item, ip);
      std::optional<std::string> type, role, id, status;
      ARLE_API_TRY(ir.String("type", &type));
      if (type && *type != "message") {
        return Unsupported(ip + ".type",
                           fmt::format("input items of type '{}' are not supported; send messages",
                                       *type));
      }
      ARLE_API_TRY(ir.String("role", &role));
      if (!role) return Missing(ip + ".role");
      if (*role != "user" && *role != "system" && *role != "developer" && *role != "assistant") {
        return Invalid(fmt::format("Invalid value: '{}'. Supported values are: 'user', 'assistant', "
                                   "'system', and 'developer'.",
                                   *role),
                       ip + ".role");
      }
      const Json* content = ir.Get("content");
      if (!content) return Missing(ip + ".content");
      std::string text;
      ARLE_API_TRY(FlattenContent(*content, ip + ".content", {"input_text", "output_text", "text"},
                                  &text));
      // Identifiers of echoed output items; they do not change the prompt.
      ARLE_API_TRY(ir.String("id", &id));
      ARLE_API_TRY(ir.String("status", &status));
      ARLE_API_TRY(ir.CheckUnknown());
      messages.push_back({{"role", *role == "developer" ? "system" : *role}, {"content", text}});
    }
  } else {
    return TypeMismatch("input", "a string or an array of input items", *input);
  }
  req.messages_json = messages.dump();

  ARLE_API_TRY(ReadSampling(r, &req.params.sampling));
  if (json.contains("temperature") && !json["temperature"].is_null()) {
    req.temperature = json["temperature"].get<double>();
  }
  if (json.contains("top_p") && !json["top_p"].is_null()) req.top_p = json["top_p"].get<double>();
  ARLE_API_TRY(ReadCommon(r, ctx, &req.params, /*with_n=*/false, /*with_stop=*/false));
  ARLE_API_TRY(CheckSampling(req.params.sampling, ctx, openai_fields::kResponsesRenames));
  ARLE_API_TRY(ReadMaxTokens(r, "max_output_tokens", &req.max_output_tokens));
  req.params.max_tokens = req.max_output_tokens;
  ARLE_API_TRY(ReadTemplateKwargs(r, &req.template_kwargs_json));

  std::optional<bool> store;
  ARLE_API_TRY(r.Bool("store", &store));
  if (store && *store) {
    return Unsupported("store", "arle keeps no responses for later retrieval; pass store: false");
  }
  ARLE_API_TRY(r.RejectIfGiven("metadata", "it is only meaningful with store"));
  ARLE_API_TRY(r.RejectIfGiven("previous_response_id",
                               "arle keeps no responses; send the whole conversation in 'input'"));
  ARLE_API_TRY(r.RejectIfGiven("reasoning", "reasoning options are not implemented"));
  ARLE_API_TRY(r.RejectIfGiven("tool_choice", "tools are supported on /v1/chat/completions only"));
  if (const Json* tools = r.Get("tools"); tools && !(tools->is_array() && tools->empty())) {
    return Unsupported("tools", "tools are supported on /v1/chat/completions only");
  }
  if (const Json* include = r.Get("include"); include && !(include->is_array() && include->empty())) {
    return Unsupported("include", "no additional output data is available");
  }
  if (const Json* text = r.Get("text")) {
    const bool plain = text->is_object() && text->size() == 1 && text->contains("format") &&
                       (*text)["format"].is_object() && (*text)["format"].value("type", "") == "text" &&
                       (*text)["format"].size() == 1;
    if (!plain) {
      return Unsupported("text", "only {\"format\": {\"type\": \"text\"}} is supported");
    }
  }
  std::optional<std::string> truncation;
  ARLE_API_TRY(r.String("truncation", &truncation));
  if (truncation && *truncation != "disabled") {
    return Unsupported("truncation", "prompts are never truncated; omit it or pass 'disabled'");
  }
  std::optional<bool> parallel;
  ARLE_API_TRY(r.Bool("parallel_tool_calls", &parallel));
  ARLE_API_TRY(r.CheckUnknown());
  return req;
}

ApiOr<TokenizeRequest> ParseTokenizeRequest(std::string_view body, const ParseContext& ctx) {
  ApiOr<Json> parsed = ParseBody(body);
  if (!parsed.ok()) return parsed.error();
  const Json& json = *parsed;
  ObjectReader r(json, "");
  ARLE_API_TRY(CheckModel(r, ctx, /*required=*/false));
  TokenizeRequest req;
  const Json* prompt = r.Get("prompt");
  const Json* messages = r.Get("messages");
  if (prompt && messages) {
    return Invalid("Pass either 'prompt' or 'messages', not both.", "messages");
  }
  if (!prompt && !messages) return Missing("prompt");
  std::optional<bool> b;
  if (prompt) {
    if (!prompt->is_string()) return TypeMismatch("prompt", "a string", *prompt);
    req.prompt = prompt->get<std::string>();
    req.add_special_tokens = true;
  } else {
    req.is_chat = true;
    Json normalized;
    ARLE_API_TRY(NormalizeMessages(*messages, &normalized));
    req.messages_json = normalized.dump();
    req.add_special_tokens = false;
    ARLE_API_TRY(r.Bool("add_generation_prompt", &b));
    if (b) req.add_generation_prompt = *b;
    b.reset();
    std::vector<std::string> names;
    if (const Json* tools = r.Get("tools")) {
      ARLE_API_TRY(CheckTools(*tools, &names));
      if (!tools->empty()) req.tools_json = tools->dump();
    }
    ARLE_API_TRY(ReadTemplateKwargs(r, &req.template_kwargs_json));
    std::optional<bool> cont;
    ARLE_API_TRY(r.Bool("continue_final_message", &cont));
    if (cont && *cont) {
      return Unsupported("continue_final_message", "rendering stops at a complete message");
    }
  }
  ARLE_API_TRY(r.Bool("add_special_tokens", &b));
  if (b) req.add_special_tokens = *b;
  b.reset();
  ARLE_API_TRY(r.Bool("return_token_strs", &b));
  req.return_token_strs = b.value_or(false);
  ARLE_API_TRY(r.CheckUnknown());
  return req;
}

ApiOr<DetokenizeRequest> ParseDetokenizeRequest(std::string_view body, const ParseContext& ctx) {
  ApiOr<Json> parsed = ParseBody(body);
  if (!parsed.ok()) return parsed.error();
  const Json& json = *parsed;
  ObjectReader r(json, "");
  ARLE_API_TRY(CheckModel(r, ctx, /*required=*/false));
  DetokenizeRequest req;
  const Json* tokens = r.Get("tokens");
  if (!tokens) return Missing("tokens");
  ARLE_API_TRY(ReadTokenIdList(*tokens, "tokens", ctx.n_vocab, &req.tokens));
  ARLE_API_TRY(r.CheckUnknown());
  return req;
}

std::string ForcedToolPrefix(ToolChoice choice, std::string_view name,
                             std::string_view tool_call_open) {
  switch (choice) {
    case ToolChoice::kAuto:
    case ToolChoice::kNone:
      return "";
    case ToolChoice::kRequired:
      return fmt::format("{}\n", tool_call_open);
    case ToolChoice::kNamed:
      // The Qwen3 template writes calls as {"name": ..., "arguments": ...}; dump() escapes the name.
      return fmt::format("{}\n{{\"name\": {}, \"arguments\": ", tool_call_open,
                         nlohmann::json(std::string(name)).dump());
  }
  return "";
}

}  // namespace arle::server
