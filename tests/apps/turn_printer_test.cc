// TurnPrinter, as `arle run` and the REPL show a turn: streamed content, reasoning on the side,
// and each tool call on one line that its result completes. Driven by the agent loop over a
// scripted model (a random model never calls a tool).
#include "apps/arle/run_agent.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace arle::app {
namespace {

class ScriptedModel : public agent::AgentModel {
 public:
  explicit ScriptedModel(std::vector<std::vector<std::string>> outputs)
      : outputs_(std::move(outputs)) {}
  core::StatusOr<std::string> Render(const std::vector<agent::AgentMessage>&,
                                     const std::string&) override {
    return std::string("prompt");
  }
  core::StatusOr<agent::Completion> Generate(
      const std::string&, const std::function<bool(std::string_view)>& on_text) override {
    agent::Completion c;
    c.finish_reason = "stop";
    for (const std::string& piece : outputs_.at(next_)) on_text(piece);
    ++next_;
    return c;
  }
  std::string ParserFamily() const override { return "qwen3"; }

 private:
  std::vector<std::vector<std::string>> outputs_;
  size_t next_ = 0;
};

std::string Contents(FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[256];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) s.append(buf, n);
  return s;
}

TEST(TurnPrinterTest, ContentReasoningAndOneLinePerToolCall) {
  ScriptedModel model({{"<think>check", " the files</think>\n\n",
                        "<tool_call>\n{\"name\": \"shell\", \"arguments\": {\"code\": "
                        "\"ls\\nwc -l x\"}}\n</tool_call>"},
                       {"There ", "are 3."}});
  agent::Agent agent(
      model,
      [](std::string_view, std::string_view) -> core::StatusOr<agent::SandboxResult> {
        agent::SandboxResult r;
        r.exit_code = 0;
        r.stdout_text = "a\nb\nc\n";
        r.stdout_bytes = 6;
        r.wall_seconds = 0.25;
        return r;
      },
      {});
  FILE* out = std::tmpfile();
  FILE* side = std::tmpfile();
  ASSERT_NE(out, nullptr);
  ASSERT_NE(side, nullptr);
  TurnPrinter printer(out, side, /*dim=*/false);
  auto r = agent.RunTurn("how many files?", printer.Events());
  printer.Finish();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Contents(out), "There are 3.\n");
  EXPECT_EQ(Contents(side),
            "check the files\n"
            "[shell] ls ... -> exit 0, 6 B stdout, 0 B stderr, 0.25 s\n");
  EXPECT_EQ(TurnSummary(*r).substr(0, 36), "2 model call(s), 1 tool call(s), pro");
  std::fclose(out);
  std::fclose(side);
}

}  // namespace
}  // namespace arle::app
