// Verifiers (see verifiers.h): answer extraction and code execution come from eval/, so a reward
// agrees with what `arle eval` scores for the same completion.
#include "arle/rl/verifiers.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <limits>
#include <semaphore>
#include <thread>

#include "arle/agent/sandbox.h"
#include "arle/core/check.h"
#include "arle/eval/answer_extraction.h"
#include "arle/eval/code_execution.h"

namespace arle::rl {

namespace {

constexpr std::array<std::string_view, 5> kKindNames = {"number", "exact", "regex:PATTERN",
                                                        "match:PATTERN", "python-tests"};

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view Strip(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

core::Status SpecError(std::string message, std::string hint = {}) {
  return core::InvalidArgumentError("verifier: " + std::move(message), std::move(hint))
      .WithField("verifier");
}

std::string KindList() { return fmt::format("{}", fmt::join(kKindNames, ", ")); }

// A match term runs its pattern inside one group, so that any match (even of empty text, for a
// pattern without groups) yields a string from the filter rather than its fallback. Leading global
// flags such as "(?s)" stay in front: Python allows them only at the start.
std::string MatchPattern(std::string_view pattern) {
  size_t flags_end = 0;
  while (pattern.substr(flags_end).starts_with("(?")) {
    const size_t close = pattern.find(')', flags_end);
    if (close == std::string_view::npos || close == flags_end + 2) break;
    const std::string_view letters = pattern.substr(flags_end + 2, close - flags_end - 2);
    if (letters.find_first_not_of("aiLmsux") != std::string_view::npos) break;
    flags_end = close + 1;
  }
  return fmt::format("{}({})", pattern.substr(0, flags_end), pattern.substr(flags_end));
}

// Compiling once here makes a bad pattern a start-up error rather than a zero per sample.
core::Status CheckPattern(const VerifierTerm& term) {
  auto probe = eval::ApplyRegexFilter(
      "", term.kind == VerifierKind::kMatch ? MatchPattern(term.pattern) : term.pattern);
  if (!probe.ok() && probe.status().code() == core::StatusCode::kInvalidArgument) {
    return SpecError(fmt::format("\"{}\": {}", term.spec, probe.status().message()));
  }
  return core::OkStatus();
}

core::StatusOr<VerifierTerm> ParseTerm(const std::string& spec) {
  VerifierTerm term;
  term.spec = spec;
  std::string_view rest = spec;
  // A weight is whatever precedes the first '*' when the spec starts like a number; a kind starts
  // with a letter, so a '*' inside a pattern is never read as one.
  if (!rest.empty() && (IsDigit(rest[0]) || rest[0] == '.' || rest[0] == '-' || rest[0] == '+')) {
    const size_t star = rest.find('*');
    if (star == std::string_view::npos) {
      return SpecError(
          fmt::format("\"{}\": a weight must be followed by '*' and a kind "
                      "(WEIGHT*KIND, e.g. 0.5*number)",
                      spec));
    }
    std::string_view number = rest.substr(0, star);
    if (number.starts_with('+')) number.remove_prefix(1);  // from_chars refuses a '+'
    double weight = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), weight);
    if (ec != std::errc() || end != number.data() + number.size() || !std::isfinite(weight)) {
      return SpecError(fmt::format("\"{}\": the weight \"{}\" is not a finite decimal number", spec,
                                   rest.substr(0, star)));
    }
    term.weight = weight;
    rest.remove_prefix(star + 1);
  }
  if (rest == "number") {
    term.kind = VerifierKind::kNumber;
  } else if (rest == "exact") {
    term.kind = VerifierKind::kExact;
  } else if (rest == "python-tests") {
    term.kind = VerifierKind::kPythonTests;
  } else if (rest.starts_with("regex:") || rest.starts_with("match:")) {
    term.kind = rest.starts_with("regex:") ? VerifierKind::kRegex : VerifierKind::kMatch;
    term.pattern = std::string(rest.substr(6));
    if (term.pattern.empty()) return SpecError(fmt::format("\"{}\": the regex is empty", spec));
    ARLE_RETURN_IF_ERROR(CheckPattern(term));
  } else {
    return SpecError(
        fmt::format("\"{}\": unknown kind \"{}\" (the kinds are {})", spec, rest, KindList()),
        "write [WEIGHT*]KIND, e.g. number or 0.2*match:#### (\\d+)");
  }
  return term;
}

// Truncates what a completion produced for an outcome line: logs stay readable.
std::string Shorten(std::string_view s) {
  constexpr size_t kMax = 40;
  if (s.size() <= kMax) return std::string(s);
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 start
  return std::string(s.substr(0, cut)) + "...";
}

// The regex filter's fallback when nothing matches: NULs are kept by the filter's strip and do not
// occur in model text, so no extraction equals it.
const std::string kNoMatch("\x00<no match>\x00", 12);

std::string Where(const RlTask& task) {
  if (!task.where.empty()) return task.where;
  if (!task.id.empty()) return "task " + task.id;
  return "task";
}

// Tasks of one sandboxed run besides the program's own: bubblewrap's monitor and init, with room.
constexpr int64_t kTasksPerRun = 4;

}  // namespace

