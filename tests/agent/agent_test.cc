// The agent loop on a scripted model: a test double of AgentModel that replays given outputs in
// given pieces (tool calls split inside tags, JSON and characters; malformed calls; reasoning),
// and a recording tool runner. Checks the messages the loop appends, what the model is shown on
// each call, the order tools run in, and how turns end.
#include "arle/agent/agent.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "arle/agent/tools.h"

namespace arle::agent {
namespace {

// One scripted generation: its text in pieces, and how it ends.
struct ScriptedOutput {
  std::vector<std::string> pieces;
  std::string finish_reason = "stop";
};

class ScriptedModel : public AgentModel {
 public:
  explicit ScriptedModel(std::vector<ScriptedOutput> outputs) : outputs_(std::move(outputs)) {}

  core::StatusOr<std::string> Render(const std::vector<AgentMessage>& messages,
                                     const std::string& tools_json) override {
    if (fail_render_) return core::InvalidArgumentError("template refused");
    rendered_.push_back(messages);
    tools_seen_.push_back(tools_json);
    return "prompt #" + std::to_string(rendered_.size());
  }

  core::StatusOr<Completion> Generate(const std::string& prompt,
                                      const std::function<bool(std::string_view)>& on_text) override {
    if (next_ >= outputs_.size()) return core::InternalError("script exhausted");
    const ScriptedOutput& out = outputs_[next_++];
    Completion c;
    c.prompt_tokens = {static_cast<int32_t>(prompt.size())};
    c.finish_reason = out.finish_reason;
    for (const std::string& piece : out.pieces) {
      c.tokens.push_back(static_cast<int32_t>(piece.size()));
      if (!on_text(piece)) {
        c.finish_reason = "abort";
        break;
      }
    }
    return c;
  }

  std::string ParserFamily() const override { return "qwen3"; }

  std::vector<std::vector<AgentMessage>> rendered_;  // the messages of each Render
  std::vector<std::string> tools_seen_;
  bool fail_render_ = false;

 private:
  std::vector<ScriptedOutput> outputs_;
  size_t next_ = 0;
};

// Records the calls and answers "ran <tool>: <code>" with exit code 0.
struct RecordingTools {
  std::vector<std::pair<std::string, std::string>> calls;
  ToolRunner runner() {
    return [this](std::string_view tool, std::string_view code) -> core::StatusOr<SandboxResult> {
      calls.emplace_back(tool, code);
      SandboxResult r;
      r.stdout_text = "ran " + std::string(tool) + ": " + std::string(code) + "\n";
      r.stdout_bytes = static_cast<int64_t>(r.stdout_text.size());
      r.sandboxed = true;
      return r;
    };
  }
};

// A tool call's text, split into pieces of `n` bytes.
std::vector<std::string> Split(const std::string& text, size_t n) {
  std::vector<std::string> pieces;
  for (size_t i = 0; i < text.size(); i += n) pieces.push_back(text.substr(i, n));
  return pieces;
}

const std::string kShellCall =
    "<tool_call>\n{\"name\": \"shell\", \"arguments\": {\"code\": \"echo h\u00e9\"}}\n</tool_call>";

TEST(AgentTest, AnswerWithoutToolsEndsTheTurn) {
  ScriptedModel model({{{"Hel", "lo!"}}});
  RecordingTools tools;
  Agent agent(model, tools.runner(), {});
  std::string streamed;
  AgentEvents events;
  events.on_delta = [&](const runtime::OutputDelta& d) { streamed += d.text; };
  auto r = agent.RunTurn("hi", events);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->finish, "stop");
  EXPECT_EQ(r->content, "Hello!");
  EXPECT_EQ(streamed, "Hello!");
  EXPECT_EQ(r->completions.size(), 1u);
  EXPECT_TRUE(tools.calls.empty());
  ASSERT_EQ(agent.messages().size(), 2u);
  EXPECT_EQ(agent.messages()[0].role, "user");
  EXPECT_EQ(agent.messages()[1].role, "assistant");
  EXPECT_EQ(agent.messages()[1].content, "Hello!");
  EXPECT_NE(model.tools_seen_[0].find("\"shell\""), std::string::npos);  // tools described
}

TEST(AgentTest, ToolCallSplitAnywhereRunsAndItsResultIsShownToTheModel) {
  // Pieces of 1, 2, 3 and 7 bytes: tags, JSON and the two-byte character all get split.
  for (const size_t n : {1, 2, 3, 7}) {
    SCOPED_TRACE(n);
    std::vector<std::string> first = {"<think>list it</think>\n\n"};
    for (const std::string& p : Split(kShellCall, n)) first.push_back(p);
    ScriptedModel model({{first}, {{"It printed h\u00e9."}}});
    RecordingTools tools;
    Agent agent(model, tools.runner(), {});
    std::vector<std::string> started;
    AgentEvents events;
    events.on_tool_start = [&](const runtime::ToolCall& c) { started.push_back(c.name); };
    auto r = agent.RunTurn("what does echo print?", events);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->finish, "stop");
    EXPECT_EQ(r->content, "It printed h\u00e9.");
    ASSERT_EQ(tools.calls.size(), 1u);
    EXPECT_EQ(tools.calls[0].first, "shell");
    EXPECT_EQ(tools.calls[0].second, "echo h\u00e9");
    EXPECT_EQ(started, std::vector<std::string>{"shell"});
    // user, assistant (reasoning + call), tool, assistant.
    const auto& m = agent.messages();
    ASSERT_EQ(m.size(), 4u);
    EXPECT_EQ(m[1].reasoning, "list it");
    ASSERT_EQ(m[1].tool_calls.size(), 1u);
    EXPECT_EQ(m[1].tool_calls[0].name, "shell");
    EXPECT_EQ(m[2].role, "tool");
    EXPECT_EQ(m[2].tool_call_id, m[1].tool_calls[0].id);
    EXPECT_EQ(m[2].name, "shell");
    EXPECT_EQ(m[2].content, "exit_code: 0\n<stdout>\nran shell: echo h\u00e9\n</stdout>\n<stderr>\n</stderr>\n");
    // The second model call saw the tool result.
    ASSERT_EQ(model.rendered_.size(), 2u);
    EXPECT_EQ(model.rendered_[1].size(), 3u);
    EXPECT_EQ(model.rendered_[1][2], m[2]);
    EXPECT_EQ(r->completions.size(), 2u);
  }
}

