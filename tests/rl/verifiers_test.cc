// rl/verifiers: the spec spelling and its errors, each kind on hand-written and GSM8K-style
// completions, weighted sums, and python-tests passing, failing and hanging (reward 0, counted,
// back within the time limit) from several threads. Python runs in the sandbox where the kernel
// allows it, otherwise in the unsafe mode (same limits, no isolation), as eval's tests do.
#include "arle/rl/verifiers.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "arle/agent/sandbox.h"

namespace arle::rl {
namespace {

RlTask Task(std::string answer, std::string tests = {}) {
  RlTask t;
  t.prompt = "p";
  t.answer = std::move(answer);
  t.tests = std::move(tests);
  return t;
}

Verifier Make(const std::vector<std::string>& specs, VerifierOptions options = {}) {
  auto v = Verifier::Create(specs, options);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return std::move(v).value();
}

// Python verifiers run sandboxed where bubblewrap works here, else unisolated.
VerifierOptions PythonOptions(double timeout_seconds = 3.0) {
  VerifierOptions o;
  o.python_timeout_seconds = timeout_seconds;
  o.unsafe_no_sandbox = !agent::ProbeSandbox().available;
  return o;
}

TEST(VerifierSpecTest, ParsesKindsAndWeights) {
  auto terms = ParseVerifierSpec(
      {"number", "0.25*regex:a*b=c:d", "-1*exact", "+2*python-tests", "regex:x*y", ".5*number"});
  ASSERT_TRUE(terms.ok()) << terms.status().ToString();
  ASSERT_EQ(terms->size(), 6u);
  const auto& t = *terms;
  EXPECT_EQ(t[0].kind, VerifierKind::kNumber);
  EXPECT_EQ(t[0].weight, 1.0);
  EXPECT_EQ(t[1].kind, VerifierKind::kRegex);
  EXPECT_EQ(t[1].weight, 0.25);
  EXPECT_EQ(t[1].pattern, "a*b=c:d");
  EXPECT_EQ(t[1].spec, "0.25*regex:a*b=c:d");
  EXPECT_EQ(t[2].kind, VerifierKind::kExact);
  EXPECT_EQ(t[2].weight, -1.0);
  EXPECT_EQ(t[3].kind, VerifierKind::kPythonTests);
  EXPECT_EQ(t[3].weight, 2.0);
  EXPECT_EQ(t[4].pattern, "x*y");  // a '*' after the kind is the pattern's
  EXPECT_EQ(t[4].weight, 1.0);
  EXPECT_EQ(t[5].weight, 0.5);
}

TEST(VerifierSpecTest, BadSpecsAreErrorsNamingTheVerifier) {
  for (const std::vector<std::string>& specs :
       std::vector<std::vector<std::string>>{{},
                                             {"numbers"},
                                             {"0.5"},
                                             {"0.5x*number"},
                                             {"inf*number"},
                                             {"1e999*number"},
                                             {"regex:"},
                                             {"regex:(unclosed"},
                                             {"number", "regex:a[b"},
                                             {"match:(x"},
                                             {""}}) {
    auto r = ParseVerifierSpec(specs);
    ASSERT_FALSE(r.ok()) << (specs.empty() ? "" : specs.back());
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().field(), "verifier");
    EXPECT_TRUE(r.status().message().starts_with("verifier: ")) << r.status().message();
    EXPECT_FALSE(Verifier::Create(specs).ok());
  }
  auto r = ParseVerifierSpec({"numbr"});
  EXPECT_NE(r.status().message().find("number, exact, regex:PATTERN, match:PATTERN, python-tests"),
            std::string::npos)
      << r.status().message();
  r = ParseVerifierSpec({"regex:(unclosed"});
  EXPECT_NE(r.status().message().find("(unclosed"), std::string::npos) << r.status().message();
  VerifierOptions o;
  o.python_timeout_seconds = 0;
  EXPECT_EQ(Verifier::Create({"number"}, o).status().field(), "python_timeout_seconds");
}

TEST(CanonicalNumberTest, NormalisesAsExactDecimals) {
  EXPECT_EQ(CanonicalNumber("1,234"), "1234");
  EXPECT_EQ(CanonicalNumber("$1,234.50"), "1234.5");
  EXPECT_EQ(CanonicalNumber(" 18. "), "18");
  EXPECT_EQ(CanonicalNumber("18.0"), "18");
  EXPECT_EQ(CanonicalNumber("007"), "7");
  EXPECT_EQ(CanonicalNumber("-0.0"), "0");
  EXPECT_EQ(CanonicalNumber("+5"), "5");
  EXPECT_EQ(CanonicalNumber("-$5"), "-5");
  EXPECT_EQ(CanonicalNumber(".5"), "0.5");
  EXPECT_EQ(CanonicalNumber("0.10"), "0.1");
  EXPECT_EQ(CanonicalNumber("123456789012345678901234567890"), "123456789012345678901234567890");
  for (const char* bad : {"", "$", ".", "...", "1.2.3", "12a", "--1", "1-2", "1e5", "-", "-."}) {
    EXPECT_FALSE(CanonicalNumber(bad).has_value()) << bad;
  }
}

TEST(NumberVerifierTest, GradesGsm8kStyleCompletions) {
  const Verifier v = Make({"number"});
  const RlTask t18 = Task("18");
  // The strict "#### N" wins over later numbers.
  VerifyResult r = v.Verify(t18, "Janet sells 16 - 3 - 4 = 9 eggs.\n9 * 2 = 18.\n#### 18\nAlso 5");
  EXPECT_EQ(r.reward, 1.0);
  EXPECT_EQ(r.outcome, "correct");
  EXPECT_FALSE(r.failed);
  // Without it, the last number.
  r = v.Verify(t18, "She makes 9 * 2 = $18 every day.");
  EXPECT_EQ(r.reward, 1.0) << r.outcome;
  r = v.Verify(t18, "The answer is 18.00 dollars");
  EXPECT_EQ(r.reward, 1.0) << r.outcome;
  r = v.Verify(t18, "9 * 2 = 18, so she makes 19.");
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.outcome, "wrong (got 19)");
  EXPECT_FALSE(r.failed);
  r = v.Verify(t18, "I do not know.");
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.outcome, "no number");
  // Thousands separators on either side.
  EXPECT_EQ(v.Verify(Task("1234"), "The total is 1,234.").reward, 1.0);
  EXPECT_EQ(v.Verify(Task("1,234"), "#### 1234").reward, 1.0);
  EXPECT_EQ(v.Verify(Task("70000"), "So he made a profit of $70,000.").reward, 1.0);
  EXPECT_EQ(v.Verify(Task("-3"), "The change is -3").reward, 1.0);
  EXPECT_EQ(v.Verify(Task("0.5"), "#### .5").reward, 1.0);
  EXPECT_EQ(v.Verify(Task("5"), "#### 50").reward, 0.0);
  // An answer that is no number cannot be graded: a counted failure, and CheckTask says so first.
  r = v.Verify(Task("five"), "5");
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_TRUE(r.failed);
  EXPECT_EQ(r.outcome, "error: the answer \"five\" is not a number");
  RlTask bad = Task("five");
  bad.where = "t.jsonl:3";
  const core::Status s = v.CheckTask(bad);
  EXPECT_EQ(s.field(), "answer");
  EXPECT_TRUE(s.message().starts_with("t.jsonl:3: field \"answer\" must be a number"))
      << s.message();
  EXPECT_TRUE(v.CheckTask(t18).ok());
}

