// RL task files and generators (see rl_tasks.h). nlohmann-json stays in this file.
#include "arle/rl/rl_tasks.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>
#include <utility>

#include "arle/agent/tools.h"
#include "arle/core/random.h"
#include "arle/io/json_fields.h"
#include "arle/train/jsonl.h"

namespace arle::rl {

using nlohmann::json;

namespace {

core::Status MissingField(const std::string& where, std::string_view key,
                          std::string_view extra = {}) {
  return core::InvalidArgumentError(
             fmt::format("{}: missing required field \"{}\"{}", where, key, extra))
      .WithField(std::string(key));
}

core::Status FieldError(const std::string& where, std::string_view key, std::string_view message) {
  return core::InvalidArgumentError(fmt::format("{}: field \"{}\" {}", where, key, message))
      .WithField(std::string(key));
}

core::Status WrongType(const std::string& where, std::string_view key, std::string_view expected,
                       const json& value) {
  return FieldError(where, key,
                    fmt::format("must be {}, got {}", expected, io::JsonTypeName(value)));
}

// The value of `key`, or nullptr when absent or null (null counts as absent, as in io::JsonFields).
const json* Find(const json& object, std::string_view key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

core::StatusOr<std::string> OptionalString(const json& object, const std::string& where,
                                           std::string_view key) {
  const json* v = Find(object, key);
  if (v == nullptr) return std::string();
  if (!v->is_string()) return WrongType(where, key, "a string", *v);
  return v->get<std::string>();
}

// Lines with their JSON objects; a file with none is an error rather than an empty task list: a
// training run over nothing is always a mistake.
struct ParsedLine {
  int64_t number;
  std::string where;
  json object;
};

core::StatusOr<std::vector<ParsedLine>> ReadObjects(const std::string& path) {
  ARLE_ASSIGN_OR_RETURN(std::vector<train::JsonlLine> lines, train::ReadJsonlLines(path));
  std::vector<ParsedLine> out;
  out.reserve(lines.size());
  for (train::JsonlLine& line : lines) {
    std::string_view text = line.text;
    if (line.number == 1 && text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a BOM
    ParsedLine p{line.number, fmt::format("{}:{}", path, line.number), {}};
    ARLE_ASSIGN_OR_RETURN(p.object, io::ParseJsonObject(text, p.where));
    out.push_back(std::move(p));
  }
  if (out.empty()) {
    return core::InvalidArgumentError(
        fmt::format("{}: no tasks (the file has no non-blank line)", path));
  }
  return out;
}

core::StatusOr<RlTask> TaskFromObject(const ParsedLine& line) {
  const json& o = line.object;
  const std::string& where = line.where;
  RlTask task;
  task.where = where;
  task.line = line.number;

  const json* prompt = Find(o, "prompt");
  const json* messages = Find(o, "messages");
  if (prompt != nullptr && messages != nullptr) {
    return FieldError(where, "messages", "is given with \"prompt\": a task has exactly one");
  }
  if (prompt == nullptr && messages == nullptr) {
    return MissingField(where, "prompt", " (or \"messages\")");
  }
  if (prompt != nullptr) {
    if (!prompt->is_string()) return WrongType(where, "prompt", "a string", *prompt);
    task.prompt = prompt->get<std::string>();
    if (task.prompt.empty()) return FieldError(where, "prompt", "is empty");
  } else {
    if (!messages->is_array()) return WrongType(where, "messages", "an array", *messages);
    if (messages->empty()) return FieldError(where, "messages", "is empty");
    auto parsed = agent::MessagesFromJson(messages->dump());
    if (!parsed.ok()) {
      return core::InvalidArgumentError(
                 fmt::format("{}: field \"messages\": {}", where, parsed.status().message()))
          .WithField("messages");
    }
    task.messages = std::move(parsed).value();
  }

  ARLE_ASSIGN_OR_RETURN(task.tests, OptionalString(o, where, "tests"));
  if (const json* answer = Find(o, "answer"); answer != nullptr) {
    if (answer->is_string()) {
      task.answer = answer->get<std::string>();
    } else if (answer->is_number()) {
      task.answer = answer->dump();
    } else {
      return WrongType(where, "answer", "a string or a number", *answer);
    }
  } else if (task.tests.empty()) {
    return MissingField(where, "answer", " (a task without \"tests\" needs one)");
  }

  if (const json* id = Find(o, "id"); id != nullptr) {
    if (id->is_string()) {
      task.id = id->get<std::string>();
    } else if (id->is_number_integer()) {
      task.id = id->dump();
    } else {
      return WrongType(where, "id", "a string or an integer", *id);
    }
  }
  return task;
}

std::string_view StripBlanks(std::string_view s) {
  const auto blank = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Generators.

constexpr std::array<std::string_view, 3> kKinds = {"arithmetic", "add-sub", "multiplication"};

enum Op : uint64_t { kAdd = 0, kSub = 1, kMul = 2 };
constexpr std::array<char, 3> kOpChar = {'+', '-', '*'};

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Operands are below 10^9 < 2^30, so (op, a, b) packs into one word.
uint64_t PackProblem(uint64_t op, uint64_t a, uint64_t b) { return (op << 60) | (a << 30) | b; }

// The split of a problem: commutative problems are keyed with sorted operands, so "a + b" and
// "b + a" (which a model that memorised one would answer) are never split across train/held-out.
TaskSplit SplitOf(uint64_t op, uint64_t a, uint64_t b) {
  if (op != kSub && a > b) std::swap(a, b);
  return (SplitMix64(PackProblem(op, a, b)) >> 63) == 0 ? TaskSplit::kTrain : TaskSplit::kHeldout;
}

// Uniform in [lo, hi] without modulo bias: draws below 2^64 mod range are rejected.
uint64_t UniformInt(core::Rng& rng, uint64_t lo, uint64_t hi) {
  const uint64_t range = hi - lo + 1;
  const uint64_t threshold = (0 - range) % range;
  while (true) {
    const uint64_t x = rng.NextU64();
    if (x >= threshold) return lo + x % range;
  }
}

uint64_t Pow10(int n) {
  uint64_t p = 1;
  for (int i = 0; i < n; ++i) p *= 10;
  return p;
}

struct Range {
  uint64_t lo;
  uint64_t hi;
  uint64_t size() const { return hi - lo + 1; }
};

Range DigitRange(int digits) { return {Pow10(digits - 1), Pow10(digits) - 1}; }

// Which operators a kind draws from.
enum class OpSet { kArithmetic /* + - * */, kAddSub /* + - */, kMul /* * */ };

struct Generator {
  OpSet ops;  // + - of equal-length operands (and * for kArithmetic); kMul: ra x rb
  Range ra;
  Range rb;

  bool equal_length() const { return ops != OpSet::kMul; }

  // Every problem it can draw, counted once.
  uint64_t Total() const {
    if (ops == OpSet::kMul) return ra.size() * rb.size();
    const uint64_t n = ra.size();
    return (ops == OpSet::kArithmetic ? 2 : 1) * n * n + n * (n + 1) / 2;
  }

  // Problems of `split`, by enumeration.
  uint64_t CountSplit(TaskSplit split) const {
    uint64_t count = 0;
    const auto add = [&](uint64_t op, uint64_t a, uint64_t b) {
      if (SplitOf(op, a, b) == split) ++count;
    };
    for (uint64_t a = ra.lo; a <= ra.hi; ++a) {
      for (uint64_t b = rb.lo; b <= rb.hi; ++b) {
        if (ops != OpSet::kAddSub) add(kMul, a, b);
        if (ops != OpSet::kMul) {
          add(kAdd, a, b);
          if (a >= b) add(kSub, a, b);
        }
      }
    }
    return count;
  }

  // (op, a, b): the operator first, then a and b, in this order, so streams are reproducible.
  void Draw(core::Rng& rng, uint64_t* op, uint64_t* a, uint64_t* b) const {
    *op = ops == OpSet::kArithmetic ? UniformInt(rng, 0, 2)
          : ops == OpSet::kAddSub   ? UniformInt(rng, 0, 1)
                                    : kMul;
    *a = UniformInt(rng, ra.lo, ra.hi);
    *b = UniformInt(rng, rb.lo, rb.hi);
    if (*op == kSub && *a < *b) std::swap(*a, *b);
  }
};

constexpr uint64_t kMaxEnumerated = uint64_t{1} << 26;

}  // namespace

core::StatusOr<std::vector<RlTask>> LoadTasks(const std::string& path) {
  ARLE_ASSIGN_OR_RETURN(std::vector<ParsedLine> lines, ReadObjects(path));
  std::vector<RlTask> tasks;
  tasks.reserve(lines.size());
  for (const ParsedLine& line : lines) {
    ARLE_ASSIGN_OR_RETURN(RlTask task, TaskFromObject(line));
    tasks.push_back(std::move(task));
  }
  return tasks;
}

core::StatusOr<std::vector<RlTask>> LoadGsm8kTasks(const std::string& path) {
  ARLE_ASSIGN_OR_RETURN(std::vector<ParsedLine> lines, ReadObjects(path));
  std::vector<RlTask> tasks;
  tasks.reserve(lines.size());
  for (const ParsedLine& line : lines) {
    RlTask task;
    task.where = line.where;
    task.line = line.number;
    const json* question = Find(line.object, "question");
    if (question == nullptr) return MissingField(line.where, "question");
    if (!question->is_string()) return WrongType(line.where, "question", "a string", *question);
    task.prompt = question->get<std::string>();
    const json* answer = Find(line.object, "answer");
    if (answer == nullptr) return MissingField(line.where, "answer");
    if (!answer->is_string()) return WrongType(line.where, "answer", "a string", *answer);
    const std::string& solution = answer->get_ref<const std::string&>();
    const size_t mark = solution.rfind("#### ");
    std::string number;
    if (mark != std::string::npos) {
      for (char c : StripBlanks(std::string_view(solution).substr(mark + 5))) {
        if (c != ',') number.push_back(c);
      }
    }
    if (number.empty()) {
      return FieldError(line.where, "answer", "does not end in \"#### N\" (GSM8K's final answer)");
    }
    task.answer = std::move(number);
    tasks.push_back(std::move(task));
  }
  return tasks;
}

std::string TasksToJsonl(std::span<const RlTask> tasks) {
  std::string out;
  for (const RlTask& task : tasks) {
    nlohmann::ordered_json j;
    if (!task.id.empty()) j["id"] = task.id;
    if (task.is_chat()) {
      j["messages"] = nlohmann::ordered_json::array();
      for (const agent::AgentMessage& m : task.messages) {
        j["messages"].push_back({{"role", m.role}, {"content", m.content}});
      }
    } else {
      j["prompt"] = task.prompt;
    }
    j["answer"] = task.answer;
    if (!task.tests.empty()) j["tests"] = task.tests;
    out += j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    out += '\n';
  }
  return out;
}

std::string TasksToSftJsonl(std::span<const RlTask> tasks) {
  std::string out;
  for (const RlTask& task : tasks) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (task.is_chat()) {
      for (const agent::AgentMessage& m : task.messages) {
        messages.push_back({{"role", m.role}, {"content", m.content}});
      }
    } else {
      messages.push_back({{"role", "user"}, {"content", task.prompt}});
    }
    messages.push_back({{"role", "assistant"}, {"content", task.answer}});
    out += nlohmann::ordered_json{{"messages", messages}}.dump(
        -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    out += '\n';
  }
  return out;
}

core::StatusOr<std::string> TasksToToolSftJsonl(std::span<const RlTask> tasks, double tool_share) {
  if (!(tool_share >= 0 && tool_share <= 1)) {
    return core::InvalidArgumentError(
               fmt::format("tool share must be in [0, 1], got {}", tool_share))
        .WithField("tool_share");
  }
  using OJson = nlohmann::ordered_json;
  const OJson tools = OJson::parse(agent::BuiltinToolsJson());
  std::string out;
  for (const RlTask& task : tasks) {
    OJson messages = OJson::array();
    if (task.is_chat()) {
      for (const agent::AgentMessage& m : task.messages) {
        messages.push_back({{"role", m.role}, {"content", m.content}});
      }
    } else {
      messages.push_back({{"role", "user"}, {"content", task.prompt}});
    }
    // The top 53 bits of the id's hash as a uniform draw in [0, 1).
    uint64_t fnv = 0xcbf29ce484222325ull;  // FNV-1a: the same on every platform
    for (const unsigned char c : task.id) fnv = (fnv ^ c) * 0x100000001b3ull;
    const uint64_t h = SplitMix64(fnv);
    const bool with_tool = static_cast<double>(h >> 11) * 0x1.0p-53 < tool_share;
    if (with_tool) {
      if (task.id.empty()) {
        return core::InvalidArgumentError("a task without an id cannot be given a python call")
            .WithField("id");
      }
      const std::string code = "print(" + task.id + ")";
      agent::SandboxResult run;
      run.stdout_text = task.answer + "\n";
      run.stdout_bytes = static_cast<int64_t>(run.stdout_text.size());
      messages.push_back(
          {{"role", "assistant"},
           {"content", ""},
           {"tool_calls", OJson::array({{{"id", "call_0"},
                                         {"type", "function"},
                                         {"function",
                                          {{"name", "python"},
                                           {"arguments", OJson{{"code", code}}.dump()}}}}})}});
      messages.push_back({{"role", "tool"},
                          {"tool_call_id", "call_0"},
                          {"name", "python"},
                          {"content", agent::ToolResultForModel(run, agent::SandboxLimits{})}});
    }
    messages.push_back({{"role", "assistant"}, {"content", task.answer}});
    out += OJson{{"messages", messages}, {"tools", tools}}.dump(-1, ' ', false,
                                                                OJson::error_handler_t::replace);
    out += '\n';
  }
  return out;
}

std::string TasksToTextJsonl(std::span<const RlTask> tasks) {
  std::string out;
  for (const RlTask& task : tasks) {
    if (task.is_chat()) continue;
    out += nlohmann::ordered_json{{"text", task.prompt + " " + task.answer}}.dump(
        -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    out += '\n';
  }
  return out;
}

core::StatusOr<TaskSplit> ParseTaskSplit(std::string_view name) {
  if (name == "train") return TaskSplit::kTrain;
  if (name == "heldout" || name == "held-out") return TaskSplit::kHeldout;
  return core::InvalidArgumentError(
             fmt::format("split: unknown split \"{}\" (expected train or heldout)", name))
      .WithField("split");
}

std::string_view TaskSplitName(TaskSplit split) {
  return split == TaskSplit::kTrain ? "train" : "heldout";
}

std::span<const std::string_view> TaskKinds() { return kKinds; }

core::StatusOr<std::vector<RlTask>> GenerateTasks(const TaskGenOptions& options) {
  const OpSet ops = options.kind == "arithmetic" ? OpSet::kArithmetic
                    : options.kind == "add-sub"  ? OpSet::kAddSub
                                                 : OpSet::kMul;
  const bool equal_length = ops != OpSet::kMul;
  if (ops == OpSet::kMul && options.kind != "multiplication") {
    return core::InvalidArgumentError(
               fmt::format("kind: unknown task kind \"{}\" (the kinds are {})", options.kind,
                           fmt::join(kKinds, ", ")))
        .WithField("kind");
  }
  if (options.n < 1 || options.n > kMaxGeneratedTasks) {
    return core::InvalidArgumentError(
               fmt::format("n: must be 1..{}, got {}", kMaxGeneratedTasks, options.n))
        .WithField("n");
  }
  const int digits = options.digits != 0 ? options.digits : (equal_length ? 2 : 3);
  if (digits < 1 || digits > 9) {
    return core::InvalidArgumentError(fmt::format("digits: must be 1..9, got {}", digits))
        .WithField("digits");
  }
  if (equal_length && options.digits_b != 0) {
    return core::InvalidArgumentError(
               "digits_b: only multiplication takes a second operand length; " + options.kind +
               " operands both have `digits` digits")
        .WithField("digits_b");
  }
  const int digits_b = options.digits_b != 0 ? options.digits_b : digits;
  if (digits_b < 1 || digits_b > 9) {
    return core::InvalidArgumentError(fmt::format("digits_b: must be 1..9, got {}", digits_b))
        .WithField("digits_b");
  }
  const Generator gen{ops, DigitRange(digits), DigitRange(digits_b)};
  const uint64_t n = static_cast<uint64_t>(options.n);
  const uint64_t total = gen.Total();
  // Rejection sampling needs n to fit the split; with a small space it is counted exactly (and
  // n == the whole split still ends: every member is drawn eventually), with a huge one a quarter
  // of the problems is safely below the split's ~half.
  if (total <= kMaxEnumerated) {
    const uint64_t in_split = gen.CountSplit(options.split);
    if (n > in_split) {
      const std::string operands = equal_length ? fmt::format("{}-digit", digits)
                                                : fmt::format("{}x{}-digit", digits, digits_b);
      return core::InvalidArgumentError(
                 fmt::format("n: the {} split of {} with {} operands holds {} problems (of {}), "
                             "asked for {}",
                             TaskSplitName(options.split), options.kind, operands, in_split, total,
                             n),
                 "ask for fewer tasks or more digits")
          .WithField("n");
    }
  } else if (n > total / 4) {
    return core::InvalidArgumentError(
               fmt::format(
                   "n: at most a quarter of the {} problems ({}) may be drawn, asked for {}", total,
                   total / 4, n))
        .WithField("n");
  }

  core::Rng rng(options.seed);
  std::unordered_set<uint64_t> seen;
  seen.reserve(n);
  std::vector<RlTask> tasks;
  tasks.reserve(n);
  while (tasks.size() < n) {
    uint64_t op, a, b;
    gen.Draw(rng, &op, &a, &b);
    if (SplitOf(op, a, b) != options.split || !seen.insert(PackProblem(op, a, b)).second) continue;
    const uint64_t value = op == kAdd ? a + b : op == kSub ? a - b : a * b;
    RlTask task;
    task.id = fmt::format("{}{}{}", a, kOpChar[op], b);
    task.prompt = fmt::format("What is {} {} {}?", a, kOpChar[op], b);
    task.answer = fmt::format("{}", value);
    tasks.push_back(std::move(task));
  }
  return tasks;
}

}  // namespace arle::rl
