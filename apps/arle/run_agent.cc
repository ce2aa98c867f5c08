// The one-shot agent of `arle run`: engine and sandbox set-up, the terminal rendering of a turn,
// its JSON result and its trace line.
#include "apps/arle/run_agent.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "apps/arle/agent_model.h"
#include "apps/arle/commands.h"
#include "arle/agent/agent.h"
#include "arle/agent/sandbox.h"
#include "arle/agent/tools.h"

namespace arle::app {
namespace {

using Json = nlohmann::ordered_json;

// The first line of a tool's code, cut to fit one terminal line.
std::string OneLine(std::string_view code) {
  std::string line(code.substr(0, code.find('\n')));
  if (line.size() > 72) line = line.substr(0, 69) + "...";
  if (line.size() < code.size()) line += " ...";
  return line;
}

std::string ToolSummary(const agent::ToolExchange& ex) {
  if (!ex.ran) return ex.result_text;
  std::string s = fmt::format("exit {}, {} B stdout, {} B stderr, {:.2f} s", ex.run.exit_code,
                              ex.run.stdout_bytes, ex.run.stderr_bytes, ex.run.wall_seconds);
  if (ex.run.limit != agent::LimitHit::kNone) {
    s += fmt::format(" (killed: {})", agent::LimitHitName(ex.run.limit));
  }
  return s;
}

Json ToolsJson(const agent::TurnResult& result) {
  Json tools = Json::array();
  for (const agent::ToolExchange& ex : result.tools) {
    Json t = {{"id", ex.call.id},
              {"name", ex.call.name},
              {"arguments", ex.call.arguments},
              {"result", ex.result_text},
              {"ran", ex.ran}};
    if (ex.ran) {
      t["exit_code"] = ex.run.exit_code;
      t["limit"] = std::string(agent::LimitHitName(ex.run.limit));
      t["wall_seconds"] = ex.run.wall_seconds;
      t["sandboxed"] = ex.run.sandboxed;
    }
    tools.push_back(std::move(t));
  }
  return tools;
}

// The trajectory as RL training reads it: every model call's prompt and completion tokens, and
// the whole sequence with mask 1 on model-generated tokens. The sequence is only whole when each
// prompt extends the previous prompt + completion; when a template re-renders an earlier reply
// differently, `mask_consistent` is false and the sequence restarts at that prompt.
Json TraceLine(const std::string& model, const std::vector<agent::AgentMessage>& messages,
               const agent::TurnResult& result) {
  Json calls = Json::array();
  std::vector<int32_t> tokens;
  std::vector<int> mask;
  bool consistent = true;
  for (const agent::Completion& c : result.completions) {
    calls.push_back({{"prompt_tokens", c.prompt_tokens},
                     {"completion_tokens", c.tokens},
                     {"cached_prompt_tokens", c.n_cached_prompt_tokens},
                     {"finish_reason", c.finish_reason},
                     {"ttft_seconds", c.ttft_seconds},
                     {"seconds", c.total_seconds}});
    const bool extends = c.prompt_tokens.size() >= tokens.size() &&
                         std::equal(tokens.begin(), tokens.end(), c.prompt_tokens.begin());
    if (!extends) {
      consistent = false;
      tokens.clear();
      mask.clear();
    }
    for (size_t i = tokens.size(); i < c.prompt_tokens.size(); ++i) {
      tokens.push_back(c.prompt_tokens[i]);
      mask.push_back(0);
    }
    for (const int32_t t : c.tokens) {
      tokens.push_back(t);
      mask.push_back(1);
    }
  }
  return {{"model", model},
          {"messages", Json::parse(agent::MessagesToJson(messages))},
          {"tools", ToolsJson(result)},
          {"calls", calls},
          {"tokens", tokens},
          {"mask", mask},
          {"mask_consistent", consistent},
          {"finish", result.finish}};
}

}  // namespace

void ReportSandboxState(bool unsafe_no_sandbox) {
  if (unsafe_no_sandbox) {
    WarnUnsafeNoSandbox();
    return;
  }
  const agent::SandboxState& state = agent::ProbeSandbox();
  if (!state.available) {
    fmt::print(stderr,
               "arle: warning: tool calls will be refused: the sandbox is unavailable ({}). "
               "Install bubblewrap, or pass --no-tools, or --unsafe-no-sandbox.\n",
               state.detail);
  }
}

int RunAgentOnce(LoadedModel& loaded, const ChatSetup& setup, const Json& kwargs,
                 const runtime::EngineRequest& request, const std::string& user_text,
                 const AgentRunSettings& settings) {
  ReportSandboxState(settings.unsafe_no_sandbox);
  agent::SandboxOptions sandbox;
  sandbox.unsafe_no_sandbox = settings.unsafe_no_sandbox;
  sandbox.limits.wall_seconds = settings.tool_timeout;
  sandbox.limits.cpu_seconds = settings.tool_timeout;
  std::string temp_dir;
  if (settings.workdir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "arle-agent-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return ReportError(core::IoError("cannot create a working directory in " + tmpl));
    }
    temp_dir = sandbox.workdir = tmpl;
  } else {
    sandbox.workdir = settings.workdir;
  }
  struct RemoveDir {
    std::string path;
    ~RemoveDir() {
      std::error_code ignored;
      if (!path.empty()) std::filesystem::remove_all(path, ignored);
    }
  } remove_temp{temp_dir};