TEST(ExtractFinalNumberTest, StrictThenFlexible) {
  EXPECT_EQ(ExtractFinalNumber("#### 42\nthen 7"), "42");
  EXPECT_EQ(ExtractFinalNumber("#### ,\nthen 7"), "7");  // a strict match that is no number
  EXPECT_EQ(ExtractFinalNumber("3 apples and 4 pears"), "4");
  EXPECT_EQ(ExtractFinalNumber("costs $1,000."), "1000");
  EXPECT_EQ(ExtractFinalNumber("none"), std::nullopt);
}

TEST(ExactVerifierTest, ComparesStrippedText) {
  const Verifier v = Make({"exact"});
  EXPECT_EQ(v.Verify(Task("Paris"), "  Paris\n").reward, 1.0);
  EXPECT_EQ(v.Verify(Task(" Paris "), "Paris").reward, 1.0);
  const VerifyResult r = v.Verify(Task("Paris"), "paris");
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.outcome, "wrong (got paris)");
  EXPECT_EQ(v.CheckTask(Task("")).field(), "answer");
}

TEST(RegexVerifierTest, ExtractsTheFirstGroup) {
  const Verifier v = Make({"regex:answer: *(\\w+)"});
  EXPECT_EQ(v.Verify(Task("blue"), "I think... answer: blue. Or answer: red").reward, 1.0);
  VerifyResult r = v.Verify(Task("red"), "answer: blue");
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.outcome, "wrong (got blue)");
  r = v.Verify(Task("blue"), "blue");
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.outcome, "no match");
  EXPECT_FALSE(r.failed);
  // No group: the whole match, stripped.
  EXPECT_EQ(Make({"regex:\\d+ apples"}).Verify(Task("3 apples"), "I have 3 apples.").reward, 1.0);
  // Python syntax: named groups and \Z.
  EXPECT_EQ(Make({"regex:(?P<x>\\d+)\\Z"}).Verify(Task("12"), "a 7 b 12").reward, 1.0);
}

