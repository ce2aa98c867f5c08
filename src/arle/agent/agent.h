// The agent loop: each turn renders the conversation (tools described in it), streams a
// generation, parses reasoning and tool calls as they arrive, runs the tool calls in order,
// appends their results as tool messages, and generates again until the model answers without a
// tool call or the turn reaches max_turns model calls.
//
// The model side is an interface so the loop runs on the in-process engine (EngineAgentModel,
// engine_model.h) and, in tests, on a scripted double that replays given outputs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "arle/agent/sandbox.h"
#include "arle/core/status.h"
#include "arle/runtime/output_parser.h"

namespace arle::agent {

// One message of the conversation, in the OpenAI chat format's terms.
// (Every member has a default initializer so designated initializers may leave any out.)
struct AgentMessage {
  std::string role{};  // "system", "user", "assistant" or "tool"
  std::string content{};
  std::string reasoning{};                      // assistant: reasoning_content
  std::vector<runtime::ToolCall> tool_calls{};  // assistant
  std::string tool_call_id{};                   // tool: the call it answers
  std::string name{};                           // tool: the tool's name
  bool operator==(const AgentMessage&) const = default;
};

// The conversation as an OpenAI "messages" JSON array (assistant tool_calls with their arguments
// as a JSON string, reasoning as reasoning_content), and back. FromJson: InvalidArgument naming
// the first malformed message.
std::string MessagesToJson(const std::vector<AgentMessage>& messages);
core::StatusOr<std::vector<AgentMessage>> MessagesFromJson(std::string_view json);

// What one generation produced, for usage, timings and traces.
struct Completion {
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;          // generated, the stop token included when there is one
  // Per generated token, when the request asks for log-probs (runtime::SamplingParams::logprobs,
  // in its logprobs_mode): what RL trains on. Empty otherwise.
  std::vector<float> logprobs;
  int64_t n_problems = 0;  // malformed output the parser passed through as text (set by the loop)
  std::string finish_reason;            // "stop", "length", "abort", ...
  int64_t n_cached_prompt_tokens = 0;   // prompt tokens the prefix cache served
  double ttft_seconds = 0;
  double total_seconds = 0;
};

class AgentModel {
 public:
  virtual ~AgentModel() = default;
  // The prompt for `messages`, with `tools_json` (an OpenAI "tools" array; empty: no tools)
  // described as the model's template does, ending with the generation prompt.
  virtual core::StatusOr<std::string> Render(const std::vector<AgentMessage>& messages,
                                             const std::string& tools_json) = 0;
  // Generates from `prompt`, passing each new piece of text to `on_text` in order (pieces may
  // split tags and characters anywhere). `on_text` returning false cancels the generation, which
  // then ends with finish_reason "abort".
  virtual core::StatusOr<Completion> Generate(const std::string& prompt,
                                              const std::function<bool(std::string_view)>& on_text) = 0;
  // The output parser family for runtime::CreateOutputParser ("qwen3", "plain", ...).
  virtual std::string ParserFamily() const = 0;
};

// Runs one tool call: `tool` is "shell" or "python", `code` its argument. The agent's default is
// RunTool in the sandbox.
using ToolRunner = std::function<core::StatusOr<SandboxResult>(std::string_view tool,
                                                               std::string_view code)>;

// One tool call of a turn and what came of it.
struct ToolExchange {
  runtime::ToolCall call;
  int model_call = 0;       // the index in TurnResult::completions of the generation that made it
  std::string result_text;  // the tool message the model read
  bool ran = false;         // false: refused before running (bad arguments, unknown tool, ...)
  SandboxResult run;        // when ran
};

// What a UI sees while a turn runs; every member may be empty. Called on the thread that runs
// the turn.
struct AgentEvents {
  std::function<void(const runtime::OutputDelta&)> on_delta;     // streamed model output
  std::function<void(const runtime::ToolCall&)> on_tool_start;   // before a tool runs
  std::function<void(const ToolExchange&)> on_tool_end;          // after it ran (or was refused)
  // Polled between steps and passed through generation: true stops the turn (Ctrl-C).
  std::function<bool()> cancelled;
};

struct AgentOptions {
  int max_turns = 8;  // model calls per user turn at most
  bool tools = true;  // describe and run the built-in tools
  SandboxLimits limits;  // for the result text's "killed: ..." line
};

struct TurnResult {
  // "stop": the model answered without tool calls; "max_turns": it was still calling tools at
  // the limit; "cancelled"; "length": the last generation hit its token limit.
  std::string finish;
  std::string content;    // the last assistant message's content
  std::string reasoning;  // and its reasoning
  std::vector<ToolExchange> tools;
  std::vector<Completion> completions;  // one per model call, in order
  std::vector<std::string> problems;    // malformed output the parser passed through as text
};

// Token and time totals over a turn's model calls.
struct TurnUsage {
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // of those, served by the prefix cache
  int64_t completion_tokens = 0;
  double seconds = 0;       // generation time, summed over the calls
  double ttft_seconds = 0;  // of the first call
};
TurnUsage UsageOf(const TurnResult& result);

// The "code" argument of a shell/python tool call, or InvalidArgument (quoting the arguments)
// when they are not a JSON object with a string "code".
core::StatusOr<std::string> ToolCodeArgument(const runtime::ToolCall& call);

class Agent {
 public:
  // `model` must outlive the agent. `run_tool` runs the tool calls (RunTool in the sandbox for
  // the real agent).
  Agent(AgentModel& model, ToolRunner run_tool, AgentOptions options);

  // Starts the conversation over: no messages, or only a system message.
  void Reset(std::string system_prompt = {});
  // Appends a user message and runs the loop. Errors (rendering, generation failures) leave the
  // messages as they were before the call.
  core::StatusOr<TurnResult> RunTurn(std::string_view user_text, const AgentEvents& events);

  const std::vector<AgentMessage>& messages() const { return messages_; }
  void set_messages(std::vector<AgentMessage> messages) { messages_ = std::move(messages); }
  const AgentOptions& options() const { return options_; }

 private:
  // Runs one tool call and returns what the model should read.
  ToolExchange RunToolCall(const runtime::ToolCall& call);

  AgentModel& model_;
  ToolRunner run_tool_;
  AgentOptions options_;
  std::vector<AgentMessage> messages_;
};

}  // namespace arle::agent
