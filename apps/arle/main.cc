// arle: the one binary. Dispatches to subcommands (run, model, convert, tokenize, bench, ...);
// with no arguments it opens the REPL.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "apps/arle/commands.h"
#include "apps/arle/version.h"

int main(int argc, char** argv) {
  CLI::App app{"arle: one C++ runtime for large language models (serve, agent, train, eval)"};
  app.set_version_flag("--version", std::string(arle::app::kVersion));
  app.require_subcommand(0, 1);
  int exit_code = arle::app::kExitOk;
  arle::app::RegisterDoctorOption(app, exit_code);
  arle::app::RegisterRunCommand(app, exit_code);
  arle::app::RegisterModelCommand(app, exit_code);
  arle::app::RegisterConvertCommand(app, exit_code);
  arle::app::RegisterTokenizeCommand(app, exit_code);
  arle::app::RegisterBenchCommand(app, exit_code);
  arle::app::RegisterTemplateCommand(app, exit_code);
  arle::app::RegisterServeCommand(app, exit_code);
  arle::app::RegisterQuantizeCommand(app, exit_code);
  arle::app::RegisterToolCommand(app, exit_code);
  arle::app::RegisterReplCommand(app, exit_code);
  arle::app::RegisterDataCommand(app, exit_code);
  arle::app::RegisterTrainCommand(app, exit_code);
  arle::app::RegisterEvalCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : arle::app::kExitBadInput;
  }
  if (argc == 1) return arle::app::RunDefaultRepl();  // `arle` alone: the interactive agent
  return exit_code;
}
