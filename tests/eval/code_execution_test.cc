// eval/code_execution: HumanEval programs run as the harness runs them, in the sandbox and in the
// unsafe mode: HumanEval/0's canonical solution passes, a wrong one fails its assert, and programs
// that loop, fork, allocate or write outside /work come back as failures in time. The cases that
// need bubblewrap's namespaces skip, saying why, where the kernel refuses them; the unsafe mode
// (the same limits, no isolation) runs everywhere, but never the cases that write outside /work.
#include "arle/eval/code_execution.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "arle/agent/sandbox.h"
#include "arle/core/check.h"
#include "arle/core/file_util.h"

namespace arle::eval {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// HumanEval/0 (openai/human-eval, MIT licence: tests/data/eval/extraction/HUMANEVAL_LICENSE).
const Json& HumanEval0() {
  static const Json* j = [] {
    auto text =
        core::ReadFile(std::string(ARLE_TEST_DATA_DIR) + "/eval/extraction/humaneval_0.json");
    ARLE_CHECK(text.ok()) << text.status().ToString();
    return new Json(Json::parse(*text));
  }();
  return *j;
}

std::string Program(const std::string& completion) {
  const Json& p = HumanEval0();
  return HumanEvalProgram(p.at("prompt").get<std::string>(), completion,
                          p.at("test").get<std::string>(), p.at("entry_point").get<std::string>());
}

// Host processes whose command line contains `marker`.
int CountProcessesWith(const std::string& marker) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int fd = ::open((entry.path() / "cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[4096];
    const ssize_t len = ::read(fd, buf, sizeof(buf));
    ::close(fd);
    if (len <= 0) continue;
    std::string cmdline(buf, static_cast<size_t>(len));
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find(marker) != std::string::npos) ++n;
  }
  return n;
}

