// The agent's built-in tools, `shell` (bash) and `python` (python3): their JSON schemas for the
// chat template, one call run in the sandbox, and the result as the model and as a program see it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "arle/agent/sandbox.h"
#include "arle/core/status.h"

namespace arle::agent {

struct ToolSpec {
  std::string name;
  std::string description;
  std::string parameters_schema;  // JSON Schema of the arguments object
};

// shell and python, each taking {"code": string}.
const std::vector<ToolSpec>& BuiltinTools();

// The OpenAI-style "tools" array of BuiltinTools(): [{"type": "function", "function": {name,
// description, parameters}}], as JSON text for a chat template.
std::string BuiltinToolsJson();

// Longest `code` a call may carry (one argv string is limited to 128 KiB by Linux).
inline constexpr size_t kMaxToolCodeBytes = 100 * 1024;

// Runs tool `name` ("shell": bash -c code; "python": python3 -c code) in the sandbox. Errors:
// InvalidArgument for an unknown tool or oversized code, and RunSandboxed's. A command that fails
// or hits a limit is a result.
core::StatusOr<SandboxResult> RunTool(std::string_view name, std::string_view code,
                                      const SandboxOptions& options);

// The tool message the model reads: the exit code, the limit that ended the run if any, and the
// kept stdout and stderr in <stdout>/<stderr> tags, each with a marker saying how many bytes were
// cut when the output was longer than the limit.
std::string ToolResultForModel(const SandboxResult& result, const SandboxLimits& limits);

// {"tool", "exit_code", "limit", "stdout", "stderr", "stdout_bytes", "stderr_bytes",
//  "stdout_truncated", "stderr_truncated", "wall_seconds", "sandboxed"} as JSON text (invalid
// UTF-8 in the output replaced).
std::string ToolResultJson(std::string_view tool, const SandboxResult& result);

}  // namespace arle::agent
