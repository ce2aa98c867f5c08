// The sandbox against what a tool call might try: the network, writing outside its directory,
// reading the host's files, fork bombs, sleeping, allocating and printing past the limits. Each
// attempt must be contained, reported as a result, and leave nothing running on the host. The
// tests that need bubblewrap's namespaces skip, saying why, where the kernel refuses them.
#include "arle/agent/sandbox.h"

#include <gtest/gtest.h>

#include "arle/agent/tools.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace arle::agent {
namespace {

namespace fs = std::filesystem;

// A fresh host directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "arle-sandbox-test-XXXXXX").string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Host processes whose command line contains `marker`.
int CountProcessesWith(const std::string& marker) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    // read(2), not a stream: a process that exits meanwhile makes the read fail (ESRCH).
    const int fd = ::open((entry.path() / "cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[4096];
    const ssize_t len = ::read(fd, buf, sizeof(buf));
    ::close(fd);
    if (len <= 0) continue;
    std::string cmdline(buf, static_cast<size_t>(len));
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;  // arguments are NUL-separated
    if (cmdline.find(marker) != std::string::npos) ++n;
  }
  return n;
}

// True once no host process carries `marker` (within a second: the kernel reaps a killed pid
// namespace asynchronously).
bool NoneLeft(const std::string& marker) {
  for (int i = 0; i < 100; ++i) {
    if (CountProcessesWith(marker) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::string UniqueMarker(const char* what) {
  return std::string("arle_marker_") + what + "_" + std::to_string(::getpid());
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const SandboxState& state = ProbeSandbox();
    if (!state.available) GTEST_SKIP() << "sandbox unavailable here: " << state.detail;
    options_.workdir = dir_.path();
    ASSERT_TRUE(PrepareWorkdir(dir_.path()).ok());
  }
  SandboxResult Bash(const std::string& script) {
    auto r = RunSandboxed({"/usr/bin/bash", "-c", script}, options_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : SandboxResult{};
  }
  SandboxResult Python(const std::string& program) {
    auto r = RunSandboxed({"/usr/bin/python3", "-c", program}, options_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : SandboxResult{};
  }
  TempDir dir_;
  SandboxOptions options_;
};

TEST_F(SandboxTest, ReportsExitCodeAndBothStreams) {
  const SandboxResult r = Bash("echo out; echo err >&2; exit 3");
  EXPECT_TRUE(r.sandboxed);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.limit, LimitHit::kNone);
  EXPECT_EQ(r.stdout_text, "out\n");
  EXPECT_EQ(r.stderr_text, "err\n");
  EXPECT_EQ(r.stdout_bytes, 4);
}

TEST_F(SandboxTest, NeverRunsAsRootAndKeepsTheKernelProcessLimit) {
  const SandboxResult r = Bash("id -u; ulimit -u");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  const std::string uid = r.stdout_text.substr(0, r.stdout_text.find('\n'));
  if (::geteuid() == 0) EXPECT_EQ(uid, std::to_string(SandboxUid()));
  EXPECT_NE(uid, "0");
  EXPECT_EQ(r.stdout_text.find("unlimited"), std::string::npos) << r.stdout_text;
}

TEST_F(SandboxTest, HasNoNetwork) {
  const SandboxResult r = Python(
      "import socket\n"
      "try:\n"
      "    socket.create_connection(('1.1.1.1', 80), timeout=3)\n"
      "    print('connected')\n"
      "except OSError as e:\n"
      "    print('refused', e.errno)\n"
      "print(sorted(n for _, n in socket.if_nameindex()))\n");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_NE(r.stdout_text.find("refused"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("['lo']"), std::string::npos) << r.stdout_text;  // loopback only
}

TEST_F(SandboxTest, WritesOnlyItsWorkdirAndAPrivateTmp) {
  const std::string marker = UniqueMarker("tmpfile");
  const SandboxResult r = Bash(
      "pwd; echo data > result.txt && echo wrote-work;"
      "echo x > /tmp/" + marker + " && echo wrote-tmp;"
      "for p in /usr/arle-x /etc/arle-x /arle-x /proc/arle-x; do "
      "  (echo x > $p) 2>/dev/null && echo ESCAPED $p; done;"
      "mkdir /usr/arle-dir 2>/dev/null && echo ESCAPED mkdir; true");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_NE(r.stdout_text.find("/work\n"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("wrote-work"), std::string::npos);
  EXPECT_NE(r.stdout_text.find("wrote-tmp"), std::string::npos);
  EXPECT_EQ(r.stdout_text.find("ESCAPED"), std::string::npos) << r.stdout_text;
  // The workdir write reached the host; the /tmp write did not.
  std::ifstream written(dir_.path() + "/result.txt");
  std::string line;
  ASSERT_TRUE(std::getline(written, line));
  EXPECT_EQ(line, "data");
  EXPECT_FALSE(fs::exists(fs::temp_directory_path() / marker));
}

TEST_F(SandboxTest, CannotReadTheHostsFiles) {
  // A file outside the workdir, as the user's home or another project would be.
  TempDir secret_dir;
  { std::ofstream(secret_dir.path() + "/secret") << "s3cret"; }
  const char* home = std::getenv("HOME");
  const SandboxResult r = Bash(
      "cat " + secret_dir.path() + "/secret 2>/dev/null && echo LEAKED;"
      "ls " + std::string(home != nullptr ? home : "/root") + " 2>/dev/null | head -1 | grep -q . "
      "&& echo LEAKED-HOME;"
      "ls /root /home 2>/dev/null | grep -v '^/' | grep -q . && echo LEAKED-HOMES;"
      "test -e /etc/shadow && echo LEAKED-SHADOW;"
      "echo done");
  EXPECT_EQ(r.stdout_text, "done\n") << r.stdout_text;
}

TEST_F(SandboxTest, ForkBombIsKilledAtTheProcessLimit) {
  const std::string marker = UniqueMarker("forkbomb");
  options_.limits.max_processes = 32;
  options_.limits.wall_seconds = 60;
  // Every process forks two that do the same and waits for them: the tree doubles each round and
  // nothing exits, so only the process limit ends it. (Typically within 0.2 s; on a starved
  // machine killing the thousands forked meanwhile takes seconds, hence the loose bound, which
  // still shows the wall limit was not what ended it.)
  const SandboxResult r = Bash(": " + marker + "; bomb() { bomb & bomb & wait; }; bomb");
  EXPECT_EQ(r.limit, LimitHit::kProcesses) << LimitHitName(r.limit) << " " << r.stderr_text;
  EXPECT_LT(r.wall_seconds, 45);
  EXPECT_TRUE(NoneLeft(marker));
}

TEST_F(SandboxTest, ClassicForkBombIsContained) {
  const std::string marker = UniqueMarker("classic");
  options_.limits.max_processes = 32;
  options_.limits.wall_seconds = 3;
  // :(){ :|:& };: with a name. Its processes exit as fast as they fork (the pipeline runs in the
  // background and the function returns), so depending on the scheduling the run ends at the
  // process limit, at the wall time, or when the first shell exits and the PID namespace goes
  // down with everything in it. Whichever: it ends in time and nothing is left on the host.
  const SandboxResult r = Bash(": " + marker + "; bomb() { bomb | bomb & }; bomb");
  EXPECT_LT(r.wall_seconds, 8);
  EXPECT_TRUE(NoneLeft(marker));
}

TEST_F(SandboxTest, ManySleepersAreKilledAtTheProcessLimit) {
  options_.limits.max_processes = 16;
  const SandboxResult r = Bash("for i in $(seq 40); do sleep 103 & done; wait");
  EXPECT_EQ(r.limit, LimitHit::kProcesses);
  EXPECT_TRUE(NoneLeft("sleep 103"));
}

TEST_F(SandboxTest, SleepingPastTheWallTimeKillsTheWholeTree) {
  const std::string marker = UniqueMarker("sleep");
  options_.limits.wall_seconds = 1;
  // A background child, and a grandchild that leaves the process group: both must go.
  const SandboxResult r = Bash(": " + marker + "; sleep 101 & setsid sleep 101 & sleep 101");
  EXPECT_EQ(r.limit, LimitHit::kWallTime);
  EXPECT_GE(r.wall_seconds, 1.0);
  EXPECT_LT(r.wall_seconds, 5.0);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(NoneLeft(marker));
  EXPECT_EQ(CountProcessesWith("sleep 101"), 0);
}

TEST_F(SandboxTest, OneAllocationPastTheLimitFailsInsideTheProgram) {
  options_.limits.memory_bytes = 256 << 20;
  const SandboxResult r = Python("x = bytearray(1 << 30)\nprint('allocated')");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "");
  EXPECT_NE(r.stderr_text.find("MemoryError"), std::string::npos) << r.stderr_text;
}

TEST_F(SandboxTest, ProcessesThatTogetherPassTheMemoryLimitAreKilled) {
  options_.limits.memory_bytes = 256 << 20;
  options_.limits.wall_seconds = 20;
  // Four processes of 100 MiB each (touched, so resident): each is under the limit alone.
  const SandboxResult r = Bash(
      "for i in 1 2 3 4; do /usr/bin/python3 -c "
      "'import time; x = bytearray(100 << 20); time.sleep(15)' & done; wait");
  EXPECT_EQ(r.limit, LimitHit::kMemory);
  EXPECT_LT(r.wall_seconds, 12);
}

TEST_F(SandboxTest, LongOutputIsCutAndCounted) {
  options_.limits.output_bytes = 1000;
  const SandboxResult r = Bash("head -c 3000000 /dev/zero | tr '\\0' 'a'; echo tail >&2");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.limit, LimitHit::kNone);
  EXPECT_EQ(r.stdout_text, std::string(1000, 'a'));
  EXPECT_EQ(r.stdout_bytes, 3000000);
  EXPECT_EQ(r.stderr_text, "tail\n");
}

TEST_F(SandboxTest, EndlessOutputIsKilled) {
  options_.limits.max_output_bytes = 4 << 20;
  const SandboxResult r = Bash("yes");
  EXPECT_EQ(r.limit, LimitHit::kOutput);
  EXPECT_GT(r.stdout_bytes, 4 << 20);
  EXPECT_EQ(static_cast<int64_t>(r.stdout_text.size()), options_.limits.output_bytes);
}

TEST_F(SandboxTest, CpuTimeLimitStopsABusyLoop) {
  options_.limits.cpu_seconds = 1;
  options_.limits.wall_seconds = 20;
  const SandboxResult r = Bash("while :; do :; done");
  EXPECT_EQ(r.limit, LimitHit::kCpuTime) << r.exit_code << " " << r.stderr_text;
  EXPECT_LT(r.wall_seconds, 10);
}

TEST_F(SandboxTest, CancelKillsTheTree) {
  const std::string marker = UniqueMarker("cancel");
  std::atomic<bool> cancel{false};
  options_.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  const SandboxResult r = Bash(": " + marker + "; sleep 104 & sleep 104");
  canceller.join();
  EXPECT_EQ(r.limit, LimitHit::kCancelled);
  EXPECT_LT(r.wall_seconds, 5);
  EXPECT_TRUE(NoneLeft(marker));
  EXPECT_EQ(CountProcessesWith("sleep 104"), 0);
}

// A secret in arle's environment (an API key, a token) is readable nowhere in the sandbox: not in
// the environ or command line of any process the command can see (bubblewrap runs there as the PID
// namespace's init), nor in any file. Both tools dump everything they can read; the host looks for
// the secret in the dump. /usr is the host's read-only system and cannot hold a value made now;
// /sys and /dev hold no process data.
class SandboxSecretTest : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (IsSkipped()) return;
    secret_ = "arle-secret-" + std::to_string(::getpid()) + "-" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    ASSERT_EQ(::setenv("ARLE_TEST_SECRET_TOKEN", secret_.c_str(), 1), 0);
    options_.limits.output_bytes = 64 << 20;
    options_.limits.max_output_bytes = 64 << 20;
  }
  void TearDown() override { ::unsetenv("ARLE_TEST_SECRET_TOKEN"); }
  std::string secret_;
};

TEST_F(SandboxSecretTest, ShellSeesNoSecretInAnyProcessOrFile) {
  auto r = RunTool("shell",
                   "echo ENV1-BEGIN; tr '\\0' '\\n' < /proc/1/environ; echo ENV1-END; env;"
                   "for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do cat \"$f\"; echo; done;"
                   "find / \\( -path /usr -o -path /proc -o -path /sys -o -path /dev \\) -prune "
                   "-o -type f -print0 2>/dev/null | xargs -0 cat 2>/dev/null; echo DUMPED",
                   options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->sandboxed);
  const std::string& dump = r->stdout_text;
  // The dump really read the init's environment and walked the files.
  EXPECT_NE(dump.find("ENV1-BEGIN\nPATH=/usr/local/bin:/usr/bin:/bin\n"), std::string::npos)
      << dump.substr(0, 2000);
  EXPECT_NE(dump.find("DUMPED"), std::string::npos) << r->stderr_text;
  EXPECT_EQ(r->stdout_bytes, static_cast<int64_t>(dump.size()));  // nothing cut
  EXPECT_EQ(dump.find(secret_), std::string::npos) << "the secret is visible in the sandbox";
}

TEST_F(SandboxSecretTest, PythonSeesNoSecretInAnyProcessOrFile) {
  auto r = RunTool("python",
                   "import os, sys\n"
                   "out = sys.stdout.buffer\n"
                   "out.write(repr(dict(os.environ)).encode())\n"
                   "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
                   "for p in pids:\n"
                   "    for name in ('environ', 'cmdline'):\n"
                   "        try:\n"
                   "            out.write(open(f'/proc/{p}/{name}', 'rb').read() + b'\\n')\n"
                   "        except OSError:\n"
                   "            pass\n"
                   "files = 0\n"
                   "for root, dirs, names in os.walk('/'):\n"
                   "    if root == '/':\n"
                   "        dirs[:] = [d for d in dirs if d not in ('usr', 'proc', 'sys', 'dev')]\n"
                   "    for n in names:\n"
                   "        path = os.path.join(root, n)\n"
                   "        if os.path.isfile(path) and not os.path.islink(path):\n"
                   "            try:\n"
                   "                out.write(open(path, 'rb').read())\n"
                   "                files += 1\n"
                   "            except OSError:\n"
                   "                pass\n"
                   "out.write(f'\\nPIDS {len(pids)} FILES {files}\\n'.encode())\n",
                   options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_text;
  const std::string& dump = r->stdout_text;
  EXPECT_NE(dump.find("PATH=/usr/local/bin:/usr/bin:/bin"), std::string::npos);  // read /proc
  EXPECT_NE(dump.find("\nPIDS "), std::string::npos) << r->stderr_text;
  EXPECT_EQ(dump.find("FILES 0\n"), std::string::npos) << "walked no file";
  EXPECT_EQ(dump.find(secret_), std::string::npos) << "the secret is visible in the sandbox";
}

// The documented price of --unsafe-no-sandbox: the command sees arle's whole environment.
TEST(SandboxUnsafeTest, ExposesTheEnvironmentAsDocumented) {
  TempDir dir;
  SandboxOptions options;
  options.workdir = dir.path();
  options.unsafe_no_sandbox = true;
  ASSERT_EQ(::setenv("ARLE_TEST_SECRET_TOKEN", "unsafe-visible", 1), 0);
  auto r = RunTool("shell", "printenv ARLE_TEST_SECRET_TOKEN", options);
  ::unsetenv("ARLE_TEST_SECRET_TOKEN");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_text, "unsafe-visible\n");
}

// The unsafe mode needs no namespaces: it runs where the sandbox cannot, in the workdir, with the
// same limits.
TEST(SandboxUnsafeTest, RunsInTheWorkdirWithTheLimits) {
  TempDir dir;
  SandboxOptions options;
  options.workdir = dir.path();
  options.unsafe_no_sandbox = true;
  auto r = RunSandboxed({"bash", "-c", "pwd"}, options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->sandboxed);
  EXPECT_EQ(r->stdout_text, fs::canonical(dir.path()).string() + "\n");
  const std::string marker = UniqueMarker("unsafe_sleep");
  options.limits.wall_seconds = 0.5;
  r = RunSandboxed({"bash", "-c", ": " + marker + "; sleep 102 & sleep 102"}, options);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->limit, LimitHit::kWallTime);
  EXPECT_TRUE(NoneLeft(marker));
  EXPECT_EQ(CountProcessesWith("sleep 102"), 0);
}

TEST(SandboxArgumentsTest, BadRequestsAreErrors) {
  SandboxOptions options;
  options.workdir = "/nonexistent/arle-workdir";
  auto r = RunSandboxed({"true"}, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  TempDir dir;
  options.workdir = dir.path();
  EXPECT_EQ(RunSandboxed({}, options).status().code(), core::StatusCode::kInvalidArgument);
  options.limits.wall_seconds = 0;
  EXPECT_EQ(RunSandboxed({"true"}, options).status().code(), core::StatusCode::kInvalidArgument);
  options.limits.wall_seconds = 5;
  options.unsafe_no_sandbox = true;
  r = RunSandboxed({"/nonexistent/arle-program"}, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kIoError);
}

}  // namespace
}  // namespace arle::agent