struct Verifier::PythonSlots {
  explicit PythonSlots(int n) : slots(n) {}
  std::counting_semaphore<> slots;
};

namespace {

VerifyResult VerifyTerm(const VerifierTerm& term, const VerifierOptions& options,
                        std::counting_semaphore<>* python_slots, const RlTask& task,
                        std::string_view completion) {
  VerifyResult r;
  const auto error = [&r](std::string message) {
    r.failed = true;
    r.outcome = "error: " + std::move(message);
    return r;
  };
  switch (term.kind) {
    case VerifierKind::kNumber: {
      const std::optional<std::string> want = CanonicalNumber(task.answer);
      if (!want) return error(fmt::format("the answer \"{}\" is not a number", task.answer));
      const std::optional<std::string> got = ExtractFinalNumber(completion);
      if (!got) {
        r.outcome = "no number";
      } else if (*got == *want) {
        r.reward = 1;
        r.outcome = "correct";
      } else {
        r.outcome = fmt::format("wrong (got {})", Shorten(*got));
      }
      return r;
    }
    case VerifierKind::kExact: {
      const std::string_view got = Strip(completion);
      if (got == Strip(task.answer)) {
        r.reward = 1;
        r.outcome = "correct";
      } else {
        r.outcome = fmt::format("wrong (got {})", Shorten(got));
      }
      return r;
    }
    case VerifierKind::kRegex: {
      auto got = eval::ApplyRegexFilter(completion, term.pattern, 0, kNoMatch);
      if (!got.ok()) return error(got.status().message());
      if (*got == kNoMatch) {
        r.outcome = "no match";
      } else if (Strip(*got) == Strip(task.answer)) {
        r.reward = 1;
        r.outcome = "correct";
      } else {
        r.outcome = fmt::format("wrong (got {})", Shorten(Strip(*got)));
      }
      return r;
    }
    case VerifierKind::kMatch: {
      auto got = eval::ApplyRegexFilter(completion, MatchPattern(term.pattern), 0, kNoMatch);
      if (!got.ok()) return error(got.status().message());
      const bool matched = *got != kNoMatch;
      r.reward = matched ? 1 : 0;
      r.outcome = matched ? "matched" : "no match";
      return r;
    }
    case VerifierKind::kPythonTests: {
      if (task.tests.empty()) {
        r.outcome = "no tests";
        return r;
      }
      std::string program = ExtractCode(completion);
      program.append("\n").append(task.tests);
      eval::CodeRunOptions run;
      run.timeout_seconds = options.python_timeout_seconds;
      run.memory_bytes = options.python_memory_bytes;
      run.max_processes =
          options.python_max_processes + kTasksPerRun * int64_t{options.python_max_parallel};
      run.unsafe_no_sandbox = options.unsafe_no_sandbox;
      python_slots->acquire();
      auto result = eval::RunPythonProgram(program, run);
      python_slots->release();
      if (!result.ok()) return error(result.status().message());
      // bubblewrap failing to set the sandbox up is no verdict on the completion.
      if (result->outcome.starts_with("failed: bwrap:")) {
        return error(result->outcome.substr(std::string_view("failed: ").size()));
      }
      r.outcome = result->outcome;
      r.reward = result->passed ? 1 : 0;
      // A CPU-time kill is a loop that outran the timer's signal: a time-out too.
      r.timed_out = result->outcome == "timed out" || result->outcome == "sandbox limit: cpu_time";
      return r;
    }
  }
  return error("unhandled verifier kind");
}

}  // namespace

