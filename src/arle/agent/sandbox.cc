// bubblewrap invocation, process start with rlimits, and the watch loop that reads the output,
// measures the process tree through /proc and kills it at a limit.
#include "arle/agent/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "arle/core/file_util.h"

namespace arle::agent {
namespace {

using Clock = std::chrono::steady_clock;

// How often the process tree is measured while a command runs.
constexpr int kWatchMillis = 10;

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const std::string candidate = core::JoinPath(dir, name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// bwrap's arguments for running argv with `workdir` at /work. Only /usr (and the merged-/usr
// symlinks), a few configuration files programs need to start, /proc, /dev, a sized tmpfs /tmp
// and the workdir are visible: no home directory, no /etc secrets, no sockets of the host.
std::vector<std::string> BwrapArgs(const std::string& bwrap, const std::vector<std::string>& argv,
                                   const SandboxOptions& options) {
  std::vector<std::string> args = {bwrap,        "--unshare-all",  "--die-with-parent",
                                   "--new-session", "--cap-drop", "ALL",
                                   "--hostname",   "arle-sandbox", "--ro-bind",
                                   "/usr",         "/usr"};
  for (const char* top : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st;
    if (::lstat(top, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[256];
      const ssize_t n = ::readlink(top, target, sizeof(target) - 1);
      if (n <= 0) continue;
      args.insert(args.end(), {"--symlink", std::string(target, n), top});
    } else {
      args.insert(args.end(), {"--ro-bind", top, top});
    }
  }
  for (const char* etc : {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
                          "/etc/alternatives", "/etc/localtime", "/etc/passwd", "/etc/group",
                          "/etc/nsswitch.conf", "/etc/python3", "/etc/python3.11", "/etc/bash.bashrc",
                          "/etc/inputrc"}) {
    args.insert(args.end(), {"--ro-bind-try", etc, etc});
  }
  args.insert(args.end(),
              {"--proc", "/proc", "--dev", "/dev", "--size",
               std::to_string(options.limits.file_bytes), "--tmpfs", "/tmp", "--bind",
               options.workdir, "/work", "--chdir", "/work", "--clearenv", "--setenv", "PATH",
               "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/work", "--setenv", "TMPDIR",
               "/tmp", "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
               "--remount-ro", "/", "--"});
  args.insert(args.end(), argv.begin(), argv.end());
  return args;
}

// One process of the host as /proc/PID/stat shows it.
struct ProcInfo {
  int ppid = 0;
  int64_t rss_pages = 0;
};

std::map<int, ProcInfo> ReadProcesses() {
  std::map<int, ProcInfo> procs;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return procs;
  while (const dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    // read(2), not a stream: a process that exits meanwhile makes the read fail (ESRCH).
    const std::string path = std::string("/proc/") + e->d_name + "/stat";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[1024];
    const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
    ::close(fd);
    if (n <= 0) continue;  // gone meanwhile
    const std::string line(buf, static_cast<size_t>(n));
    // "pid (comm) state ppid ... rss": comm may hold spaces and parentheses.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string field;
    ProcInfo info;
    for (int i = 3; rest >> field; ++i) {  // field 3 is the state
      if (i == 4) info.ppid = std::atoi(field.c_str());
      if (i == 24) {
        info.rss_pages = std::atoll(field.c_str());
        break;
      }
    }
    procs[static_cast<int>(pid)] = info;
  }
  ::closedir(dir);
  return procs;
}

// The pids of `root` and all its descendants, and their resident memory in bytes.
struct Tree {
  std::vector<int> pids;
  int64_t rss_bytes = 0;
};

Tree MeasureTree(int root) {
  const std::map<int, ProcInfo> procs = ReadProcesses();
  std::multimap<int, int> children;
  for (const auto& [pid, info] : procs) children.emplace(info.ppid, pid);
  Tree tree;
  static const int64_t page = ::sysconf(_SC_PAGESIZE);
  std::vector<int> todo = {root};
  while (!todo.empty()) {
    const int pid = todo.back();
    todo.pop_back();
    const auto it = procs.find(pid);
    if (it == procs.end()) continue;
    tree.pids.push_back(pid);
    tree.rss_bytes += it->second.rss_pages * page;
    const auto [lo, hi] = children.equal_range(pid);
    for (auto c = lo; c != hi; ++c) todo.push_back(c->second);
  }
  return tree;
}

void KillTree(int root, const Tree& tree) {
  ::kill(-root, SIGKILL);  // the process group the child leads (bwrap itself, unsafe mode's tree)
  for (const int pid : tree.pids) ::kill(pid, SIGKILL);
}

void SetLimit(int resource, rlim_t soft, rlim_t hard) {
  const struct rlimit limit = {soft, hard};
  ::setrlimit(resource, &limit);
}

// Appends what a read returned to the kept text (up to `keep` bytes) and the byte count.
void Account(const char* data, ssize_t n, int64_t keep, std::string& text, int64_t& total) {
  const int64_t room = keep - static_cast<int64_t>(text.size());
  if (room > 0) text.append(data, static_cast<size_t>(std::min<int64_t>(room, n)));
  total += n;
}

// Processes bwrap itself keeps in the tree (the monitor and the namespace's init).
constexpr int64_t kBwrapProcesses = 2;

// Tasks (threads included, as RLIMIT_NPROC counts them) of processes that `uid` owns.
int64_t UserTaskCount(uid_t uid) {
  int64_t n = 0;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const std::string proc = std::string("/proc/") + e->d_name;
    struct stat st;
    if (::stat(proc.c_str(), &st) != 0 || st.st_uid != uid) continue;
    DIR* tasks = ::opendir((proc + "/task").c_str());
    if (tasks == nullptr) continue;
    while (const dirent* t = ::readdir(tasks)) n += t->d_name[0] != '.';
    ::closedir(tasks);
  }
  ::closedir(dir);
  return n;
}

core::Status CheckOptions(const std::vector<std::string>& argv, const SandboxOptions& o) {
  if (argv.empty() || argv[0].empty()) return core::InvalidArgumentError("sandbox: empty command");
  const SandboxLimits& l = o.limits;
  if (!(l.wall_seconds > 0) || !(l.cpu_seconds > 0) || l.memory_bytes < (16 << 20) ||
      l.max_processes < 1 || l.output_bytes < 0 || l.max_output_bytes < 1 || l.file_bytes < 1) {
    return core::InvalidArgumentError(
        "sandbox: limits must be positive (memory at least 16 MiB)",
        "check --timeout and the memory limit");
  }
  if (!core::IsDirectory(o.workdir)) {
    return core::InvalidArgumentError("sandbox: working directory '" + o.workdir +
                                      "' does not exist");
  }
  return core::OkStatus();
}

// Starts args (args[0] a path, or a name looked up on PATH in the unsafe mode) with the limits
// as rlimits, and watches it to the end: see RunSandboxed.
core::StatusOr<SandboxResult> RunArgs(const std::vector<std::string>& args,
                                      const SandboxOptions& options) {
  const SandboxLimits& limits = options.limits;
  int out[2], err[2], exec_err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
      ::pipe2(exec_err, O_CLOEXEC) != 0) {
    return core::IoError(std::string("sandbox: pipe: ") + std::strerror(errno));
  }
  std::vector<char*> cargs;
  for (const std::string& a : args) cargs.push_back(const_cast<char*>(a.c_str()));
  cargs.push_back(nullptr);
  // bubblewrap itself starts with nothing of arle's environment: it stays in the sandbox as the
  // PID namespace's init, where /proc/1/environ would show every secret arle holds (API keys,
  // tokens), and its --clearenv clears only its child's. PATH is all it needs to find nothing
  // (it is given absolute paths); the command's own environment is set by --setenv. The unsafe
  // mode keeps arle's environment, as documented.
  static char kSandboxPath[] = "PATH=/usr/local/bin:/usr/bin:/bin";
  char* sandbox_env[] = {kSandboxPath, nullptr};
  // The kernel's cap on the tree: the watchdog reports the limit at max_processes + 1, the kernel
  // refuses forks a little past it, so a fork bomb never grows beyond the sandbox's own count.
  // The uid's tasks that already exist count against the cap, so they are added to it: the
  // caller's other processes, and, as SandboxUid(), the zombies earlier runs leave where the
  // system's init is slow to reap orphans (bwrap's intermediate process ends up there).
  const bool drop_root = ::geteuid() == 0 && !options.unsafe_no_sandbox;
  const uid_t run_uid = drop_root ? SandboxUid() : ::getuid();
  const int64_t already = run_uid == 0 ? 0 : UserTaskCount(run_uid);
  const rlim_t nproc = static_cast<rlim_t>(already + limits.max_processes + kBwrapProcesses + 2);
  const bool limit_nproc = run_uid != 0;  // root is exempt from RLIMIT_NPROC anyway
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) return core::IoError(std::string("sandbox: fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::setsid();  // its own process group, so the whole group can be killed
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    if (options.unsafe_no_sandbox && ::chdir(options.workdir.c_str()) != 0) ::_exit(126);
    // SIGXCPU at the CPU limit (reported as such), SIGKILL a second later if it is caught.
    const rlim_t cpu = static_cast<rlim_t>(limits.cpu_seconds + 0.999);
    SetLimit(RLIMIT_CPU, cpu, cpu + 1);
    SetLimit(RLIMIT_AS, static_cast<rlim_t>(limits.memory_bytes),
             static_cast<rlim_t>(limits.memory_bytes));
    SetLimit(RLIMIT_FSIZE, static_cast<rlim_t>(limits.file_bytes),
             static_cast<rlim_t>(limits.file_bytes));
    SetLimit(RLIMIT_CORE, 0, 0);
    if (limit_nproc) SetLimit(RLIMIT_NPROC, nproc, nproc);
    if (drop_root && (::setgroups(0, nullptr) != 0 || ::setresgid(run_uid, run_uid, run_uid) != 0 ||
                      ::setresuid(run_uid, run_uid, run_uid) != 0)) {
      const int e = errno;
      (void)!::write(exec_err[1], &e, sizeof(e));
      ::_exit(127);
    }
    if (options.unsafe_no_sandbox) {
      ::execvp(cargs[0], cargs.data());
    } else {
      ::execve(cargs[0], cargs.data(), sandbox_env);
    }
    const int e = errno;
    (void)!::write(exec_err[1], &e, sizeof(e));
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  ::close(exec_err[1]);
  int exec_errno = 0;
  const bool exec_failed = ::read(exec_err[0], &exec_errno, sizeof(exec_errno)) == sizeof(int);
  ::close(exec_err[0]);
  if (exec_failed) {
    ::waitpid(pid, nullptr, 0);
    ::close(out[0]);
    ::close(err[0]);
    return core::IoError("sandbox: cannot run '" + args[0] + "': " + std::strerror(exec_errno));
  }

  SandboxResult result;
  result.sandboxed = !options.unsafe_no_sandbox;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  bool open[2] = {true, true};
  bool exited = false, killed = false;
  int status = 0;
  const auto deadline = start + std::chrono::duration<double>(limits.wall_seconds);
  Tree last_tree;
  auto next_measure = start;
  char buf[65536];
  const auto kill_for = [&](LimitHit why) {
    if (!killed) result.limit = why;
    killed = true;
    KillTree(pid, last_tree);
  };
  while (!exited || open[0] || open[1]) {
    if (open[0] || open[1]) {
      for (int i = 0; i < 2; ++i) fds[i].fd = open[i] ? (i == 0 ? out[0] : err[0]) : -1;
      const int ready = ::poll(fds, 2, kWatchMillis);
      for (int i = 0; ready > 0 && i < 2; ++i) {
        if (!open[i] || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
        if (n <= 0) {
          if (n < 0 && errno == EINTR) continue;
          open[i] = false;
          continue;
        }
        if (i == 0) {
          Account(buf, n, limits.output_bytes, result.stdout_text, result.stdout_bytes);
        } else {
          Account(buf, n, limits.output_bytes, result.stderr_text, result.stderr_bytes);
        }
      }
    } else {
      ::usleep(kWatchMillis * 1000);
    }
    if (!exited) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) exited = true;
    }
    if (exited) {
      // Output still open after the exit: a process that left the group (daemonized in the
      // unsafe mode; in the sandbox the PID namespace died with bwrap). Stop reading at the
      // deadline. No kill: the reaped pid no longer names our group.
      if (Clock::now() > deadline && (open[0] || open[1])) {
        if (result.limit == LimitHit::kNone) result.limit = LimitHit::kWallTime;
        break;
      }
      continue;
    }
    if (killed) continue;  // waiting for the killed tree to be reaped
    if (options.cancel != nullptr && options.cancel->load(std::memory_order_relaxed)) {
      last_tree = MeasureTree(pid);
      kill_for(LimitHit::kCancelled);
      continue;
    }
    if (Clock::now() > deadline) {
      last_tree = MeasureTree(pid);
      kill_for(LimitHit::kWallTime);
      continue;
    }
    if (result.stdout_bytes + result.stderr_bytes > limits.max_output_bytes) {
      last_tree = MeasureTree(pid);
      kill_for(LimitHit::kOutput);
      continue;
    }
    // A /proc scan costs about a millisecond: at most one per watch period, however fast the
    // output arrives.
    if (Clock::now() < next_measure) continue;
    next_measure = Clock::now() + std::chrono::milliseconds(kWatchMillis);
    last_tree = MeasureTree(pid);
    // bwrap's own processes are not the command's.
    const int64_t overhead = options.unsafe_no_sandbox ? 0 : kBwrapProcesses;
    if (static_cast<int64_t>(last_tree.pids.size()) - overhead > limits.max_processes) {
      kill_for(LimitHit::kProcesses);
    } else if (last_tree.rss_bytes > limits.memory_bytes) {
      kill_for(LimitHit::kMemory);
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  if (!exited) ::waitpid(pid, &status, 0);
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (result.limit == LimitHit::kNone) {
    // The kernel's own enforcement: SIGXCPU at the CPU limit; an allocation past RLIMIT_AS fails
    // inside the program, which reports it (MemoryError, "Cannot allocate memory").
    if (result.exit_code == 128 + SIGXCPU) result.limit = LimitHit::kCpuTime;
  }
  return result;
}

}  // namespace

std::string_view LimitHitName(LimitHit limit) {
  switch (limit) {
    case LimitHit::kNone: return "none";
    case LimitHit::kWallTime: return "wall_time";
    case LimitHit::kCpuTime: return "cpu_time";
    case LimitHit::kMemory: return "memory";
    case LimitHit::kProcesses: return "processes";
    case LimitHit::kOutput: return "output";
    case LimitHit::kCancelled: return "cancelled";
  }
  return "unknown";
}

uint32_t SandboxUid() {
  if (::geteuid() != 0) return ::getuid();
  static const uint32_t uid = 2'000'000'000u + static_cast<uint32_t>(::getpid());
  return uid;
}

core::Status PrepareWorkdir(const std::string& dir) {
  if (::geteuid() != 0) return core::OkStatus();
  if (::chown(dir.c_str(), SandboxUid(), SandboxUid()) != 0) {
    return core::IoError("cannot give the working directory " + dir + " to the sandbox user: " +
                         std::strerror(errno));
  }
  return core::OkStatus();
}

core::StatusOr<std::unique_ptr<TempWorkdir>> TempWorkdir::Create(std::string_view prefix) {
  std::error_code ec;
  const std::filesystem::path tmp = std::filesystem::temp_directory_path(ec);
  std::string tmpl = ((ec ? std::filesystem::path("/tmp") : tmp) /
                      (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return core::IoError("cannot create a working directory " + tmpl + ": " +
                         std::strerror(errno));
  }
  std::unique_ptr<TempWorkdir> dir(new TempWorkdir(tmpl));
  if (core::Status s = PrepareWorkdir(tmpl); !s.ok()) return s;  // removed by dir's destructor
  return dir;
}

TempWorkdir::~TempWorkdir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

const SandboxState& ProbeSandbox() {
  static const SandboxState state = [] {
    SandboxState s;
    s.bwrap_path = FindOnPath("bwrap");
    if (s.bwrap_path.empty()) {
      s.detail = "bwrap (Debian package bubblewrap) is not installed";
      return s;
    }
    auto dir = TempWorkdir::Create("arle-probe");
    if (!dir.ok()) {
      s.detail = dir.status().message();
      return s;
    }
    SandboxOptions probe;
    probe.workdir = (*dir)->path();
    probe.limits.wall_seconds = 10;
    const core::StatusOr<SandboxResult> r =
        RunArgs(BwrapArgs(s.bwrap_path, {"true"}, probe), probe);
    if (!r.ok() || r.value().exit_code != 0) {
      std::string why = r.ok() ? r.value().stderr_text : r.status().message();
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      if (r.ok() && r.value().limit != LimitHit::kNone) {
        why += std::string(" (") + std::string(LimitHitName(r.value().limit)) + ")";
      }
      s.detail = "bwrap cannot create namespaces here: " + why;
      return s;
    }
    s.available = true;
    s.detail = "bubblewrap at " + s.bwrap_path + ", namespaces available";
    return s;
  }();
  return state;
}

core::StatusOr<SandboxResult> RunSandboxed(const std::vector<std::string>& argv,
                                           const SandboxOptions& options) {
  if (core::Status s = CheckOptions(argv, options); !s.ok()) return s;
  if (options.unsafe_no_sandbox) return RunArgs(argv, options);
  const SandboxState& state = ProbeSandbox();
  if (!state.available) {
    return core::FailedPreconditionError(
        "tools are refused: the sandbox is unavailable (" + state.detail + ")",
        "install bubblewrap (apt-get install bubblewrap) and allow user namespaces, or pass "
        "--unsafe-no-sandbox to run tools without isolation");
  }
  return RunArgs(BwrapArgs(state.bwrap_path, argv, options), options);
}

}  // namespace arle::agent