  auto engine = runtime::Engine::Create(*loaded.model, *loaded.tokenizer, runtime::EngineOptions{});
  if (!engine.ok()) return ReportError(engine.status());
  EngineAgentModel model(**engine, setup, OutputParserFamily(loaded.model->config()), request, kwargs);
  agent::AgentOptions options;
  options.max_turns = settings.max_turns;
  options.limits = sandbox.limits;
  agent::Agent agent(
      model,
      [&](std::string_view tool, std::string_view code) {
        return agent::RunTool(tool, code, sandbox);
      },
      options);
  agent.Reset(settings.system);

  const bool dim = ::isatty(STDERR_FILENO) != 0;
  agent::AgentEvents events;
  bool in_reasoning = false;
  if (!settings.json) {
    events.on_delta = [&](const runtime::OutputDelta& d) {
      if (d.kind == runtime::OutputDeltaKind::kContent) {
        std::fwrite(d.text.data(), 1, d.text.size(), stdout);
        std::fflush(stdout);
      } else if (d.kind == runtime::OutputDeltaKind::kReasoning) {
        // Reasoning goes to stderr (dimmed on a terminal), so stdout carries only the answer.
        if (!in_reasoning && dim) std::fputs("\x1b[2m", stderr);
        in_reasoning = true;
        std::fwrite(d.text.data(), 1, d.text.size(), stderr);
        std::fflush(stderr);
        return;
      }
      if (in_reasoning) {
        std::fputs(dim ? "\x1b[0m\n" : "\n", stderr);
        in_reasoning = false;
      }
    };
    events.on_tool_start = [&](const runtime::ToolCall& call) {
      if (in_reasoning) {
        std::fputs(dim ? "\x1b[0m\n" : "\n", stderr);
        in_reasoning = false;
      }
      const Json args = Json::parse(call.arguments, nullptr, false);
      const std::string code = args.is_object() && args.contains("code") && args["code"].is_string()
                                   ? args["code"].get<std::string>()
                                   : call.arguments;
      fmt::print(stderr, "[{}] {}\n", call.name, OneLine(code));
    };
    events.on_tool_end = [&](const agent::ToolExchange& ex) {
      fmt::print(stderr, "[{}] -> {}\n", ex.call.name, OneLine(ToolSummary(ex)));
    };
  }
  auto result = agent.RunTurn(user_text, events);
  if (in_reasoning && dim) std::fputs("\x1b[0m", stderr);
  if (!result.ok()) return ReportError(result.status());

  int64_t prompt_tokens = 0, cached = 0, generated = 0;
  double seconds = 0;
  for (const agent::Completion& c : result->completions) {
    prompt_tokens += static_cast<int64_t>(c.prompt_tokens.size());
    cached += c.n_cached_prompt_tokens;
    generated += static_cast<int64_t>(c.tokens.size());
    seconds += c.total_seconds;
  }
  const double ttft = result->completions.empty() ? 0 : result->completions.front().ttft_seconds;
  if (!settings.trace_path.empty()) {
    std::ofstream trace(settings.trace_path, std::ios::app);
    trace << TraceLine(loaded.location.description, agent.messages(), *result)
                 .dump(-1, ' ', false, Json::error_handler_t::replace)
          << '\n';
    if (!trace) return ReportError(core::IoError("cannot write the trace " + settings.trace_path));
  }
  if (settings.json) {
    const Json out = {
        {"model", loaded.location.description},
        {"chat", true},
        {"agent", true},
        {"content", result->content},
        {"reasoning_content", result->reasoning},
        {"finish", result->finish},
        {"model_calls", result->completions.size()},
        {"tool_calls", ToolsJson(*result)},
        {"malformed_output", !result->problems.empty()},
        {"problems", result->problems},
        {"messages", Json::parse(agent::MessagesToJson(agent.messages()))},
        {"usage",
         {{"prompt_tokens", prompt_tokens},
          {"cached_prompt_tokens", cached},
          {"completion_tokens", generated}}},
        {"timings", {{"ttft_seconds", ttft}, {"total_seconds", seconds}}}};
    fmt::print("{}\n", out.dump(2, ' ', false, Json::error_handler_t::replace));
  } else {
    std::fputc('\n', stdout);
    std::fflush(stdout);
    fmt::print(stderr,
               "[{}: {} model call(s), {} tool call(s), prompt {} tokens ({} cached), generated {} "
               "tokens, TTFT {:.2f} s, {:.1f} tok/s, finish {}]\n",
               loaded.location.description, result->completions.size(), result->tools.size(),
               prompt_tokens, cached, generated, ttft, seconds > 0 ? generated / seconds : 0.0,
               result->finish);
  }
  return kExitOk;
}

}  // namespace arle::app