std::span<const std::string_view> VerifierKindNames() { return kKindNames; }

core::StatusOr<std::vector<VerifierTerm>> ParseVerifierSpec(const std::vector<std::string>& specs) {
  if (specs.empty()) {
    return SpecError(fmt::format("no verifier given (the kinds are {})", KindList()));
  }
  std::vector<VerifierTerm> terms;
  terms.reserve(specs.size());
  for (const std::string& spec : specs) {
    ARLE_ASSIGN_OR_RETURN(VerifierTerm term, ParseTerm(spec));
    terms.push_back(std::move(term));
  }
  return terms;
}

core::StatusOr<Verifier> Verifier::Create(const std::vector<std::string>& specs,
                                          const VerifierOptions& options) {
  ARLE_ASSIGN_OR_RETURN(std::vector<VerifierTerm> terms, ParseVerifierSpec(specs));
  return FromTerms(std::move(terms), options);
}

core::StatusOr<Verifier> Verifier::FromTerms(std::vector<VerifierTerm> terms,
                                             const VerifierOptions& options) {
  if (terms.empty()) {
    return SpecError(fmt::format("no verifier given (the kinds are {})", KindList()));
  }
  for (const VerifierTerm& term : terms) {
    if (!std::isfinite(term.weight)) {
      return SpecError(fmt::format("\"{}\": the weight must be finite", term.spec));
    }
    if (term.kind == VerifierKind::kRegex || term.kind == VerifierKind::kMatch) {
      ARLE_RETURN_IF_ERROR(CheckPattern(term));
    }
  }
  if (!std::isfinite(options.python_timeout_seconds) || options.python_timeout_seconds <= 0) {
    return core::InvalidArgumentError(
               "python_timeout_seconds: must be a positive number of seconds")
        .WithField("python_timeout_seconds");
  }
  if (options.python_memory_bytes < (int64_t{16} << 20)) {
    return core::InvalidArgumentError("python_memory_bytes: must be at least 16 MiB")
        .WithField("python_memory_bytes");
  }
  if (options.python_max_processes < 1) {
    return core::InvalidArgumentError("python_max_processes: must be at least 1")
        .WithField("python_max_processes");
  }
  if (options.python_max_parallel < 1) {
    return core::InvalidArgumentError("python_max_parallel: must be at least 1")
        .WithField("python_max_parallel");
  }
  Verifier verifier(std::move(terms), options);
  if (verifier.runs_python() && !options.unsafe_no_sandbox) {
    const agent::SandboxState& sandbox = agent::ProbeSandbox();
    if (!sandbox.available) {
      return core::FailedPreconditionError(
          "verifier: python-tests needs the sandbox, which is unavailable here (" + sandbox.detail +
              ")",
          "install bubblewrap (apt-get install bubblewrap) and allow unprivileged user "
          "namespaces, or pass --unsafe-no-sandbox to run the tests unisolated");
    }
  }
  return verifier;
}

Verifier::Verifier(std::vector<VerifierTerm> terms, VerifierOptions options)
    : terms_(std::move(terms)), options_(std::move(options)) {
  if (runs_python()) python_slots_ = std::make_shared<PythonSlots>(options_.python_max_parallel);
}

