// Reinforcement-learning tasks: what `arle train grpo` samples prompts from and what its verifiers
// score completions against. Tasks come from JSON Lines files (arle's own format and GSM8K's) or
// from seeded synthetic generators whose train and held-out problems never overlap.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "arle/agent/agent.h"
#include "arle/core/status.h"

namespace arle::rl {

// One task. Exactly one of `prompt` and `messages` is set: a plain prompt (the trainer wraps it in
// a user turn of the model's chat template) or a whole conversation to continue.
struct RlTask {
  std::string id;      // the record's "id" (empty when it has none); generated: the problem
  std::string where;   // "FILE:LINE" of the record, for messages; empty when generated
  int64_t line = 0;    // 1-based line in the file it came from; 0 when generated
  std::string prompt;  // a plain prompt, or empty when `messages` is set
  std::vector<agent::AgentMessage> messages;  // a chat, or empty when `prompt` is set
  std::string answer;  // the reference answer's text (may be empty for a python-tests task)
  std::string tests;   // Python test code run after the completion's code; empty: none

  bool is_chat() const { return !messages.empty(); }
};

// Reads arle's RL task JSON Lines: one object per non-blank line,
//   {"prompt": "...", "answer": "42"}  or  {"messages": [{"role", "content"}, ...], "answer": ...}
// with optionally "tests" (a string of Python code) and "id" (a string or integer). "answer" is a
// string or a JSON number (kept as its JSON text: 42 -> "42", 1.5 -> "1.5"); it may be left out
// when "tests" is given. Other fields are ignored. The file may be gzip-compressed.
// Errors, each naming FILE:LINE (1-based, blank lines counted) and, through Status::field(), the
// field: NotFound/IoError when the file cannot be read; DataLoss for a line that is not JSON;
// InvalidArgument for a line that is not an object, neither or both of "prompt" and "messages", an
// empty prompt, "messages" that is not a non-empty array of {"role","content"} chat messages, a
// missing "answer" (without "tests"), or a field of the wrong type; InvalidArgument naming the file
// when it holds no task at all.
core::StatusOr<std::vector<RlTask>> LoadTasks(const std::string& path);

// Reads GSM8K's JSON Lines (openai/grade-school-math: {"question", "answer"}, the answer a
// solution ending in "#### N"): prompt = question, answer = N, the text after the last "#### "
// with surrounding blanks and thousands separators removed ("#### 1,600" -> "1600").
// Errors as LoadTasks's; InvalidArgument (field "answer") for an answer without "#### N".
core::StatusOr<std::vector<RlTask>> LoadGsm8kTasks(const std::string& path);

// The JSON Lines LoadTasks reads back: per task {"id"?, "prompt" | "messages", "answer",
// "tests"?} ("id" and "tests" only when not empty; messages as {"role","content"}), one object per
// line, each line ending in '\n'. Invalid UTF-8 is written as U+FFFD.
std::string TasksToJsonl(std::span<const RlTask> tasks);

// Supervised warm-up data for `arle train sft`: per task one chat {"messages": [the task's
// messages, or {"role": "user", "content": prompt}; {"role": "assistant", "content": answer}]}.
std::string TasksToSftJsonl(std::span<const RlTask> tasks);

// Supervised warm-up for multi-turn tool RL: chats with the agent's tools ({"messages", "tools"}).
// A share `tool_share` of the tasks (chosen by a hash of the task's id, so the same tasks
// whatever the file) is solved with the python tool: the assistant calls python with
// print(ID) (the generators' ids are Python expressions: "1234*5678"), the tool message is
// what the agent shows for that program's output, and the assistant answers with the answer.
// The other tasks are answered directly. InvalidArgument for a share outside [0, 1] or a chosen
// task without an id.
core::StatusOr<std::string> TasksToToolSftJsonl(std::span<const RlTask> tasks, double tool_share);

// Pretraining text for `arle train pretrain`: per plain-prompt task one {"text": "PROMPT ANSWER"}
// line ("What is 37 + 58? 95"); chat tasks are skipped (they have no plain text form).
std::string TasksToTextJsonl(std::span<const RlTask> tasks);

// ---------------------------------------------------------------------------------------------
// Synthetic tasks.
//
// Kinds:
//   "arithmetic"      a + b, a - b or a * b (the operator uniform), a and b uniform `digits`-digit
//                     numbers (default 2); subtraction puts the larger operand first so answers
//                     are never negative. Prompt "What is 37 + 58?", answer "95".
//   "add-sub"         a + b or a - b, as "arithmetic" without the products.
//   "multiplication"  a * b with a `digits`-digit (default 3) and b a `digits_b`-digit (default
//                     `digits`) number: too large to do in one's head, so a model learns to call
//                     its python tool. Prompt "What is 123 * 456?", answer "56088".
// "N-digit" numbers lie in [10^(N-1), 10^N - 1]; N is 1..9.
//
// Splits: a problem's split is a hash of the problem itself (operator and operands, the operands
// sorted for + and * so "a + b" and "b + a" land together): splitmix64 of that key, top bit 0 ->
// train, 1 -> held-out. It does not depend on the seed, the kind, the digits or n, so the two
// splits never share a problem whatever is generated; a problem is a member of exactly one.
// Generation draws problems from core::Rng(seed) (xoshiro256**, the same stream on every platform,
// with arle's own unbiased integer mapping rather than std::uniform_int_distribution) and keeps
// those of the requested split not seen before, until it has n. The same (kind, n, seed, split,
// digits) always gives the same tasks in the same order, and a smaller n gives a prefix of a larger
// one.
enum class TaskSplit { kTrain, kHeldout };

// "train" or "heldout" ("held-out" accepted). InvalidArgument (field "split") otherwise.
core::StatusOr<TaskSplit> ParseTaskSplit(std::string_view name);
std::string_view TaskSplitName(TaskSplit split);  // "train" / "heldout"

// The generator kinds, for help texts and errors: {"arithmetic", "add-sub", "multiplication"}.
std::span<const std::string_view> TaskKinds();

struct TaskGenOptions {
  std::string kind;  // one of TaskKinds()
  int64_t n = 0;     // tasks to generate, >= 1
  uint64_t seed = 0;
  TaskSplit split = TaskSplit::kTrain;
  int digits = 0;    // 0: the kind's default (arithmetic and add-sub 2, multiplication 3)
  int digits_b = 0;  // multiplication's second operand; 0: the same as digits
};

// Generates options.n distinct problems of options.split (see above); each task's id is the
// problem ("37+58"). Errors: InvalidArgument naming the field ("kind", listing the kinds; "n";
// "digits"; "digits_b") for an unknown kind, n < 1 or above kMaxGeneratedTasks, digits outside
// 1..9, digits_b given for arithmetic, or n larger than the split holds: the split is counted
// exactly when the kind has at most 2^26 problems (the message gives the count); above that n may
// be at most a quarter of all problems (a split holds about half).
inline constexpr int64_t kMaxGeneratedTasks = 10'000'000;
core::StatusOr<std::vector<RlTask>> GenerateTasks(const TaskGenOptions& options);

}  // namespace arle::rl
