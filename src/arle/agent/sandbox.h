// The tool sandbox: runs one command under bubblewrap with no network, a read-only system, a
// private writable working directory (/work inside), a fresh /tmp, new PID/IPC/UTS/user
// namespaces and no capabilities; with limits on wall time, CPU time, memory, process count and
// output, past which the whole process tree is killed and the limit is reported.
//
// Nothing of arle's environment enters the sandbox (bubblewrap starts with PATH alone; the command
// gets PATH, HOME=/work, TMPDIR=/tmp, LANG=C.UTF-8), so API keys and tokens stay out of reach.
//
// Without bubblewrap (or where the kernel refuses namespaces) commands are refused, unless the
// caller asks for the unsafe mode: the same limits and the same kill of the process tree, but the
// command sees the real file system, the network and arle's whole environment.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::agent {

struct SandboxLimits {
  double wall_seconds = 30;        // whole run, from start to the kill of the process tree
  double cpu_seconds = 30;         // CPU time of each process (RLIMIT_CPU)
  int64_t memory_bytes = 512 << 20;  // resident memory of the whole tree, and each process's
                                     // address space (RLIMIT_AS)
  int64_t max_processes = 64;      // processes alive in the tree at once
  int64_t output_bytes = 16 << 10;   // bytes kept of stdout and of stderr each (the rest counted)
  int64_t max_output_bytes = 8 << 20;  // stdout + stderr produced before the tree is killed
  int64_t file_bytes = 64 << 20;   // largest file a process may write, and the size of /tmp
};

struct SandboxOptions {
  SandboxLimits limits;
  // Host directory mounted read-write at /work (the command's working directory). Must exist.
  std::string workdir;
  // Run without bubblewrap: no isolation, only the limits. The caller must say so loudly.
  bool unsafe_no_sandbox = false;
  // When set and it becomes true (a Ctrl-C handler), the process tree is killed and the result
  // says LimitHit::kCancelled. Polled every few milliseconds.
  const std::atomic<bool>* cancel = nullptr;
};

// Which limit ended a run.
enum class LimitHit { kNone, kWallTime, kCpuTime, kMemory, kProcesses, kOutput, kCancelled };
std::string_view LimitHitName(LimitHit limit);  // "none", "wall_time", "cpu_time", ...

struct SandboxResult {
  int exit_code = 0;    // the command's exit status; 128 + N when it died of signal N
  LimitHit limit = LimitHit::kNone;
  std::string stdout_text;  // the first output_bytes bytes
  std::string stderr_text;
  int64_t stdout_bytes = 0;  // bytes produced in all
  int64_t stderr_bytes = 0;
  double wall_seconds = 0;
  bool sandboxed = false;  // false in the unsafe mode
};

// Whether tools can run sandboxed here, and if not, why.
struct SandboxState {
  bool available = false;
  std::string bwrap_path;  // empty when bwrap was not found
  std::string detail;      // version, or the reason it cannot run
};

// The user id sandboxed commands run as. When arle runs as root: an unprivileged id of this
// process's own (2,000,000,000 + pid, in no passwd file), so no tool runs as root even inside its
// namespace and the kernel's per-user process limit binds (RLIMIT_NPROC does not bind root: a
// fork bomb could otherwise take every pid of the host before the watchdog kills it). Otherwise
// the caller's own id. The unsafe mode keeps the caller's id.
uint32_t SandboxUid();

// Makes a directory arle created writable by SandboxUid() (chown when root; nothing otherwise).
// A directory the user names keeps its owner: as root, its /work is writable only if SandboxUid
// may write it.
core::Status PrepareWorkdir(const std::string& dir);

// A fresh directory under the system's temporary directory, given to SandboxUid() (for /work);
// removed with everything the tools wrote into it when destroyed.
class TempWorkdir {
 public:
  // `prefix` names it: <tmp>/<prefix>-XXXXXX. IoError when it cannot be created or given.
  static core::StatusOr<std::unique_ptr<TempWorkdir>> Create(std::string_view prefix);
  ~TempWorkdir();
  TempWorkdir(const TempWorkdir&) = delete;
  TempWorkdir& operator=(const TempWorkdir&) = delete;
  const std::string& path() const { return path_; }

 private:
  explicit TempWorkdir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Finds bwrap on PATH and runs a trivial command under the sandbox's namespaces once; the answer
// is cached for the process.
const SandboxState& ProbeSandbox();

// Runs argv (argv[0] resolved on the sandbox's PATH) with stdin from /dev/null and returns how it
// ended. Errors: FailedPrecondition when the sandbox is unavailable and not unsafe (with a hint),
// InvalidArgument for an empty argv, a missing workdir or bad limits, IoError when the process
// cannot be started. A command that fails, crashes or hits a limit is a result, not an error.
core::StatusOr<SandboxResult> RunSandboxed(const std::vector<std::string>& argv,
                                           const SandboxOptions& options);

}  // namespace arle::agent