VerifyResult Verifier::Verify(const RlTask& task, std::string_view completion) const {
  std::counting_semaphore<>* slots = python_slots_ ? &python_slots_->slots : nullptr;
  if (terms_.size() == 1 && terms_[0].weight == 1.0) {
    return VerifyTerm(terms_[0], options_, slots, task, completion);
  }
  VerifyResult total;
  for (const VerifierTerm& term : terms_) {
    const VerifyResult r = VerifyTerm(term, options_, slots, task, completion);
    total.reward += term.weight * r.reward;
    total.failed = total.failed || r.failed;
    total.timed_out = total.timed_out || r.timed_out;
    if (!total.outcome.empty()) total.outcome += "; ";
    total.outcome += term.spec + ": " + r.outcome;
  }
  return total;
}

core::Status Verifier::CheckTask(const RlTask& task) const {
  for (const VerifierTerm& term : terms_) {
    switch (term.kind) {
      case VerifierKind::kNumber:
        if (!CanonicalNumber(task.answer)) {
          return core::InvalidArgumentError(
                     fmt::format("{}: field \"answer\" must be a number for the number verifier, "
                                 "got \"{}\"",
                                 Where(task), Shorten(task.answer)))
              .WithField("answer");
        }
        break;
      case VerifierKind::kExact:
      case VerifierKind::kRegex:
        if (Strip(task.answer).empty()) {
          return core::InvalidArgumentError(
                     fmt::format("{}: field \"answer\" is empty; the {} verifier compares with it",
                                 Where(task), term.spec))
              .WithField("answer");
        }
        break;
      case VerifierKind::kMatch:
        break;
      case VerifierKind::kPythonTests:
        if (task.tests.empty()) {
          return core::InvalidArgumentError(
                     fmt::format("{}: missing field \"tests\" (Python test code) that the "
                                 "python-tests verifier runs",
                                 Where(task)))
              .WithField("tests");
        }
        break;
    }
  }
  return core::OkStatus();
}

double Verifier::full_reward() const {
  double sum = 0;
  for (const VerifierTerm& t : terms_) sum += std::max(t.weight, 0.0);
  return sum;
}

bool Verifier::runs_python() const {
  return std::any_of(terms_.begin(), terms_.end(),
                     [](const VerifierTerm& t) { return t.kind == VerifierKind::kPythonTests; });
}

std::string Verifier::Describe() const {
  std::string out;
  for (const VerifierTerm& term : terms_) {
    if (!out.empty()) out += " + ";
    std::string name = term.kind == VerifierKind::kNumber  ? "number"
                       : term.kind == VerifierKind::kExact ? "exact"
                       : term.kind == VerifierKind::kRegex ? "regex:" + term.pattern
                       : term.kind == VerifierKind::kMatch ? "match:" + term.pattern
                                                           : "python-tests";
    out += term.weight == 1.0 ? name : fmt::format("{}*{}", term.weight, name);
  }
  return out;
}

std::vector<VerifyResult> VerifyBatch(const Verifier& verifier, std::span<const RlTask> tasks,
                                      std::span<const std::string> completions, int n_threads) {
  if (completions.empty()) return {};
  ARLE_CHECK(!tasks.empty() && completions.size() % tasks.size() == 0)
      << "VerifyBatch: " << completions.size() << " completions for " << tasks.size() << " tasks";
  const size_t group = completions.size() / tasks.size();
  std::vector<VerifyResult> results(completions.size());
  const auto verify = [&](size_t i) {
    results[i] = verifier.Verify(tasks[i / group], completions[i]);
  };
  size_t workers = 1;
  if (verifier.runs_python()) {
    workers = n_threads >= 1 ? static_cast<size_t>(n_threads)
                             : std::max(1u, std::thread::hardware_concurrency());
    workers = std::min(
        {workers, completions.size(), static_cast<size_t>(verifier.options().python_max_parallel)});
  }
  if (workers <= 1) {
    for (size_t i = 0; i < completions.size(); ++i) verify(i);
    return results;
  }
  // Python runs wait on processes, not on this CPU: plain threads claiming the next index, so a
  // slow program holds up only its own thread. Each writes its own result slot.
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t i = next++; i < completions.size(); i = next++) verify(i);
  };
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  for (size_t t = 1; t < workers; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  return results;
}