TEST(MatchVerifierTest, RewardsTheFormatWhateverTheAnswer) {
  const Verifier v = Make({"match:^\\s*####"});
  VerifyResult r = v.Verify(Task("18"), "  #### 17");
  EXPECT_EQ(r.reward, 1.0);
  EXPECT_EQ(r.outcome, "matched");
  r = v.Verify(Task("18"), "18 ####");
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.outcome, "no match");
  // Groups do not matter, nor a match of empty text by a pattern without groups.
  EXPECT_EQ(Make({"match:(a)(b)?"}).Verify(Task("x"), "zab").reward, 1.0);
  EXPECT_EQ(Make({"match:x*"}).Verify(Task("x"), "yyy").reward, 1.0);
  EXPECT_EQ(
      Make({"match:(?s)<think>.*</think>"}).Verify(Task("x"), "<think>\nhm\n</think>4").reward,
      1.0);
  EXPECT_TRUE(Make({"match:a"}).CheckTask(Task("")).ok());  // needs no answer
}

TEST(WeightedVerifierTest, SumsTheTerms) {
  const Verifier v = Make({"0.8*number", "0.2*match:#### -?\\d+\\s*$"});
  EXPECT_EQ(v.Describe(), "0.8*number + 0.2*match:#### -?\\d+\\s*$");
  const RlTask t = Task("18");
  VerifyResult r = v.Verify(t, "so 18\n#### 18");
  EXPECT_DOUBLE_EQ(r.reward, 1.0);
  EXPECT_EQ(r.outcome, "0.8*number: correct; 0.2*match:#### -?\\d+\\s*$: matched");
  r = v.Verify(t, "The answer is 18.");
  EXPECT_DOUBLE_EQ(r.reward, 0.8);
  EXPECT_EQ(r.outcome, "0.8*number: correct; 0.2*match:#### -?\\d+\\s*$: no match");
  r = v.Verify(t, "#### 17");
  EXPECT_DOUBLE_EQ(r.reward, 0.2);
  EXPECT_FALSE(r.failed);
  // 1 for the right number, +0.5 for the "#### N" form holding it, -0.1 for saying sorry.
  const Verifier bonus = Make({"number", "0.5*regex:#### (\\d+)", "-0.1*match:sorry"});
  EXPECT_DOUBLE_EQ(bonus.Verify(t, "#### 18").reward, 1.5);
  EXPECT_DOUBLE_EQ(bonus.Verify(t, "18").reward, 1.0);
  EXPECT_DOUBLE_EQ(bonus.Verify(t, "sorry, 18").reward, 0.9);
  // A term that cannot grade (the answer is no number) gives 0 and marks the sum failed.
  const VerifyResult s = bonus.Verify(Task("sorry"), "sorry");
  EXPECT_DOUBLE_EQ(s.reward, -0.1);
  EXPECT_TRUE(s.failed);
}

TEST(ExtractCodeTest, TakesTheLastPythonBlock) {
  EXPECT_EQ(ExtractCode("Here:\n```python\ndef f():\n    return 1\n```\nDone."),
            "def f():\n    return 1\n");
  EXPECT_EQ(ExtractCode("```python\na = 1\n```\nthen\n```Python3\na = 2\n```\n```text\nout\n```"),
            "a = 2\n");
  EXPECT_EQ(ExtractCode("```\nx = 3\n```"), "x = 3\n");
  EXPECT_EQ(ExtractCode("```sh\nls\n```\nand ```x = 4```"), "x = 4");
  EXPECT_EQ(ExtractCode("def f():\n    return 5\n"), "def f():\n    return 5\n");
  EXPECT_EQ(ExtractCode("```python\ndef f():\n    return 6\n"), "def f():\n    return 6\n");
}

class PythonTestsVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!agent::ProbeSandbox().available) {
      std::fprintf(stderr, "note: sandbox unavailable (%s); python-tests run unisolated\n",
                   agent::ProbeSandbox().detail.c_str());
    }
  }
};

constexpr char kTests[] = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n";

TEST_F(PythonTestsVerifierTest, PassFailAndNoTests) {
  const Verifier v = Make({"python-tests"}, PythonOptions());
  const RlTask t = Task("", kTests);
  EXPECT_TRUE(v.CheckTask(t).ok());
  VerifyResult r =
      v.Verify(t, "Sure:\n```python\ndef add(a, b):\n    return a + b\n```\nThis adds them.");
  EXPECT_EQ(r.reward, 1.0) << r.outcome;
  EXPECT_EQ(r.outcome, "passed");
  r = v.Verify(t, "```python\ndef add(a, b):\n    return a - b\n```");
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.outcome, "failed: AssertionError");
  EXPECT_FALSE(r.failed);
  EXPECT_FALSE(r.timed_out);
  r = v.Verify(t, "def add(a, b) return a + b");
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_TRUE(r.outcome.starts_with("failed: SyntaxError")) << r.outcome;
  r = v.Verify(Task("5"), "def add(a, b):\n    return a + b\n");
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.outcome, "no tests");
  EXPECT_EQ(v.CheckTask(Task("5")).field(), "tests");
}

