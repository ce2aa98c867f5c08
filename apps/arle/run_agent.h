// `arle run` in chat mode with tools: the agent loop once over one user message, on the
// in-process engine, printing the streamed answer and one line per tool call (or one JSON
// object), and appending the trajectory to a JSONL trace when asked.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "apps/arle/chat_prompt.h"
#include "apps/arle/model_source.h"
#include "arle/runtime/engine.h"

namespace arle::app {

struct AgentRunSettings {
  int max_turns = 8;
  bool unsafe_no_sandbox = false;
  std::string workdir;        // empty: a fresh temporary directory, removed afterwards
  double tool_timeout = 30;   // seconds per tool call
  std::string trace_path;     // empty: no trace
  bool json = false;
  std::string system;
};

// `request` carries the sampling and stop parameters of every generation (its prompt is
// ignored); `kwargs` extra template variables. Returns the process exit code.
int RunAgentOnce(LoadedModel& loaded, const ChatSetup& setup, const nlohmann::ordered_json& kwargs,
                 const runtime::EngineRequest& request, const std::string& user_text,
                 const AgentRunSettings& settings);

// Prints the loud warning of --unsafe-no-sandbox (commands.h) and, when the sandbox is
// unavailable without it, says that tool calls will be refused. Used by every agent command.
void ReportSandboxState(bool unsafe_no_sandbox);

}  // namespace arle::app