TEST(AgentTest, SeveralCallsInOneReplyRunInOrder) {
  const std::string two =
      "<tool_call>\n{\"name\": \"python\", \"arguments\": {\"code\": \"print(1)\"}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"shell\", \"arguments\": {\"code\": \"ls\"}}\n</tool_call>";
  ScriptedModel model({{Split(two, 5)}, {{"done"}}});
  RecordingTools tools;
  Agent agent(model, tools.runner(), {});
  auto r = agent.RunTurn("go", {});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(tools.calls.size(), 2u);
  EXPECT_EQ(tools.calls[0], (std::pair<std::string, std::string>{"python", "print(1)"}));
  EXPECT_EQ(tools.calls[1], (std::pair<std::string, std::string>{"shell", "ls"}));
  const auto& m = agent.messages();
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[2].tool_call_id, m[1].tool_calls[0].id);
  EXPECT_EQ(m[3].tool_call_id, m[1].tool_calls[1].id);
  EXPECT_NE(m[1].tool_calls[0].id, m[1].tool_calls[1].id);
}

TEST(AgentTest, MalformedToolCallIsTextNotACall) {
  ScriptedModel model({{{"<tool_call>\n{\"name\": \"shell\", \"argu", "ments\": {\"code\": }\n</tool_call>"}}});
  RecordingTools tools;
  Agent agent(model, tools.runner(), {});
  auto r = agent.RunTurn("go", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, "stop");
  EXPECT_TRUE(tools.calls.empty());
  EXPECT_FALSE(r->problems.empty());
  EXPECT_NE(r->content.find("\"shell\""), std::string::npos);  // passed through as content
}

TEST(AgentTest, BadArgumentsAndUnknownToolsAreReportedToTheModel) {
  const std::string bad =
      "<tool_call>\n{\"name\": \"shell\", \"arguments\": {\"cmd\": \"ls\"}}\n</tool_call>"
      "<tool_call>\n{\"name\": \"browser\", \"arguments\": {\"code\": \"x\"}}\n</tool_call>";
  ScriptedModel model({{{bad}}, {{"sorry"}}});
  RecordingTools tools;
  Agent agent(model, tools.runner(), {});
  auto r = agent.RunTurn("go", {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(tools.calls.empty());
  ASSERT_EQ(r->tools.size(), 2u);
  EXPECT_FALSE(r->tools[0].ran);
  EXPECT_NE(r->tools[0].result_text.find("{\"code\": string}"), std::string::npos);
  EXPECT_NE(r->tools[1].result_text.find("unknown tool 'browser'"), std::string::npos);
  EXPECT_EQ(agent.messages()[2].content, r->tools[0].result_text);
  EXPECT_EQ(r->finish, "stop");
}

TEST(AgentTest, StopsAtMaxTurns) {
  std::vector<ScriptedOutput> outputs(5, ScriptedOutput{{kShellCall}});
  ScriptedModel model(outputs);
  RecordingTools tools;
  AgentOptions options;
  options.max_turns = 3;
  Agent agent(model, tools.runner(), options);
  auto r = agent.RunTurn("loop", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, "max_turns");
  EXPECT_EQ(r->completions.size(), 3u);
  EXPECT_EQ(tools.calls.size(), 3u);
}

TEST(AgentTest, CancellingStopsGenerationAndTools) {
  ScriptedModel model({{{"a", "b", "c", "d"}}});
  RecordingTools tools;
  Agent agent(model, tools.runner(), {});
  int pieces = 0;
  AgentEvents events;
  events.on_delta = [&](const runtime::OutputDelta&) { ++pieces; };
  events.cancelled = [&] { return pieces >= 2; };
  auto r = agent.RunTurn("go", events);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, "cancelled");
  EXPECT_EQ(r->content, "ab");
  EXPECT_EQ(r->completions[0].finish_reason, "abort");
}

TEST(AgentTest, CancelBetweenCallsAnswersEveryCall) {
  const std::string two = kShellCall + kShellCall;
  ScriptedModel model({{{two}}});
  RecordingTools tools;
  Agent agent(model, tools.runner(), {});
  bool cancel = false;
  AgentEvents events;
  events.on_tool_end = [&](const ToolExchange&) { cancel = true; };
  events.cancelled = [&] { return cancel; };
  auto r = agent.RunTurn("go", events);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, "cancelled");
  EXPECT_EQ(tools.calls.size(), 1u);
  ASSERT_EQ(agent.messages().size(), 4u);  // user, assistant, tool, tool
  EXPECT_EQ(agent.messages()[3].content, "error: cancelled by the user");
}