bool NoneLeft(const std::string& marker) {
  for (int i = 0; i < 100; ++i) {
    if (CountProcessesWith(marker) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Runs each case sandboxed (false) and in the unsafe mode (true).
class CodeExecutionTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    options_.unsafe_no_sandbox = GetParam();
    if (!options_.unsafe_no_sandbox && !agent::ProbeSandbox().available) {
      GTEST_SKIP() << "sandbox unavailable here (" << agent::ProbeSandbox().detail
                   << "); the unsafe-mode cases still run";
    }
  }
  CodeRunResult Run(const std::string& program) {
    auto r = RunPythonProgram(program, options_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : CodeRunResult{};
  }
  CodeRunOptions options_;
};

INSTANTIATE_TEST_SUITE_P(Modes, CodeExecutionTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Unsafe" : "Sandboxed"; });

TEST_P(CodeExecutionTest, CanonicalSolutionPasses) {
  const CodeRunResult r = Run(Program(HumanEval0().at("canonical_solution").get<std::string>()));
  EXPECT_TRUE(r.passed) << r.outcome;
  EXPECT_EQ(r.outcome, "passed");
}

TEST_P(CodeExecutionTest, WrongSolutionFailsItsAssert) {
  const CodeRunResult r = Run(Program("    return False\n"));
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.outcome, "failed: AssertionError");
}

TEST_P(CodeExecutionTest, ErrorsNameTheException) {
  CodeRunResult r = Run(Program("    return undefined_name\n"));
  EXPECT_EQ(r.outcome, "failed: NameError: name 'undefined_name' is not defined");
  r = Run(Program("    return (\n"));
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(r.outcome.starts_with("failed: SyntaxError")) << r.outcome;
}

TEST_P(CodeExecutionTest, RunsAsTheHarnessExecsIt) {
  // exec() with fresh globals: __name__ is "builtins", so a main block does not run.
  CodeRunResult r = Run(HumanEvalProgram(
      "def f():\n", "    return 1\nif __name__ == '__main__':\n    raise SystemExit(3)\n",
      "def check(c):\n    assert c() == 1\n", "f"));
  EXPECT_TRUE(r.passed) << r.outcome;
  // Output is swallowed, even a lot of it, and cannot pose as the verdict.
  r =
      Run("import os\nfor _ in range(100000): print('passed')\nos.write(1, b'passed\\n')\n"
          "raise ValueError('no')\n");
  EXPECT_EQ(r.outcome, "failed: ValueError: no");
  // Leaving early is no pass: sys.exit raises SystemExit, os._exit ends without a verdict.
  r = Run("import sys\nsys.exit(0)\n");
  EXPECT_EQ(r.outcome, "failed: SystemExit: 0");
  r = Run("import os\nos._exit(0)\n");
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.outcome, "failed: exit code 0");
  // A thread left running does not hold the verdict back.
  r = Run("import threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()\n");
  EXPECT_TRUE(r.passed) << r.outcome;
  EXPECT_LT(r.wall_seconds, options_.timeout_seconds);
  // stdin is not readable.
  r = Run("input()\n");
  EXPECT_EQ(r.outcome, "failed: OSError");
}

TEST_P(CodeExecutionTest, ReliabilityGuardIsApplied) {
  CodeRunResult r = Run("import os\nos.system('true')\n");
  EXPECT_EQ(r.outcome, "failed: TypeError: 'NoneType' object is not callable");
  r = Run("import subprocess\nsubprocess.run(['true'])\n");
  EXPECT_EQ(r.outcome, "failed: TypeError: 'NoneType' object is not callable");
  r = Run("import resource\n");
  EXPECT_TRUE(r.outcome.starts_with("failed: ModuleNotFoundError")) << r.outcome;
  // Writing inside /work is allowed.
  r = Run("open('result.txt', 'w').write('x')\nassert open('result.txt').read() == 'x'\n");
  EXPECT_TRUE(r.passed) << r.outcome;
}

TEST_P(CodeExecutionTest, InfiniteLoopTimesOut) {
  options_.timeout_seconds = 1.0;
  CodeRunResult r = Run(Program("    while True:\n        pass\n"));
  EXPECT_EQ(r.outcome, "timed out");
  EXPECT_GE(r.wall_seconds, 1.0);
  EXPECT_LT(r.wall_seconds, 2.5);
  // One that swallows the timer's exception is killed with its tree at timeout + 1 s.
  r =
      Run("while True:\n    try:\n        while True:\n            pass\n"
          "    except BaseException:\n        pass\n");
  EXPECT_EQ(r.outcome, "timed out");
  EXPECT_GE(r.wall_seconds, 2.0);
  EXPECT_LT(r.wall_seconds, 3.5);
}

TEST_P(CodeExecutionTest, ForkIsRefusedAndForkBombsAreContained) {
  CodeRunResult r = Run(Program("    import os\n    while True:\n        os.fork()\n"));
  EXPECT_EQ(r.outcome, "failed: TypeError: 'NoneType' object is not callable");
  // Sleepers forked (posix.fork gets past the guard) beyond the limit are all killed. (The
  // kernel's process limit may refuse a fork first: that ends it as a failure too.)
  const std::string marker = "9" + std::to_string(::getpid()) + (GetParam() ? "1" : "2");
  r =
      Run("import os, posix, time\nfor _ in range(30):\n    if posix.fork() == 0:\n"
          "        os.execv('/usr/bin/sleep', ['sleep', '" +
          marker + "'])\ntime.sleep(60)\n");
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(r.outcome == "sandbox limit: processes" ||
              r.outcome.starts_with("failed: BlockingIOError"))
      << r.outcome;
  EXPECT_LT(r.wall_seconds, 5.0);
  EXPECT_TRUE(NoneLeft("sleep " + marker));
  if (GetParam()) return;  // an unbounded fork bomb only where the kernel's limit holds too
  options_.timeout_seconds = 5.0;
  r = Run("import posix\nwhile True:\n    posix.fork()\n");
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(r.outcome == "sandbox limit: processes" || r.outcome.starts_with("failed: "))
      << r.outcome;
  EXPECT_LT(r.wall_seconds, 6.0 + 5.0);  // the kill of a large tree takes a while on 2 cores
}

TEST_P(CodeExecutionTest, MemoryIsLimited) {
  options_.memory_bytes = 256 << 20;
  CodeRunResult r = Run("x = bytearray(1 << 30)\n");
  EXPECT_EQ(r.outcome, "failed: MemoryError");
  r = Run("x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n");
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(r.outcome == "failed: MemoryError" || r.outcome == "sandbox limit: memory")
      << r.outcome;
}

// Only sandboxed: in the unsafe mode these writes would reach the host.
TEST(CodeExecutionSandboxTest, WritesOutsideWorkFail) {
  if (!agent::ProbeSandbox().available) {
    GTEST_SKIP() << "sandbox unavailable here: " << agent::ProbeSandbox().detail;
  }
  const std::string name = "arle_code_execution_test_" + std::to_string(::getpid());
  for (const std::string& path : {"/etc/" + name, "../" + name, "/" + name, "/usr/" + name}) {
    auto r = RunPythonProgram("open('" + path + "', 'w').write('x')\n", CodeRunOptions());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_FALSE(r->passed) << path;
    EXPECT_TRUE(r->outcome.starts_with("failed: OSError") ||
                r->outcome.starts_with("failed: PermissionError") ||
                r->outcome.starts_with("failed: FileNotFoundError"))
        << path << ": " << r->outcome;
  }
  EXPECT_FALSE(fs::exists("/etc/" + name));
  EXPECT_FALSE(fs::exists("/" + name));
  EXPECT_FALSE(fs::exists("/usr/" + name));
  // /tmp is the sandbox's own: the write succeeds there and never reaches the host's.
  const std::string host_tmp = (fs::temp_directory_path() / name).string();
  auto r = RunPythonProgram("open('/tmp/" + name + "', 'w').write('x')\n", CodeRunOptions());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->passed) << r->outcome;
  EXPECT_FALSE(fs::exists(host_tmp));
}

TEST(CodeExecutionOptionsTest, BadOptionsAreErrors) {
  CodeRunOptions options;
  options.unsafe_no_sandbox = true;
  options.timeout_seconds = 0;
  auto r = RunPythonProgram("pass\n", options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().field(), "timeout_seconds");
  options.timeout_seconds = std::nan("");
  EXPECT_EQ(RunPythonProgram("pass\n", options).status().field(), "timeout_seconds");
  options.timeout_seconds = 1;
  options.memory_bytes = 1 << 20;
  EXPECT_EQ(RunPythonProgram("pass\n", options).status().field(), "memory_bytes");
  options.memory_bytes = 256 << 20;
  options.python = "/nonexistent/python3";
  EXPECT_EQ(RunPythonProgram("pass\n", options).status().code(),
            core::StatusCode::kFailedPrecondition);
}

TEST(HumanEvalProgramTest, IsWhatTheHarnessRuns) {
  EXPECT_EQ(HumanEvalProgram("def f():\n", "    return 1\n", "def check(c):\n    pass\n", "f"),
            "def f():\n    return 1\n\ndef check(c):\n    pass\n\ncheck(f)");
}

}  // namespace
}  // namespace arle::eval
