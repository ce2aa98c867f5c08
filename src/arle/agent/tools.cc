// Tool schemas, argv per tool, and the two renderings of a result.
#include "arle/agent/tools.h"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace arle::agent {
namespace {

std::string CodeSchema(std::string_view what) {
  nlohmann::json schema = {
      {"type", "object"},
      {"properties", {{"code", {{"type", "string"}, {"description", std::string(what)}}}}},
      {"required", {"code"}}};
  return schema.dump();
}

// One stream inside its tag, with the cut marker when output was dropped.
void AppendStream(std::string& out, std::string_view tag, const std::string& kept, int64_t total) {
  out += "<" + std::string(tag) + ">\n";
  out += kept;
  if (!kept.empty() && kept.back() != '\n') out += '\n';
  if (total > static_cast<int64_t>(kept.size())) {
    out += "[... " + std::to_string(total - static_cast<int64_t>(kept.size())) +
           " more bytes cut]\n";
  }
  out += "</" + std::string(tag) + ">\n";
}

}  // namespace

const std::vector<ToolSpec>& BuiltinTools() {
  static const std::vector<ToolSpec> tools = {
      {"shell",
       "Run a bash script in a sandbox (no network, read-only system, writable working "
       "directory /work). Returns the exit code, stdout and stderr.",
       CodeSchema("The bash script to run")},
      {"python",
       "Run a Python 3 program in a sandbox (no network, read-only system, writable working "
       "directory /work). Returns the exit code, stdout and stderr; print what you need.",
       CodeSchema("The Python 3 source to run")},
  };
  return tools;
}

std::string BuiltinToolsJson() {
  nlohmann::json tools = nlohmann::json::array();
  for (const ToolSpec& t : BuiltinTools()) {
    tools.push_back({{"type", "function"},
                     {"function",
                      {{"name", t.name},
                       {"description", t.description},
                       {"parameters", nlohmann::json::parse(t.parameters_schema)}}}});
  }
  return tools.dump();
}

core::StatusOr<SandboxResult> RunTool(std::string_view name, std::string_view code,
                                      const SandboxOptions& options) {
  if (code.size() > kMaxToolCodeBytes) {
    return core::InvalidArgumentError("tool " + std::string(name) + ": code of " +
                                      std::to_string(code.size()) + " bytes is over the " +
                                      std::to_string(kMaxToolCodeBytes) + "-byte limit");
  }
  if (code.find('\0') != std::string_view::npos) {
    return core::InvalidArgumentError("tool " + std::string(name) + ": code contains a NUL byte");
  }
  std::vector<std::string> argv;
  if (name == "shell") {
    argv = {"bash", "-c", std::string(code)};
  } else if (name == "python") {
    argv = {"python3", "-c", std::string(code)};
  } else {
    return core::InvalidArgumentError("unknown tool '" + std::string(name) + "'",
                                      "the tools are shell and python");
  }
  if (!options.unsafe_no_sandbox) {
    // Inside the sandbox PATH is fixed: name the interpreters by path so the host's PATH (a
    // pyenv shim, say) never matters.
    argv[0] = name == "shell" ? "/usr/bin/bash" : "/usr/bin/python3";
  }
  return RunSandboxed(argv, options);
}

std::string ToolResultForModel(const SandboxResult& result, const SandboxLimits& limits) {
  std::string out = "exit_code: " + std::to_string(result.exit_code) + "\n";
  if (result.limit != LimitHit::kNone) {
    char line[160];
    switch (result.limit) {
      case LimitHit::kWallTime:
        std::snprintf(line, sizeof(line), "killed: wall time limit of %g s\n", limits.wall_seconds);
        break;
      case LimitHit::kCpuTime:
        std::snprintf(line, sizeof(line), "killed: CPU time limit of %g s\n", limits.cpu_seconds);
        break;
      case LimitHit::kMemory:
        std::snprintf(line, sizeof(line), "killed: memory limit of %lld MiB\n",
                      static_cast<long long>(limits.memory_bytes >> 20));
        break;
      case LimitHit::kProcesses:
        std::snprintf(line, sizeof(line), "killed: more than %lld processes\n",
                      static_cast<long long>(limits.max_processes));
        break;
      case LimitHit::kOutput:
        std::snprintf(line, sizeof(line), "killed: more than %lld bytes of output\n",
                      static_cast<long long>(limits.max_output_bytes));
        break;
      case LimitHit::kCancelled:
        std::snprintf(line, sizeof(line), "killed: cancelled by the user\n");
        break;
      case LimitHit::kNone:
        line[0] = '\0';
        break;
    }
    out += line;
  }
  AppendStream(out, "stdout", result.stdout_text, result.stdout_bytes);
  AppendStream(out, "stderr", result.stderr_text, result.stderr_bytes);
  return out;
}

std::string ToolResultJson(std::string_view tool, const SandboxResult& result) {
  const nlohmann::json j = {
      {"tool", std::string(tool)},
      {"exit_code", result.exit_code},
      {"limit", std::string(LimitHitName(result.limit))},
      {"stdout", result.stdout_text},
      {"stderr", result.stderr_text},
      {"stdout_bytes", result.stdout_bytes},
      {"stderr_bytes", result.stderr_bytes},
      {"stdout_truncated", result.stdout_bytes > static_cast<int64_t>(result.stdout_text.size())},
      {"stderr_truncated", result.stderr_bytes > static_cast<int64_t>(result.stderr_text.size())},
      {"wall_seconds", result.wall_seconds},
      {"sandboxed", result.sandboxed},
  };
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace arle::agent
