// The agent on the in-process engine, as `arle run` (one turn) and the REPL (many) use it: the
// session (engine, engine-backed model, sandbox, working directory, trace), the terminal
// rendering of a turn, and `arle run`'s one-shot driver.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include "apps/arle/model_source.h"
#include "arle/agent/agent.h"
#include "arle/agent/engine_model.h"
#include "arle/runtime/engine.h"
#include "arle/tokenizer/chat_prompt.h"

namespace CLI {
class App;
}

namespace arle::app {

struct AgentRunSettings {
  int max_turns = 8;
  bool tools = true;
  bool unsafe_no_sandbox = false;
  std::string workdir;        // empty: a fresh temporary directory, removed with the session
  double tool_timeout = 30;   // seconds per tool call
  std::string trace_path;     // empty: no trace
  bool json = false;
  std::string system;
};

class AgentSession {
 public:
  // `loaded` must outlive the session. `request` carries the sampling and stop parameters of
  // every generation (its prompt is ignored); `kwargs` extra template variables. `cancel`, when
  // set, stops running tools (the REPL's Ctrl-C flag). Prints the sandbox warning if any.
  static core::StatusOr<std::unique_ptr<AgentSession>> Create(
      LoadedModel& loaded, tokenizer::ChatSetup setup, nlohmann::ordered_json kwargs,
      runtime::EngineRequest request, const AgentRunSettings& settings,
      const std::atomic<bool>* cancel = nullptr);
  ~AgentSession();

  agent::Agent& agent() { return *agent_; }
  runtime::Engine& engine() { return *engine_; }
  const LoadedModel& loaded() const { return loaded_; }
  const tokenizer::ChatSetup& chat_setup() const { return setup_; }
  const agent::SandboxOptions& sandbox() const { return sandbox_; }
  const AgentRunSettings& settings() const { return settings_; }

  // Appends the turn's trajectory to settings().trace_path (nothing when it is empty).
  core::Status WriteTrace(const agent::TurnResult& result) const;

 private:
  AgentSession(LoadedModel& loaded, tokenizer::ChatSetup setup, AgentRunSettings settings);

  LoadedModel& loaded_;
  tokenizer::ChatSetup setup_;
  AgentRunSettings settings_;
  agent::SandboxOptions sandbox_;
  // Declared before the engine, the model and the agent, so it is removed after they are gone.
  std::unique_ptr<agent::TempWorkdir> temp_workdir_;
  std::unique_ptr<runtime::Engine> engine_;
  std::unique_ptr<agent::EngineAgentModel> model_;
  std::unique_ptr<agent::Agent> agent_;
};

// Shows a turn as it runs: content to `out` as it streams; reasoning to `side`, dimmed when `dim`
// (ANSI); each tool call as one line on `side`, "[shell] <first line of the code>" when it starts,
// completed with " -> exit 0, 12 B stdout, ..." when it ends.
class TurnPrinter {
 public:
  TurnPrinter(FILE* out, FILE* side, bool dim) : out_(out), side_(side), dim_(dim) {}
  agent::AgentEvents Events();
  // Ends an open reasoning block (restores the colour) and the content's line.
  void Finish();

 private:
  void EndReasoning();
  FILE* out_;
  FILE* side_;
  bool dim_;
  bool in_reasoning_ = false;
  bool wrote_content_ = false;
  bool tool_line_open_ = false;
};

// "2 model calls, 1 tool call, prompt 300 tokens (256 cached), generated 40 tokens, TTFT 0.12 s,
// 35.2 tok/s, finish stop".
std::string TurnSummary(const agent::TurnResult& result);

// The JSON form of a turn's tool calls: id, name, arguments, result, ran (and exit_code, limit,
// wall_seconds, sandboxed when it ran).
nlohmann::ordered_json ToolExchangesJson(const agent::TurnResult& result);

// The agent flags `arle run` and `arle repl` share: --no-tools, --max-turns, --trace, --workdir,
// --tool-timeout, --unsafe-no-sandbox.
void AddAgentOptions(CLI::App* cmd, AgentRunSettings& settings);

// `arle run` in chat mode with tools: one turn over `user_text`, printed or as one JSON object.
// Returns the process exit code.
int RunAgentOnce(LoadedModel& loaded, const tokenizer::ChatSetup& setup,
                 const nlohmann::ordered_json& kwargs, const runtime::EngineRequest& request,
                 const std::string& user_text, const AgentRunSettings& settings);

}  // namespace arle::app
