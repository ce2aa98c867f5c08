// The agent session (engine, sandbox, working directory, trace), the terminal rendering of a
// turn, and the one-shot agent of `arle run`.
#include "apps/arle/run_agent.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <fstream>

#include "apps/arle/commands.h"
#include "arle/agent/sandbox.h"
#include "arle/agent/tools.h"
#include "arle/models/registry.h"

namespace arle::app {
namespace {

using Json = nlohmann::ordered_json;

// The first line of a text, cut to fit one terminal line.
std::string OneLine(std::string_view text) {
  std::string line(text.substr(0, text.find('\n')));
  if (line.size() > 72) line = line.substr(0, 69) + "...";
  else if (line.size() < text.size()) line += " ...";
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
          {"tools", ToolExchangesJson(result)},
          {"calls", calls},
          {"tokens", tokens},
          {"mask", mask},
          {"mask_consistent", consistent},
          {"finish", result.finish}};
}

}  // namespace

Json ToolExchangesJson(const agent::TurnResult& result) {
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

AgentSession::AgentSession(LoadedModel& loaded, tokenizer::ChatSetup setup,
                           AgentRunSettings settings)
    : loaded_(loaded), setup_(std::move(setup)), settings_(std::move(settings)) {}

AgentSession::~AgentSession() = default;

core::StatusOr<std::unique_ptr<AgentSession>> AgentSession::Create(
    LoadedModel& loaded, tokenizer::ChatSetup setup, Json kwargs, runtime::EngineRequest request,
    const AgentRunSettings& settings, const std::atomic<bool>* cancel) {
  std::unique_ptr<AgentSession> s(new AgentSession(loaded, std::move(setup), settings));
  if (settings.tools) {
    if (settings.unsafe_no_sandbox) {
      WarnUnsafeNoSandbox();
    } else if (const agent::SandboxState& state = agent::ProbeSandbox(); !state.available) {
      fmt::print(stderr,
                 "arle: warning: tool calls will be refused: the sandbox is unavailable ({}). "
                 "Install bubblewrap, or pass --no-tools, or --unsafe-no-sandbox.\n",
                 state.detail);
    }
  }
  s->sandbox_.unsafe_no_sandbox = settings.unsafe_no_sandbox;
  s->sandbox_.limits.wall_seconds = settings.tool_timeout;
  s->sandbox_.limits.cpu_seconds = settings.tool_timeout;
  s->sandbox_.cancel = cancel;
  if (settings.workdir.empty()) {
    auto dir = agent::TempWorkdir::Create("arle-agent");
    if (!dir.ok()) return dir.status();
    s->temp_workdir_ = std::move(dir).value();
    s->sandbox_.workdir = s->temp_workdir_->path();
  } else {
    s->sandbox_.workdir = settings.workdir;
  }
  auto engine = runtime::Engine::Create(*loaded.model, *loaded.tokenizer, runtime::EngineOptions{});
  if (!engine.ok()) return engine.status();
  s->engine_ = std::move(engine).value();
  s->model_ = std::make_unique<agent::EngineAgentModel>(
      *s->engine_, s->setup_,
      models::ChatFormatFor(loaded.model->info().architecture).output_parser, std::move(request),
      std::move(kwargs));
  agent::AgentOptions options;
  options.max_turns = settings.max_turns;
  options.tools = settings.tools;
  options.limits = s->sandbox_.limits;
  AgentSession* self = s.get();
  s->agent_ = std::make_unique<agent::Agent>(
      *s->model_,
      [self](std::string_view tool, std::string_view code) {
        return agent::RunTool(tool, code, self->sandbox_);
      },
      options);
  s->agent_->Reset(settings.system);
  return s;
}

core::Status AgentSession::WriteTrace(const agent::TurnResult& result) const {
  if (settings_.trace_path.empty()) return core::OkStatus();
  std::ofstream trace(settings_.trace_path, std::ios::app);
  trace << TraceLine(loaded_.location.description, agent_->messages(), result)
               .dump(-1, ' ', false, Json::error_handler_t::replace)
        << '\n';
  if (!trace) return core::IoError("cannot write the trace " + settings_.trace_path);
  return core::OkStatus();
}

void TurnPrinter::EndReasoning() {
  if (!in_reasoning_) return;
  std::fputs(dim_ ? "\x1b[0m\n" : "\n", side_);
  std::fflush(side_);
  in_reasoning_ = false;
}

void TurnPrinter::Finish() {
  EndReasoning();
  if (wrote_content_) std::fputc('\n', out_);
  std::fflush(out_);
  wrote_content_ = false;
}

agent::AgentEvents TurnPrinter::Events() {
  agent::AgentEvents events;
  events.on_delta = [this](const runtime::OutputDelta& d) {
    if (d.kind == runtime::OutputDeltaKind::kReasoning) {
      if (!in_reasoning_ && dim_) std::fputs("\x1b[2m", side_);
      in_reasoning_ = true;
      std::fwrite(d.text.data(), 1, d.text.size(), side_);
      std::fflush(side_);
    } else if (d.kind == runtime::OutputDeltaKind::kContent) {
      EndReasoning();
      std::fwrite(d.text.data(), 1, d.text.size(), out_);
      std::fflush(out_);
      wrote_content_ = !d.text.empty() || wrote_content_;
    }
  };
  events.on_tool_start = [this](const runtime::ToolCall& call) {
    EndReasoning();
    if (wrote_content_) {
      std::fputc('\n', out_);
      std::fflush(out_);
      wrote_content_ = false;
    }
    const auto code = agent::ToolCodeArgument(call);
    // The line stays open while the tool runs; its result summary ends it.
    fmt::print(side_, "[{}] {}", call.name, OneLine(code.ok() ? *code : call.arguments));
    std::fflush(side_);
    tool_line_open_ = true;
  };
  events.on_tool_end = [this](const agent::ToolExchange& ex) {
    if (!tool_line_open_) fmt::print(side_, "[{}]", ex.call.name);  // refused before it started
    fmt::print(side_, " -> {}\n", OneLine(ToolSummary(ex)));
    std::fflush(side_);
    tool_line_open_ = false;
  };
  return events;
}

std::string TurnSummary(const agent::TurnResult& result) {
  const agent::TurnUsage u = agent::UsageOf(result);
  return fmt::format(
      "{} model call(s), {} tool call(s), prompt {} tokens ({} cached), generated {} tokens, "
      "TTFT {:.2f} s, {:.1f} tok/s, finish {}",
      result.completions.size(), result.tools.size(), u.prompt_tokens, u.cached_prompt_tokens,
      u.completion_tokens, u.ttft_seconds, u.seconds > 0 ? u.completion_tokens / u.seconds : 0.0,
      result.finish);
}

void AddAgentOptions(CLI::App* cmd, AgentRunSettings& s) {
  cmd->add_flag_callback("--no-tools", [&s] { s.tools = false; },
                         "Chat without the agent's tools (`run`: one plain chat completion)");
  cmd->add_option("--max-turns", s.max_turns, "Model calls per answer at most")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--trace", s.trace_path,
                  "Append each turn's trajectory (messages, tool calls, token ids with the "
                  "generated-token mask, timings) to this JSONL file");
  cmd->add_option("--workdir", s.workdir,
                  "Host directory the tools see as /work (default: a fresh one, removed after)");
  cmd->add_option("--tool-timeout", s.tool_timeout, "Seconds per tool call")
      ->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  cmd->add_flag("--unsafe-no-sandbox", s.unsafe_no_sandbox,
                "Run tools without bubblewrap isolation (dangerous)");
}