VerifyCounts CountResults(std::span<const VerifyResult> results, double full_reward) {
  VerifyCounts c;
  if (results.empty()) return c;
  double sum = 0, sum_sq = 0;
  c.max_reward = -std::numeric_limits<double>::infinity();
  for (const VerifyResult& r : results) {
    ++c.n;
    c.n_failed += r.failed ? 1 : 0;
    c.n_timed_out += r.timed_out ? 1 : 0;
    c.n_full += r.reward >= full_reward - 1e-9 ? 1 : 0;
    sum += r.reward;
    sum_sq += r.reward * r.reward;
    c.max_reward = std::max(c.max_reward, r.reward);
  }
  const double n = static_cast<double>(c.n);
  c.mean_reward = sum / n;
  c.std_reward = std::sqrt(std::max(0.0, sum_sq / n - c.mean_reward * c.mean_reward));
  return c;
}

std::optional<std::string> CanonicalNumber(std::string_view text) {
  std::string s;
  for (char c : Strip(text)) {
    if (c != ',' && c != '$') s.push_back(c);
  }
  while (!s.empty() && s.back() == '.') s.pop_back();
  std::string_view v = s;
  bool negative = false;
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) {
    negative = v[0] == '-';
    v.remove_prefix(1);
  }
  const size_t dot = v.find('.');
  std::string_view whole = v.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : v.substr(dot + 1);
  if (whole.empty() && frac.empty()) return std::nullopt;
  if (!std::all_of(whole.begin(), whole.end(), IsDigit) ||
      !std::all_of(frac.begin(), frac.end(), IsDigit)) {
    return std::nullopt;  // a second '.', a letter, a sign inside
  }
  if (dot != std::string_view::npos && frac.empty()) return std::nullopt;  // "-." and the like
  while (!whole.empty() && whole.front() == '0') whole.remove_prefix(1);
  while (!frac.empty() && frac.back() == '0') frac.remove_suffix(1);
  std::string out;
  if (negative && !(whole.empty() && frac.empty())) out.push_back('-');
  out.append(whole.empty() ? std::string_view("0") : whole);
  if (!frac.empty()) out.append(".").append(frac);
  return out;
}

std::optional<std::string> ExtractFinalNumber(std::string_view completion) {
  const std::string strict = eval::Gsm8kStrictExtract(completion);
  if (strict != eval::kInvalidAnswer) {
    if (auto n = CanonicalNumber(strict)) return n;
  }
  const std::string flexible = eval::Gsm8kFlexibleExtract(completion);
  if (flexible == eval::kInvalidAnswer) return std::nullopt;
  return CanonicalNumber(flexible);
}

std::string ExtractCode(std::string_view completion) {
  constexpr std::string_view kFence = "```";
  std::optional<std::string_view> last_python, last_any;
  size_t pos = 0;
  while (true) {
    const size_t open = completion.find(kFence, pos);
    if (open == std::string_view::npos) break;
    const size_t after = open + kFence.size();
    const size_t newline = completion.find('\n', after);
    const size_t close_inline = completion.find(kFence, after);
    std::string_view tag, body;
    size_t next;
    if (close_inline != std::string_view::npos &&
        (newline == std::string_view::npos || close_inline < newline)) {
      body = completion.substr(after, close_inline - after);  // ```code``` on one line
      next = close_inline + kFence.size();
    } else if (newline == std::string_view::npos) {
      break;  // a fence with nothing after its tag line
    } else {
      tag = Strip(completion.substr(after, newline - after));
      const size_t close = completion.find(kFence, newline + 1);
      const size_t end = close == std::string_view::npos ? completion.size() : close;
      body = completion.substr(newline + 1, end - newline - 1);
      next = close == std::string_view::npos ? completion.size() : close + kFence.size();
    }
    std::string word(tag.substr(0, std::min(tag.size(), tag.find_first_of(" \t{"))));
    std::transform(word.begin(), word.end(), word.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (word == "python" || word == "py" || word == "python3") last_python = body;
    last_any = body;
    pos = next;
  }
  if (last_python) return std::string(*last_python);
  if (last_any) return std::string(*last_any);
  return std::string(completion);
}

}  // namespace arle::rl
