// Streaming output parsers: split generated text into content, reasoning (<think>…</think>) and
// OpenAI tool calls (<tool_call>{json}</tool_call>), chosen by model family through a registry.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::runtime {

// One streaming event. Deltas come in generation order; concatenating the kContent texts gives
// the final content, the kReasoning texts the final reasoning.
enum class OutputDeltaKind {
  kContent,            // text: more content
  kReasoning,          // text: more reasoning_content
  kToolCallStart,      // tool_index, id, name: a new tool call begins (OpenAI's first delta)
  kToolCallArguments,  // tool_index, text: more of the call's arguments JSON string
  kToolCallEnd,        // tool_index: the call is complete
};

std::string_view OutputDeltaKindName(OutputDeltaKind kind);

struct OutputDelta {
  OutputDeltaKind kind = OutputDeltaKind::kContent;
  std::string text;     // kContent, kReasoning, kToolCallArguments
  int tool_index = -1;  // kToolCall*: 0-based position of the call in this response
  std::string id;       // kToolCallStart: "call_<n>", deterministic per request
  std::string name;     // kToolCallStart: the function name

  bool operator==(const OutputDelta&) const = default;
};

// An OpenAI tool call: {"id", "type": "function", "function": {"name", "arguments"}}.
struct ToolCall {
  std::string id;
  std::string type = "function";
  std::string name;
  std::string arguments;  // a JSON text, compact (no spaces), as the OpenAI API returns it

  bool operator==(const ToolCall&) const = default;
};

// The whole parsed response (what a non-streaming response returns).
struct ParsedOutput {
  std::string content;
  std::string reasoning;
  std::vector<ToolCall> tool_calls;
  // Set when the output was malformed (an unclosed tag, invalid JSON in a tool call, a tool call
  // without a name) and the offending text was passed through as plain content (or, for an
  // unclosed <think>, left as reasoning). `problems` says what happened, one line each.
  bool malformed = false;
  std::vector<std::string> problems;
};

// Applies one delta to `out` (content/reasoning appended, tool calls built up).
void ApplyOutputDelta(const OutputDelta& delta, ParsedOutput* out);

struct OutputParserOptions {
  // The prompt already opened the reasoning block (Qwen3 thinking templates end the generation
  // prompt with "<think>\n"): the output starts inside reasoning until "</think>". If the model
  // still begins with "<think>" (only newlines before it), that redundant tag is dropped.
  // PromptEndsInsideReasoning() computes this from the rendered prompt.
  bool start_in_reasoning = false;
  // Tool call ids are `<call_id_prefix><n>` with n = 0, 1, ... per parser (per request).
  std::string call_id_prefix = "call_";
};

// A streaming parser for one response. Feed() it text pieces in order (any split, even inside a
// tag or a UTF-8 character), then Flush() once at the end. It never emits part of a tag: a
// suffix that could still become a tag is held back until the next piece decides, and an
// incomplete trailing UTF-8 sequence is held back too, so every delta text is whole characters
// when the whole output is valid UTF-8. Malformed input never throws or crashes.
//
// Thread safety: one thread at a time.
class OutputParser {
 public:
  virtual ~OutputParser() = default;

  // Appends the deltas that `piece` makes final to `*deltas` (possibly none).
  // REQUIRES: Flush() has not been called.
  virtual void Feed(std::string_view piece, std::vector<OutputDelta>* deltas) = 0;
  // End of output: emits everything still held back; unclosed blocks degrade (see ParsedOutput).
  // REQUIRES: called once.
  virtual void Flush(std::vector<OutputDelta>* deltas) = 0;

  // The result so far: every delta emitted, applied in order, plus the malformed flag.
  const ParsedOutput& result() const { return result_; }

 protected:
  // Subclasses emit through this so result() stays in step with the deltas.
  void Emit(OutputDelta delta, std::vector<OutputDelta>* deltas);
  void MarkMalformed(std::string problem);

 private:
  ParsedOutput result_;
};

// Convenience: parses a whole output at once (Feed + Flush).
ParsedOutput ParseOutput(OutputParser& parser, std::string_view text);

// A text/tag parser configured by tag strings. Qwen3 (and Qwen2.5, QwQ, Hermes) use
// <think>/</think> and <tool_call>/</tool_call> with a JSON body {"name": ..., "arguments": ...}.
// Newlines next to tags are the model's formatting, not text: reasoning is stripped of newlines
// at both ends, content of newlines at the start, after </think>, before <think> and at the end;
// a tool-call block takes the newlines after it with it, so "<think>\nR\n</think>\n\nA\n
// <tool_call>…</tool_call>\n<tool_call>…</tool_call>\nB" gives reasoning "R", content "A\nB".
// Tags are recognised in content (<think>, <tool_call>) and reasoning (</think>) only; inside
// reasoning "<tool_call>" is text. Tool-call JSON is parsed when its closing tag arrives, so a
// call streams as start, arguments (whole) and end deltas together.
struct TaggedParserConfig {
  std::string think_open = "<think>";    // empty: no reasoning parsing
  std::string think_close = "</think>";
  std::string tool_open = "<tool_call>";  // empty: no tool-call parsing
  std::string tool_close = "</tool_call>";
};

// Returns true when `prompt` (the rendered chat prompt) leaves a reasoning block open: its last
// opening tag comes after its last closing tag. Use it to set start_in_reasoning.
bool PromptEndsInsideReasoning(std::string_view prompt, const TaggedParserConfig& config = {});

std::unique_ptr<OutputParser> MakeTaggedOutputParser(TaggedParserConfig config,
                                                     OutputParserOptions options);

// Maps model families to parser factories. Default() knows:
//   "qwen3", "qwen2", "qwen", "hermes": <think> reasoning + <tool_call> JSON tool calls;
//   "plain": everything is content.
// Other families (e.g. a Llama 3 JSON tool-call parser) register here without engine changes.
// Thread safety: Register and Create may be called from any thread.
class OutputParserRegistry {
 public:
  using Factory = std::function<std::unique_ptr<OutputParser>(const OutputParserOptions&)>;

  static OutputParserRegistry& Default();

  // Returns InvalidArgument when `family` is empty or already registered.
  core::Status Register(std::string family, Factory factory);
  // Returns NotFound (listing the known families) when `family` is unknown. Case-insensitive.
  core::StatusOr<std::unique_ptr<OutputParser>> Create(std::string_view family,
                                                       const OutputParserOptions& options) const;
  std::vector<std::string> Families() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  OutputParserRegistry();
};

// Shorthand for OutputParserRegistry::Default().Create(family, options).
core::StatusOr<std::unique_ptr<OutputParser>> CreateOutputParser(
    std::string_view family, const OutputParserOptions& options = {});

}  // namespace arle::runtime