TEST_F(PythonTestsVerifierTest, AHangingCompletionTimesOutAndIsCounted) {
  const Verifier v = Make({"python-tests"}, PythonOptions(/*timeout_seconds=*/1.0));
  const RlTask t = Task("", kTests);
  const auto start = std::chrono::steady_clock::now();
  const VerifyResult r = v.Verify(t, "```python\nwhile True: pass\n```");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.outcome, "timed out");
  EXPECT_LT(seconds, 1.0 + 1.0 + 1.5);  // the limit, the sandbox's kill second, start-up
}

TEST_F(PythonTestsVerifierTest, BatchRunsInParallelInOrder) {
  const Verifier v = Make({"python-tests"}, PythonOptions(/*timeout_seconds=*/1.5));
  const std::vector<RlTask> tasks = {Task("", kTests), Task("", "assert mul(2, 3) == 6\n")};
  // Groups of 3 completions per task (GRPO's layout): completion i is task i / 3's.
  const std::vector<std::string> completions = {
      "def add(a, b):\n    return a + b\n",
      "```python\nwhile True: pass\n```",
      "def add(a, b):\n    return 5\n",
      "def mul(a, b):\n    return a * b\n",
      "def add(a, b):\n    return a + b\n",  // the wrong function for task 1
      "```python\nimport time\ntime.sleep(100)\n```",
  };
  const auto start = std::chrono::steady_clock::now();
  const std::vector<VerifyResult> r = VerifyBatch(v, tasks, completions, 6);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[0].outcome, "passed");
  EXPECT_EQ(r[1].outcome, "timed out");
  EXPECT_EQ(r[2].outcome, "failed: AssertionError");
  EXPECT_EQ(r[3].outcome, "passed");
  EXPECT_EQ(r[4].outcome, "failed: NameError: name 'mul' is not defined");
  EXPECT_EQ(r[5].outcome, "timed out");
  // The two hangs ran side by side, not one after the other.
  EXPECT_LT(seconds, 2 * (1.5 + 1.0));
  const VerifyCounts c = CountResults(r);
  EXPECT_EQ(c.n, 6);
  EXPECT_EQ(c.n_timed_out, 2);
  EXPECT_EQ(c.n_failed, 0);
  EXPECT_DOUBLE_EQ(c.mean_reward, 2.0 / 6.0);
}

TEST_F(PythonTestsVerifierTest, ManyRunsAtOnceShareTheSandboxUser) {
  // More threads than python_max_parallel: the extra ones wait, and no run is refused for the
  // processes the others hold (sandboxed runs of one process share a user id and its cap).
  VerifierOptions o = PythonOptions();
  o.python_max_parallel = 4;
  const Verifier v = Make({"python-tests"}, o);
  const std::vector<RlTask> tasks = {Task("", kTests)};
  const std::vector<std::string> completions(16, "def add(a, b):\n    return a + b\n");
  const std::vector<VerifyResult> r = VerifyBatch(v, tasks, completions, 16);
  ASSERT_EQ(r.size(), 16u);
  for (const VerifyResult& x : r) EXPECT_EQ(x.outcome, "passed");
  // Verify itself from several threads at once (copies of the verifier share its limit).
  std::vector<VerifyResult> direct(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < direct.size(); ++i) {
    threads.emplace_back([&, i, copy = v] { direct[i] = copy.Verify(tasks[0], completions[0]); });
  }
  for (std::thread& t : threads) t.join();
  for (const VerifyResult& x : direct) EXPECT_EQ(x.outcome, "passed");
  EXPECT_EQ(Verifier::Create({"python-tests"},
                             [] {
                               VerifierOptions bad;
                               bad.python_max_parallel = 0;
                               return bad;
                             }())
                .status()
                .field(),
            "python_max_parallel");
}

TEST(VerifyBatchTest, CheapVerifiersRunInline) {
  const Verifier v = Make({"number"});
  const std::vector<RlTask> tasks = {Task("1"), Task("2")};
  const std::vector<std::string> completions = {"1", "2"};
  const auto r = VerifyBatch(v, tasks, completions, 4);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].reward, 1.0);
  EXPECT_EQ(r[1].reward, 1.0);
  EXPECT_TRUE(VerifyBatch(v, tasks, {}, 4).empty());
}

}  // namespace
}  // namespace arle::rl