int RunAgentOnce(LoadedModel& loaded, const tokenizer::ChatSetup& setup, const Json& kwargs,
                 const runtime::EngineRequest& request, const std::string& user_text,
                 const AgentRunSettings& settings) {
  auto session = AgentSession::Create(loaded, setup, kwargs, request, settings);
  if (!session.ok()) return ReportError(session.status());
  TurnPrinter printer(stdout, stderr, ::isatty(STDERR_FILENO) != 0);
  const agent::AgentEvents events = settings.json ? agent::AgentEvents{} : printer.Events();
  auto result = (*session)->agent().RunTurn(user_text, events);
  printer.Finish();
  if (!result.ok()) return ReportError(result.status());
  if (core::Status s = (*session)->WriteTrace(*result); !s.ok()) return ReportError(s);
  if (!settings.json) {
    fmt::print(stderr, "[{}: {}]\n", loaded.location.description, TurnSummary(*result));
    return kExitOk;
  }
  const agent::TurnUsage u = agent::UsageOf(*result);
  const Json out = {
      {"model", loaded.location.description},
      {"chat", true},
      {"agent", true},
      {"content", result->content},
      {"reasoning_content", result->reasoning},
      {"finish", result->finish},
      {"model_calls", result->completions.size()},
      {"tool_calls", ToolExchangesJson(*result)},
      {"malformed_output", !result->problems.empty()},
      {"problems", result->problems},
      {"messages", Json::parse(agent::MessagesToJson((*session)->agent().messages()))},
      {"usage",
       {{"prompt_tokens", u.prompt_tokens},
        {"cached_prompt_tokens", u.cached_prompt_tokens},
        {"completion_tokens", u.completion_tokens}}},
      {"timings", {{"ttft_seconds", u.ttft_seconds}, {"total_seconds", u.seconds}}}};
  fmt::print("{}\n", out.dump(2, ' ', false, Json::error_handler_t::replace));
  return kExitOk;
}

}  // namespace arle::app
