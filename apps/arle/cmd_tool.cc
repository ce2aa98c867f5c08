// `arle tool run {shell|python} --code TEXT`: one tool call exactly as the agent runs it (same
// sandbox, limits and result text), for debugging tools and for tests.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <memory>

#include "apps/arle/commands.h"
#include "arle/agent/sandbox.h"
#include "arle/agent/tools.h"
#include "arle/core/file_util.h"

namespace arle::app {

void WarnUnsafeNoSandbox() {
  fmt::print(stderr,
             "arle: WARNING: --unsafe-no-sandbox: tools run WITHOUT isolation. They can read and "
             "change your files, see your home directory, read arle's environment (API keys, tokens) "
             "and use the network. Only the time, memory, process and output limits still "
             "apply.\n");
}

void RegisterToolCommand(CLI::App& app, int& exit_code) {
  CLI::App* tool = app.add_subcommand("tool", "Run the agent's tools by hand");
  tool->require_subcommand(1);
  CLI::App* run = tool->add_subcommand("run", "Run one tool call in the sandbox and print its result");
  static std::string name, code, workdir;
  static double timeout = 30;
  static int64_t memory_mb = 512;
  static bool json = false, unsafe = false;
  run->add_option("tool", name, "shell or python")->required()->check(
      CLI::IsMember({"shell", "python"}));
  run->add_option("--code", code, "The script or program to run")->required();
  run->add_option("--timeout", timeout, "Wall-time limit in seconds (default 30)");
  run->add_option("--memory-mb", memory_mb, "Memory limit in MiB (default 512)");
  run->add_option("--workdir", workdir,
                  "Host directory mounted at /work (default: a fresh one, removed afterwards)");
  run->add_flag("--json", json, "Print the result as JSON");
  run->add_flag("--unsafe-no-sandbox", unsafe, "Run without bubblewrap isolation (dangerous)");
  run->callback([&exit_code] {
    agent::SandboxOptions options;
    options.unsafe_no_sandbox = unsafe;
    options.limits.wall_seconds = timeout;
    options.limits.cpu_seconds = timeout;
    options.limits.memory_bytes = memory_mb * (int64_t{1} << 20);
    if (unsafe) WarnUnsafeNoSandbox();
    std::unique_ptr<agent::TempWorkdir> temp;  // removed when the call is done
    if (workdir.empty()) {
      auto dir = agent::TempWorkdir::Create("arle-tool");
      if (!dir.ok()) {
        exit_code = ReportError(dir.status());
        return;
      }
      temp = std::move(dir).value();
      options.workdir = temp->path();
    } else {
      options.workdir = workdir;
    }
    auto result = agent::RunTool(name, code, options);
    if (!result.ok()) {
      exit_code = ReportError(result.status());
      return;
    }
    if (json) {
      fmt::print("{}\n", agent::ToolResultJson(name, *result));
    } else {
      fmt::print("{}", agent::ToolResultForModel(*result, options.limits));
    }
  });
}

}  // namespace arle::app
