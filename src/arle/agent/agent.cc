// The turn loop, tool-call argument checks, and the messages' JSON form.
#include "arle/agent/agent.h"

#include <nlohmann/json.hpp>

#include <utility>

#include "arle/agent/tools.h"

namespace arle::agent {
namespace {

using Json = nlohmann::ordered_json;

// At most this much of a bad arguments text is quoted back to the model.
constexpr size_t kQuotedArgumentsBytes = 200;

std::string Quote(std::string_view text) {
  if (text.size() <= kQuotedArgumentsBytes) return std::string(text);
  return std::string(text.substr(0, kQuotedArgumentsBytes)) + "...";
}

}  // namespace

core::StatusOr<std::string> ToolCodeArgument(const runtime::ToolCall& call) {
  const Json args = Json::parse(call.arguments, nullptr, /*allow_exceptions=*/false);
  if (args.is_discarded() || !args.is_object() || !args.contains("code") ||
      !args["code"].is_string()) {
    return core::InvalidArgumentError("the arguments of " + call.name +
                                      " must be a JSON object {\"code\": string}; got: " +
                                      Quote(call.arguments));
  }
  return args["code"].get<std::string>();
}

TurnUsage UsageOf(const TurnResult& result) {
  TurnUsage u;
  for (const Completion& c : result.completions) {
    u.prompt_tokens += static_cast<int64_t>(c.prompt_tokens.size());
    u.cached_prompt_tokens += c.n_cached_prompt_tokens;
    u.completion_tokens += static_cast<int64_t>(c.tokens.size());
    u.seconds += c.total_seconds;
  }
  if (!result.completions.empty()) u.ttft_seconds = result.completions.front().ttft_seconds;
  return u;
}

std::string MessagesToJson(const std::vector<AgentMessage>& messages) {
  Json out = Json::array();
  for (const AgentMessage& m : messages) {
    Json j = {{"role", m.role}, {"content", m.content}};
    if (!m.reasoning.empty()) j["reasoning_content"] = m.reasoning;
    if (!m.tool_calls.empty()) {
      Json calls = Json::array();
      for (const runtime::ToolCall& c : m.tool_calls) {
        calls.push_back({{"id", c.id},
                         {"type", c.type},
                         {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
      }
      j["tool_calls"] = std::move(calls);
    }
    if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
    if (!m.name.empty()) j["name"] = m.name;
    out.push_back(std::move(j));
  }
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

core::StatusOr<std::vector<AgentMessage>> MessagesFromJson(std::string_view json) {
  const Json in = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_array()) {
    return core::InvalidArgumentError("messages: not a JSON array");
  }
  std::vector<AgentMessage> messages;
  const auto string_member = [](const Json& j, const char* key, std::string* out) {
    if (!j.contains(key) || j[key].is_null()) return true;
    if (!j[key].is_string()) return false;
    *out = j[key].get<std::string>();
    return true;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    const Json& j = in[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    AgentMessage m;
    if (!j.is_object() || !string_member(j, "role", &m.role) || !string_member(j, "content", &m.content) ||
        !string_member(j, "reasoning_content", &m.reasoning) ||
        !string_member(j, "tool_call_id", &m.tool_call_id) || !string_member(j, "name", &m.name)) {
      return core::InvalidArgumentError(where + ": not an object with string fields");
    }
    if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool") {
      return core::InvalidArgumentError(where + ": unknown role '" + m.role + "'");
    }
    if (j.contains("tool_calls") && !j["tool_calls"].is_null()) {
      if (!j["tool_calls"].is_array()) return core::InvalidArgumentError(where + ".tool_calls: not an array");
      for (const Json& c : j["tool_calls"]) {
        runtime::ToolCall call;
        if (!c.is_object() || !string_member(c, "id", &call.id) || !c.contains("function") ||
            !c["function"].is_object() || !string_member(c["function"], "name", &call.name) ||
            !string_member(c["function"], "arguments", &call.arguments)) {
          return core::InvalidArgumentError(where + ".tool_calls: malformed call");
        }
        m.tool_calls.push_back(std::move(call));
      }
    }
    messages.push_back(std::move(m));
  }
  return messages;
}

Agent::Agent(AgentModel& model, ToolRunner run_tool, AgentOptions options)
    : model_(model), run_tool_(std::move(run_tool)), options_(std::move(options)) {}

void Agent::Reset(std::string system_prompt) {
  messages_.clear();
  if (!system_prompt.empty()) messages_.push_back({.role = "system", .content = std::move(system_prompt)});
}

ToolExchange Agent::RunToolCall(const runtime::ToolCall& call) {
  ToolExchange ex;
  ex.call = call;
  const bool known = call.name == "shell" || call.name == "python";
  if (!known) {
    ex.result_text = "error: unknown tool '" + call.name + "'; the tools are shell and python";
    return ex;
  }
  auto code = ToolCodeArgument(call);
  if (!code.ok()) {
    ex.result_text = "error: " + code.status().message();
    return ex;
  }
  auto run = run_tool_(call.name, *code);
  if (!run.ok()) {
    ex.result_text = "error: " + run.status().message();
    if (!run.status().hint().empty()) ex.result_text += " (" + run.status().hint() + ")";
    return ex;
  }
  ex.ran = true;
  ex.run = std::move(run).value();
  ex.result_text = ToolResultForModel(ex.run, options_.limits);
  return ex;
}

core::StatusOr<TurnResult> Agent::RunTurn(std::string_view user_text, const AgentEvents& events) {
  const auto cancelled = [&] { return events.cancelled && events.cancelled(); };
  // A turn only appends, so undoing it is a truncation.
  const size_t n_before = messages_.size();
  const auto fail = [&](core::Status status) -> core::StatusOr<TurnResult> {
    messages_.resize(n_before);
    return status;
  };
  messages_.push_back({.role = "user", .content = std::string(user_text)});
  const std::string tools_json = options_.tools ? BuiltinToolsJson() : std::string();
  TurnResult result;
  for (int call_index = 0;; ++call_index) {
    if (call_index == options_.max_turns) {
      result.finish = "max_turns";
      break;
    }
    if (cancelled()) {
      result.finish = "cancelled";
      break;
    }
    auto prompt = model_.Render(messages_, tools_json);
    if (!prompt.ok()) return fail(prompt.status());
    runtime::OutputParserOptions parser_options;
    parser_options.start_in_reasoning = runtime::PromptEndsInsideReasoning(*prompt);
    // Ids unique over the conversation: the message count before this reply is.
    parser_options.call_id_prefix = "call_" + std::to_string(messages_.size()) + "_";
    auto parser = runtime::CreateOutputParser(model_.ParserFamily(), parser_options);
    if (!parser.ok()) return fail(parser.status());
    std::vector<runtime::OutputDelta> deltas;
    const auto forward = [&] {
      if (events.on_delta) {
        for (const runtime::OutputDelta& d : deltas) events.on_delta(d);
      }
      deltas.clear();
    };
    auto completion = model_.Generate(*prompt, [&](std::string_view piece) {
      (*parser)->Feed(piece, &deltas);
      forward();
      return !cancelled();
    });
    if (!completion.ok()) return fail(completion.status());
    (*parser)->Flush(&deltas);
    forward();
    const runtime::ParsedOutput& parsed = (*parser)->result();
    result.problems.insert(result.problems.end(), parsed.problems.begin(), parsed.problems.end());
    completion->n_problems = static_cast<int64_t>(parsed.problems.size());
    result.completions.push_back(std::move(completion).value());
    const std::string& finish_reason = result.completions.back().finish_reason;
    messages_.push_back({.role = "assistant",
                         .content = parsed.content,
                         .reasoning = parsed.reasoning,
                         .tool_calls = options_.tools ? parsed.tool_calls
                                                      : std::vector<runtime::ToolCall>{}});
    result.content = parsed.content;
    result.reasoning = parsed.reasoning;
    if (finish_reason == "abort") {
      result.finish = "cancelled";
      break;
    }
    if (!options_.tools || parsed.tool_calls.empty()) {
      result.finish = finish_reason == "length" ? "length" : "stop";
      break;
    }
    // Every call gets its tool message, so the conversation stays well formed even when the
    // user cancels between calls.
    for (const runtime::ToolCall& call : parsed.tool_calls) {
      ToolExchange ex;
      if (cancelled()) {
        ex.call = call;
        ex.result_text = "error: cancelled by the user";
      } else {
        if (events.on_tool_start) events.on_tool_start(call);
        ex = RunToolCall(call);
      }
      ex.model_call = call_index;
      messages_.push_back(
          {.role = "tool", .content = ex.result_text, .tool_call_id = call.id, .name = call.name});
      if (events.on_tool_end) events.on_tool_end(ex);
      result.tools.push_back(std::move(ex));
    }
  }
  return result;
}

}  // namespace arle::agent
