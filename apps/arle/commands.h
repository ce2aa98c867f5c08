// The arle binary's subcommands. Each Register* function adds one subcommand to the CLI11 app; its
// callback stores the process exit code in `exit_code`: 0 success, 1 internal failure, 2 bad input
// (a user-caused error such as a missing or corrupt file, printed with its hint).
#pragma once

#include <string>
#include <vector>

#include "arle/core/dtype.h"
#include "arle/core/status.h"

namespace CLI {
class App;
}

namespace arle::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;

// Prints "arle: error: ..." (and the hint) to stderr; returns kExitFailure for internal errors
// and kExitBadInput for everything a user can cause.
int ReportError(const core::Status& status);

void RegisterDoctorOption(CLI::App& app, int& exit_code);
void RegisterModelCommand(CLI::App& app, int& exit_code);
void RegisterConvertCommand(CLI::App& app, int& exit_code);
void RegisterTokenizeCommand(CLI::App& app, int& exit_code);
void RegisterRunCommand(CLI::App& app, int& exit_code);
void RegisterBenchCommand(CLI::App& app, int& exit_code);
void RegisterTemplateCommand(CLI::App& app, int& exit_code);
void RegisterServeCommand(CLI::App& app, int& exit_code);
void RegisterQuantizeCommand(CLI::App& app, int& exit_code);
void RegisterToolCommand(CLI::App& app, int& exit_code);
void RegisterReplCommand(CLI::App& app, int& exit_code);
void RegisterDataCommand(CLI::App& app, int& exit_code);
void RegisterTrainCommand(CLI::App& app, int& exit_code);
void RegisterEvalCommand(CLI::App& app, int& exit_code);
// `arle train plot | estimate-memory | test` (cmd_train_tools.cc, cmd_train_selftest.cc), added
// under the `train` subcommand by RegisterTrainCommand.
void RegisterTrainToolCommands(CLI::App& train, int& exit_code);
void RegisterTrainSelfTest(CLI::App& train, int& exit_code);
// The non-empty items of a comma-separated flag value (--lora-targets q_proj,v_proj).
std::vector<std::string> SplitList(const std::string& list);
// --save-dtype of the train commands: f32 | bf16 | f16 (cmd_train.cc).
core::StatusOr<core::DType> ParseSaveDtype(const std::string& name);
// `arle train grpo` (cmd_train_grpo.cc).
void RegisterTrainGrpoCommand(CLI::App& train, int& exit_code);
// `arle` with no arguments: the REPL with the default model and settings.
int RunDefaultRepl();

// Prints the loud warning every command that accepts --unsafe-no-sandbox gives when it is set.
void WarnUnsafeNoSandbox();

}  // namespace arle::app
