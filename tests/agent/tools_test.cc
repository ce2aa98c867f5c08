// The tool layer: schemas, argument checks, and the result text the model reads.
#include "arle/agent/tools.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

namespace arle::agent {
namespace {

TEST(ToolsTest, BuiltinToolsAreOpenAiFunctionsWithACodeArgument) {
  const nlohmann::json tools = nlohmann::json::parse(BuiltinToolsJson());
  ASSERT_EQ(tools.size(), 2u);
  EXPECT_EQ(tools[0]["function"]["name"], "shell");
  EXPECT_EQ(tools[1]["function"]["name"], "python");
  for (const auto& t : tools) {
    EXPECT_EQ(t["type"], "function");
    EXPECT_EQ(t["function"]["parameters"]["required"], nlohmann::json::array({"code"}));
    EXPECT_EQ(t["function"]["parameters"]["properties"]["code"]["type"], "string");
  }
}

TEST(ToolsTest, RefusesUnknownToolsAndOversizedCode) {
  SandboxOptions options;
  options.workdir = "/tmp";
  auto r = RunTool("ruby", "puts 1", options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("ruby"), std::string::npos);
  r = RunTool("shell", std::string(kMaxToolCodeBytes + 1, 'x'), options);
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  r = RunTool("shell", std::string("echo a\0b", 8), options);
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
}

TEST(ToolsTest, ResultTextTagsStreamsAndMarksCuts) {
  SandboxResult r;
  r.exit_code = 1;
  r.stdout_text = "12345";
  r.stdout_bytes = 105;
  r.stderr_text = "oops\n";
  r.stderr_bytes = 5;
  r.limit = LimitHit::kWallTime;
  SandboxLimits limits;
  limits.wall_seconds = 30;
  EXPECT_EQ(ToolResultForModel(r, limits),
            "exit_code: 1\n"
            "killed: wall time limit of 30 s\n"
            "<stdout>\n12345\n[... 100 more bytes cut]\n</stdout>\n"
            "<stderr>\noops\n</stderr>\n");
  const nlohmann::json j = nlohmann::json::parse(ToolResultJson("shell", r));
  EXPECT_EQ(j["limit"], "wall_time");
  EXPECT_EQ(j["stdout_truncated"], true);
  EXPECT_EQ(j["stderr_truncated"], false);
  EXPECT_EQ(j["stdout_bytes"], 105);
}

TEST(ToolsTest, RunsBothToolsThroughTheSandbox) {
  const SandboxState& state = ProbeSandbox();
  if (!state.available) GTEST_SKIP() << "sandbox unavailable here: " << state.detail;
  SandboxOptions options;
  options.workdir = "/tmp";
  auto py = RunTool("python", "import sys; print(sys.version_info[0]); sys.exit(4)", options);
  ASSERT_TRUE(py.ok()) << py.status().ToString();
  EXPECT_EQ(py->exit_code, 4);
  EXPECT_EQ(py->stdout_text, "3\n");
  auto sh = RunTool("shell", "echo $((6 * 7)); ls /work >/dev/null && echo ok", options);
  ASSERT_TRUE(sh.ok()) << sh.status().ToString();
  EXPECT_EQ(sh->stdout_text, "42\nok\n");
}

}  // namespace
}  // namespace arle::agent