TEST(AgentTest, NoToolsMeansNoneDescribedAndNoneRun) {
  ScriptedModel model({{{kShellCall}}});
  RecordingTools tools;
  AgentOptions options;
  options.tools = false;
  Agent agent(model, tools.runner(), options);
  auto r = agent.RunTurn("go", {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, "stop");
  EXPECT_TRUE(tools.calls.empty());
  EXPECT_EQ(model.tools_seen_[0], "");
  EXPECT_TRUE(agent.messages()[1].tool_calls.empty());
}

TEST(AgentTest, ErrorsLeaveTheConversationAsItWas) {
  ScriptedModel model({{{"first"}}});
  RecordingTools tools;
  Agent agent(model, tools.runner(), {});
  agent.Reset("be brief");
  ASSERT_TRUE(agent.RunTurn("one", {}).ok());
  const std::vector<AgentMessage> before = agent.messages();
  ASSERT_EQ(before.size(), 3u);
  EXPECT_FALSE(agent.RunTurn("two", {}).ok());  // script exhausted
  EXPECT_EQ(agent.messages(), before);
  model.fail_render_ = true;
  EXPECT_EQ(agent.RunTurn("three", {}).status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(agent.messages(), before);
}

// Ctrl-C while a real tool runs: the REPL's flag reaches the sandbox, which kills the tool; the
// turn ends as cancelled with the call answered.
TEST(AgentTest, CancelStopsARunningToolInTheSandbox) {
  const SandboxState& state = ProbeSandbox();
  if (!state.available) GTEST_SKIP() << "sandbox unavailable here: " << state.detail;
  ScriptedModel model({{{"<tool_call>\n{\"name\": \"shell\", \"arguments\": {\"code\": "
                         "\"sleep 105\"}}\n</tool_call>"}}});
  std::atomic<bool> interrupted{false};
  SandboxOptions sandbox;
  sandbox.workdir = "/tmp";
  sandbox.cancel = &interrupted;
  Agent agent(
      model,
      [&](std::string_view tool, std::string_view code) { return RunTool(tool, code, sandbox); },
      {});
  AgentEvents events;
  events.cancelled = [&] { return interrupted.load(); };
  std::thread canceller;
  events.on_tool_start = [&](const runtime::ToolCall&) {
    canceller = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      interrupted = true;  // what the REPL's SIGINT handler does
    });
  };
  const auto start = std::chrono::steady_clock::now();
  auto r = agent.RunTurn("wait", events);
  if (canceller.joinable()) canceller.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10);
  EXPECT_EQ(r->finish, "cancelled");
  ASSERT_EQ(r->tools.size(), 1u);
  EXPECT_TRUE(r->tools[0].ran);
  EXPECT_EQ(r->tools[0].run.limit, LimitHit::kCancelled);
  EXPECT_NE(agent.messages().back().content.find("killed: cancelled by the user"),
            std::string::npos);
}

TEST(AgentMessagesTest, JsonRoundTripAndErrors) {
  std::vector<AgentMessage> m = {
      {.role = "system", .content = "s"},
      {.role = "user", .content = "u \u00e9"},
      {.role = "assistant", .content = "", .reasoning = "r",
       .tool_calls = {{.id = "call_1_0", .name = "shell", .arguments = "{\"code\":\"ls\"}"}}},
      {.role = "tool", .content = "exit_code: 0\n", .tool_call_id = "call_1_0", .name = "shell"},
  };
  auto back = MessagesFromJson(MessagesToJson(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, m);
  EXPECT_FALSE(MessagesFromJson("{").ok());
  EXPECT_FALSE(MessagesFromJson("[{\"role\": \"wizard\", \"content\": \"x\"}]").ok());
  EXPECT_FALSE(MessagesFromJson("[{\"role\": \"user\", \"content\": 3}]").ok());
  EXPECT_FALSE(MessagesFromJson("[{\"role\": \"assistant\", \"tool_calls\": [{\"id\": 1}]}]").ok());
}

}  // namespace
}  // namespace arle::agent
