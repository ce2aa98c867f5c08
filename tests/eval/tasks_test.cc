// eval/tasks and eval/task_data: the requests and prompts of every task against
// tests/eval/task_goldens.py (lm-evaluation-harness's formats and samplers restated in Python over
// the excerpts in tests/data/eval/), Python's str helpers, the CSV reader against Python's csv
// module, and the errors bad data gives.
#include "arle/eval/tasks.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "arle/core/check.h"
#include "arle/core/file_util.h"
#include "arle/eval/task_data.h"
#include "arle/tokenizer/unicode.h"
#include "tests/common/temp_dir.h"

namespace arle::eval {
namespace {

using Json = nlohmann::json;

void ExpectContains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "\"" << part << "\" not in \"" << text << "\"";
}

TaskOptions Options(int shots, uint64_t seed = 1234, std::string fewshot_data = "",
                    int64_t limit = -1) {
  TaskOptions o;
  o.shots = shots;
  o.seed = seed;
  o.fewshot_data = std::move(fewshot_data);
  o.limit = limit;
  return o;
}

std::string DataPath(const std::string& rel) {
  return std::string(ARLE_TEST_DATA_DIR) + "/eval/" + rel;
}

const Json& Goldens() {
  static const Json* j = [] {
    auto text = core::ReadFile(DataPath("goldens/tasks.json"));
    ARLE_CHECK(text.ok()) << text.status().ToString();
    return new Json(Json::parse(*text));
  }();
  return *j;
}

TaskOptions OptionsOf(const Json& c) {
  TaskOptions o;
  o.shots = c.at("shots").get<int>();
  o.seed = c.at("seed").get<uint64_t>();
  const std::string fewshot = c.at("fewshot_data").get<std::string>();
  if (!fewshot.empty()) o.fewshot_data = DataPath(fewshot);
  o.limit = c.at("limit").get<int64_t>();
  return o;
}

std::string CaseName(const Json& c) {
  return c.at("task").get<std::string>() + " " + c.at("data").get<std::string>() + " " +
         std::to_string(c.at("shots").get<int>()) + "-shot seed " +
         std::to_string(c.at("seed").get<uint64_t>()) + " fewshot '" +
         c.at("fewshot_data").get<std::string>() + "'";
}

void ExpectMcDocsMatch(const std::vector<McDoc>& docs, const Json& want) {
  ASSERT_EQ(docs.size(), want.size());
  for (size_t d = 0; d < docs.size(); ++d) {
    SCOPED_TRACE("doc " + std::to_string(d));
    const Json& w = want[d];
    EXPECT_EQ(docs[d].id, w.at("id").get<std::string>());
    EXPECT_EQ(docs[d].choices, w.at("choices").get<std::vector<std::string>>());
    EXPECT_EQ(docs[d].gold, w.at("gold").get<int>());
    const Json& requests = w.at("requests");
    ASSERT_EQ(docs[d].requests.size(), requests.size());
    for (size_t r = 0; r < requests.size(); ++r) {
      const std::string& context =
          w.at("contexts")[requests[r][0].get<size_t>()].get_ref<const std::string&>();
      EXPECT_EQ(docs[d].requests[r].context, context) << "request " << r;
      EXPECT_EQ(docs[d].requests[r].continuation, requests[r][1].get<std::string>())
          << "request " << r;
    }
  }
}

void ExpectGenDocsMatch(const std::vector<GenDoc>& docs, const Json& want) {
  ASSERT_EQ(docs.size(), want.size());
  for (size_t d = 0; d < docs.size(); ++d) {
    SCOPED_TRACE("doc " + std::to_string(d));
    const Json& w = want[d];
    EXPECT_EQ(docs[d].id, w.at("id").get<std::string>());
    EXPECT_EQ(docs[d].prompt, w.at("prompt").get<std::string>());
    EXPECT_EQ(docs[d].until, w.at("until").get<std::vector<std::string>>());
    EXPECT_EQ(docs[d].reference, w.at("reference").get<std::string>());
    EXPECT_EQ(docs[d].test, w.at("test").get<std::string>());
    EXPECT_EQ(docs[d].entry_point, w.at("entry_point").get<std::string>());
    EXPECT_EQ(docs[d].humaneval_prompt, w.at("humaneval_prompt").get<std::string>());
  }
}

TEST(Tasks, GoldensNameTheHarnessCommit) {
  EXPECT_EQ(Goldens().at("harness_commit").get<std::string>().substr(0, 8), "4e7e0d47");
}

TEST(Tasks, PromptsAndFewShotMatchTheHarness) {
  int mc = 0, gen = 0;
  for (const Json& c : Goldens().at("cases")) {
    SCOPED_TRACE(CaseName(c));
    const std::string task = c.at("task").get<std::string>();
    auto info = FindTask(task);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    const std::string data = DataPath(c.at("data").get<std::string>());
    if ((*info)->kind == TaskKind::kMultipleChoice) {
      auto docs = LoadMcTask(task, data, OptionsOf(c));
      ASSERT_TRUE(docs.ok()) << docs.status().ToString();
      ExpectMcDocsMatch(*docs, c.at("docs"));
      ++mc;
    } else {
      auto docs = LoadGenTask(task, data, OptionsOf(c));
      ASSERT_TRUE(docs.ok()) << docs.status().ToString();
      ExpectGenDocsMatch(*docs, c.at("docs"));
      ++gen;
    }
  }
  EXPECT_GE(mc, 15);
  EXPECT_GE(gen, 6);
}

// `limit` keeps a prefix of the unlimited run: the few-shot generator has advanced the same way.
TEST(Tasks, LimitKeepsThePrefixOfAFullRun) {
  for (const Json& c : Goldens().at("cases")) {
    if (c.at("limit").get<int64_t>() < 0 || c.at("shots").get<int>() == 0) continue;
    SCOPED_TRACE(CaseName(c));
    TaskOptions o = OptionsOf(c);
    o.limit = -1;
    const std::string task = c.at("task").get<std::string>();
    const std::string data = DataPath(c.at("data").get<std::string>());
    const size_t n = c.at("docs").size();
    if ((*FindTask(task))->kind == TaskKind::kMultipleChoice) {
      auto docs = LoadMcTask(task, data, o);
      ASSERT_TRUE(docs.ok()) << docs.status().ToString();
      ASSERT_GT(docs->size(), n);
      docs->resize(n);
      ExpectMcDocsMatch(*docs, c.at("docs"));
    } else {
      auto docs = LoadGenTask(task, data, o);
      ASSERT_TRUE(docs.ok()) << docs.status().ToString();
      ASSERT_GT(docs->size(), n);
      docs->resize(n);
      ExpectGenDocsMatch(*docs, c.at("docs"));
    }
  }
}

TEST(Tasks, KnownRecordsReadAsExpected) {
  // Spot checks a reader can follow without the goldens.
  auto arc = LoadMcTask("arc_challenge", DataPath("arc/arc_challenge_test_excerpt.jsonl"), {});
  ASSERT_TRUE(arc.ok()) << arc.status().ToString();
  ASSERT_EQ(arc->size(), 32u);
  const McDoc& first = (*arc)[0];
  EXPECT_EQ(first.id, "Mercury_7175875");
  EXPECT_EQ(first.requests[2].context,
            "Question: An astronomer observes that a planet rotates faster after a meteorite "
            "impact. Which is the most likely effect of this increase in rotation?\nAnswer:");
  EXPECT_EQ(first.requests[2].continuation, " Planetary days will become shorter.");
  EXPECT_EQ(first.gold, 2);
  EXPECT_EQ((*arc)[30].choices.size(), 3u);
  EXPECT_EQ((*arc)[31].choices.size(), 5u);

  auto gsm = LoadGenTask("gsm8k", DataPath("gsm8k/test_excerpt.jsonl"), Options(0));
  ASSERT_TRUE(gsm.ok()) << gsm.status().ToString();
  EXPECT_EQ((*gsm)[0].id, "test_excerpt.jsonl:1");
  EXPECT_TRUE((*gsm)[0].prompt.starts_with("Question: Janet\u2019s ducks lay 16 eggs per day."));
  EXPECT_TRUE((*gsm)[0].prompt.ends_with("\nAnswer:"));
  EXPECT_TRUE((*gsm)[0].reference.ends_with("#### 18"));

  auto he = LoadGenTask("humaneval", DataPath("humaneval/HumanEval_excerpt.jsonl.gz"), {});
  ASSERT_TRUE(he.ok()) << he.status().ToString();
  EXPECT_EQ((*he)[0].id, "HumanEval/0");
  EXPECT_EQ((*he)[0].entry_point, "has_close_elements");
  EXPECT_EQ((*he)[0].prompt, (*he)[0].humaneval_prompt);

  auto mmlu = LoadMcTask("mmlu", DataPath("mmlu/abstract_algebra_test.csv"), {});
  ASSERT_TRUE(mmlu.ok()) << mmlu.status().ToString();
  EXPECT_TRUE((*mmlu)[0].requests[0].context.starts_with(
      "The following are multiple choice questions (with answers) about abstract algebra.\n\n"));
  EXPECT_EQ((*mmlu)[0].requests[1].continuation, " B");
}

TEST(Tasks, RegistryListsTheTasks) {
  std::vector<std::string> names;
  for (const TaskInfo& t : Tasks()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"hellaswag", "arc_easy", "arc_challenge", "mmlu",
                                             "winogrande", "gsm8k", "humaneval", "math"}));
  EXPECT_EQ((*FindTask("gsm8k"))->default_shots, 5);
  EXPECT_EQ((*FindTask("gsm8k"))->kind, TaskKind::kGenerate);
  EXPECT_EQ((*FindTask("winogrande"))->kind, TaskKind::kMultipleChoice);
  auto unknown = FindTask("lambada");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), core::StatusCode::kInvalidArgument);
  ExpectContains(unknown.status().message(), "lambada");
  ExpectContains(unknown.status().message(),
                 "hellaswag, arc_easy, arc_challenge, mmlu, winogrande, gsm8k, humaneval, "
                 "math");
}

// ---- Python's str helpers ----

TEST(TaskText, StripUsesPythonWhitespace) {
  const std::vector<uint32_t> spaces = Goldens().at("whitespace").get<std::vector<uint32_t>>();
  size_t next = 0;
  int found = 0;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    tokenizer::AppendCodePoint(cp, &s);
    const bool is_space = next < spaces.size() && spaces[next] == cp;
    if (is_space) ++next;
    const std::string stripped = PythonStrip(s);
    if (stripped.empty() != is_space) ADD_FAILURE() << "U+" << std::hex << cp;
    found += is_space;
  }
  EXPECT_EQ(found, static_cast<int>(spaces.size()));
  for (const Json& c : Goldens().at("strip")) {
    EXPECT_EQ(PythonStrip(c[0].get<std::string>()), c[1].get<std::string>());
  }
}

TEST(TaskText, CapitalizeMatchesPython) {
  int failures = 0;
  for (const Json& c : Goldens().at("capitalize")) {
    const std::string in = c[0].get<std::string>();
    const std::string want = c[1].get<std::string>();
    if (PythonCapitalize(in) != want && ++failures <= 20) {
      ADD_FAILURE() << "capitalize(\"" << in << "\") = \"" << PythonCapitalize(in)
                    << "\", Python gives \"" << want << "\"";
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(TaskText, HellaswagPreprocessMatchesPython) {
  for (const Json& c : Goldens().at("hellaswag_preprocess")) {
    EXPECT_EQ(HellaswagPreprocess(c[0].get<std::string>()), c[1].get<std::string>())
        << c[0].get<std::string>();
  }
}

// ---- data files ----

TEST(TaskData, CsvMatchesPythonsCsvModule) {
  const Json& g = Goldens().at("csv");
  auto records = ReadRecords(DataPath(g.at("file").get<std::string>()));
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  const auto rows = g.at("rows").get<std::vector<std::vector<std::string>>>();
  ASSERT_EQ(records->size(), rows.size() - 1);
  for (size_t r = 1; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[0].size(); ++c) {
      EXPECT_EQ((*records)[r - 1].fields.at(rows[0][c]).get<std::string>(), rows[r][c])
          << "row " << r << " column " << rows[0][c];
    }
  }
  // The lines rows start on: row 3 spans three lines (two line breaks inside its values).
  EXPECT_EQ((*records)[0].number, 2);
  EXPECT_EQ((*records)[1].number, 3);
  EXPECT_EQ((*records)[2].number, 6);
  EXPECT_EQ((*records)[3].number, 7);
}

class TaskErrors : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  test::TempDir dir_;
};

constexpr const char* kArcLine =
    R"({"id": "q1", "question": "Which?", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, )"
    R"("answerKey": "B"})";

void ExpectError(const core::Status& s, core::StatusCode code,
                 const std::vector<std::string>& parts) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), code) << s.ToString();
  for (const std::string& p : parts) ExpectContains(s.message(), p);
}

TEST_F(TaskErrors, UnreadableFile) {
  const std::string missing = dir_.File("nope.jsonl");
  auto r = LoadMcTask("arc_challenge", missing, {});
  ExpectError(r.status(), core::StatusCode::kNotFound, {missing});
  auto unknown_ext = LoadMcTask("arc_challenge", Write("arc.xml", kArcLine), {});
  ExpectError(unknown_ext.status(), core::StatusCode::kInvalidArgument, {"arc.xml", ".jsonl"});
}

TEST_F(TaskErrors, MalformedJsonNamesTheLine) {
  // Line 2 is blank: line numbers stay those of the file.
  const std::string path =
      Write("arc.jsonl", std::string(kArcLine) + "\n\n{\"id\": \"q2\", \"question\": \n");
  auto r = LoadMcTask("arc_challenge", path, {});
  ExpectError(r.status(), core::StatusCode::kDataLoss, {path + ":3", "not valid JSON"});
  auto not_object = LoadMcTask("arc_challenge", Write("arc2.jsonl", "[1, 2]\n"), {});
  ExpectError(not_object.status(), core::StatusCode::kInvalidArgument,
              {"arc2.jsonl:1", "JSON object"});
}

TEST_F(TaskErrors, MissingFieldNamesLineAndField) {
  const std::string path = Write(
      "arc.jsonl",
      std::string(kArcLine) + "\n" +
          R"({"id": "q2", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "A"})" + "\n");
  auto r = LoadMcTask("arc_challenge", path, {});
  ExpectError(r.status(), core::StatusCode::kInvalidArgument,
              {path + ":2", "missing required field \"question\""});
  EXPECT_EQ(r.status().field(), "question");

  auto wrong_type = LoadMcTask(
      "arc_challenge",
      Write("arc2.jsonl",
            R"({"question": 7, "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "A"})"),
      {});
  ExpectError(wrong_type.status(), core::StatusCode::kInvalidArgument,
              {"arc2.jsonl:1", "\"question\" must be a string, got an integer"});

  auto nested = LoadMcTask(
      "arc_challenge",
      Write("arc3.jsonl", R"({"question": "q", "choices": {"text": ["a"]}, "answerKey": "A"})"),
      {});
  ExpectError(nested.status(), core::StatusCode::kInvalidArgument,
              {"arc3.jsonl:1", "choices.label"});
  EXPECT_EQ(nested.status().field(), "choices.label");

  auto gsm = LoadGenTask("gsm8k", Write("gsm.jsonl", R"({"question": "q"})"), Options(0));
  ExpectError(gsm.status(), core::StatusCode::kInvalidArgument, {"gsm.jsonl:1", "\"answer\""});
  auto math =
      LoadGenTask("math", Write("math.jsonl", R"({"problem": "p", "solution": "none"})"), {});
  ExpectError(math.status(), core::StatusCode::kInvalidArgument,
              {"math.jsonl:1", "\"answer\"", "boxed"});
  auto he = LoadGenTask("humaneval", Write("he.jsonl", R"({"prompt": "p", "test": "t"})"), {});
  ExpectError(he.status(), core::StatusCode::kInvalidArgument, {"he.jsonl:1", "entry_point"});
}

TEST_F(TaskErrors, EmptyChoices) {
  auto arc = LoadMcTask(
      "arc_challenge",
      Write("arc.jsonl",
            R"({"question": "q", "choices": {"text": [], "label": []}, "answerKey": "A"})"),
      {});
  ExpectError(arc.status(), core::StatusCode::kInvalidArgument,
              {"arc.jsonl:1", "\"choices.text\" is empty"});
  auto hs = LoadMcTask("hellaswag",
                       Write("hs.jsonl", R"({"activity_label": "a", "ctx_a": "b", "ctx_b": "c", )"
                                         R"("endings": [], "label": "0"})"),
                       {});
  ExpectError(hs.status(), core::StatusCode::kInvalidArgument,
              {"hs.jsonl:1", "\"endings\" is empty"});
}

TEST_F(TaskErrors, LabelOutOfRange) {
  auto hs = LoadMcTask("hellaswag",
                       Write("hs.jsonl", R"({"activity_label": "a", "ctx_a": "b", "ctx_b": "c", )"
                                         R"("endings": ["x", "y"], "label": "7"})"),
                       {});
  ExpectError(hs.status(), core::StatusCode::kInvalidArgument,
              {"hs.jsonl:1", "\"label\" is 7, outside the 2 choices"});
  EXPECT_EQ(hs.status().field(), "label");
  auto arc = LoadMcTask(
      "arc_easy",
      Write(
          "arc.jsonl",
          std::string(kArcLine) + "\n" +
              R"({"question": "q", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "E"})"),
      {});
  ExpectError(arc.status(), core::StatusCode::kInvalidArgument,
              {"arc.jsonl:2", "\"answerKey\" \"E\" is not one of the choice labels (A)"});
  auto mmlu = LoadMcTask("mmlu",
                         Write("mmlu.jsonl", R"({"subject": "s", "question": "q", )"
                                             R"("choices": ["a", "b", "c", "d"], "answer": 4})"),
                         {});
  ExpectError(mmlu.status(), core::StatusCode::kInvalidArgument,
              {"mmlu.jsonl:1", "\"answer\" is 4"});
  auto mmlu_csv = LoadMcTask("mmlu", Write("x_test.csv", "q,a,b,c,d,E\n"), {});
  ExpectError(mmlu_csv.status(), core::StatusCode::kInvalidArgument, {"x_test.csv:1", "answer"});
  auto three = LoadMcTask("mmlu",
                          Write("mmlu3.jsonl", R"({"subject": "s", "question": "q", )"
                                               R"("choices": ["a", "b", "c"], "answer": 0})"),
                          {});
  ExpectError(three.status(), core::StatusCode::kInvalidArgument, {"mmlu3.jsonl:1", "choices"});
  auto wino = LoadMcTask("winogrande",
                         Write("w.jsonl", R"({"sentence": "a _ b", "option1": "x", )"
                                          R"("option2": "y", "answer": "3"})"),
                         {});
  ExpectError(wino.status(), core::StatusCode::kInvalidArgument, {"w.jsonl:1", "\"answer\""});
  auto blank = LoadMcTask("winogrande",
                          Write("w2.jsonl", R"({"sentence": "no blank", "option1": "x", )"
                                            R"("option2": "y", "answer": "1"})"),
                          {});
  ExpectError(blank.status(), core::StatusCode::kInvalidArgument, {"w2.jsonl:1", "blank"});
}

TEST_F(TaskErrors, MalformedCsv) {
  auto unterminated = ReadRecords(Write("a.csv", "q,A\nx,\"open\nstill open\n"));
  ExpectError(unterminated.status(), core::StatusCode::kDataLoss, {"a.csv:2", "unterminated"});
  auto bare_quote = ReadRecords(Write("b.csv", "q,A\nx,ab\"c\n"));
  ExpectError(bare_quote.status(), core::StatusCode::kDataLoss, {"b.csv:2", "quote"});
  auto after_quote = ReadRecords(Write("c.csv", "q,A\nx,\"ab\"c\n"));
  ExpectError(after_quote.status(), core::StatusCode::kDataLoss, {"c.csv:2", "closing quote"});
  auto columns = ReadRecords(Write("d.csv", "q,A\n1,2\n3\n"));
  ExpectError(columns.status(), core::StatusCode::kInvalidArgument,
              {"d.csv:3", "1 values, expected 2"});
  auto mmlu = LoadMcTask("mmlu", Write("e_test.csv", "q,a,b,c,d,A\nq,a,b,c,A\n"), {});
  ExpectError(mmlu.status(), core::StatusCode::kInvalidArgument, {"e_test.csv:2", "5 values"});
}

TEST_F(TaskErrors, MalformedHellaswagText) {
  auto truncated = LoadMcTask("hellaswag", Write("h.txt", "A: b\n0\nw\nx\ny\nz\nC: d\n1\n"), {});
  ExpectError(truncated.status(), core::StatusCode::kDataLoss, {"h.txt:7", "truncated"});
  auto label = LoadMcTask("hellaswag", Write("h2.txt", "A: b\nzero\nw\nx\ny\nz\n"), {});
  ExpectError(label.status(), core::StatusCode::kInvalidArgument, {"h2.txt:2", "not an integer"});
  auto range = LoadMcTask("hellaswag", Write("h3.txt", "A: b\n4\nw\nx\ny\nz\n"), {});
  ExpectError(range.status(), core::StatusCode::kInvalidArgument, {"h3.txt:1", "is 4, outside"});
}

TEST_F(TaskErrors, JsonArrayFiles) {
  std::string array = "[";
  array.append(kArcLine).append(",\n").append(kArcLine).append("]");
  auto docs = LoadMcTask("arc_challenge", Write("arc.json", array), {});
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[1].gold, 1);
  // A .json file of JSON Lines reads as JSONL.
  auto lines = LoadMcTask("arc_challenge", Write("arc2.json", std::string(kArcLine) + "\n"), {});
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  EXPECT_EQ(lines->size(), 1u);
  std::string with_number = "[";
  with_number.append(kArcLine).append(", 3]");
  auto bad = LoadMcTask("arc_challenge", Write("arc3.json", with_number), {});
  ExpectError(bad.status(), core::StatusCode::kInvalidArgument, {"arc3.json: record 2", "object"});
  auto missing = LoadMcTask("arc_challenge", Write("arc4.json", R"([{"question": "q"}])"), {});
  ExpectError(missing.status(), core::StatusCode::kInvalidArgument,
              {"arc4.json: record 1", "choices"});
  auto not_json = LoadMcTask("arc_challenge", Write("arc5.json", "[{"), {});
  ExpectError(not_json.status(), core::StatusCode::kDataLoss, {"arc5.json", "not valid JSON"});
}

TEST_F(TaskErrors, TaskAndFewShotMistakes) {
  std::string two = kArcLine;
  two.append("\n")
      .append(R"({"id": "q2", "question": "Which one?", "choices": )")
      .append(R"({"text": ["c", "d"], "label": ["A", "B"]}, "answerKey": "A"})")
      .append("\n");
  const std::string arc = Write("arc.jsonl", two);
  auto unknown = LoadMcTask("piqa", arc, {});
  ExpectError(unknown.status(), core::StatusCode::kInvalidArgument, {"piqa", "arc_challenge"});
  auto kind = LoadMcTask("gsm8k", arc, {});
  ExpectError(kind.status(), core::StatusCode::kInvalidArgument, {"LoadGenTask"});
  auto kind2 = LoadGenTask("arc_easy", arc, {});
  ExpectError(kind2.status(), core::StatusCode::kInvalidArgument, {"LoadMcTask"});
  // Two docs: one shot from the doc's own file draws 2 and drops the doc, so each doc gets the
  // other; two shots cannot be drawn.
  auto ok = LoadMcTask("arc_challenge", arc, Options(1));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE((*ok)[0].requests[0].context.starts_with("Question: Which one?\nAnswer: c\n\n"));
  EXPECT_TRUE((*ok)[1].requests[0].context.starts_with("Question: Which?\nAnswer: b\n\n"));
  auto many = LoadMcTask("arc_challenge", arc, Options(2));
  ExpectError(many.status(), core::StatusCode::kInvalidArgument, {"2 few-shot examples", arc});
  // Records equal to the doc are all dropped, as the harness compares docs by value: two copies
  // of one record leave no example (the harness fails its assertion there).
  std::string copies = kArcLine;
  copies.append("\n").append(kArcLine).append("\n");
  auto dup = LoadMcTask("arc_challenge", Write("dup.jsonl", copies), Options(1));
  ExpectError(dup.status(), core::StatusCode::kInvalidArgument, {"dup.jsonl:1", "differ from"});

  const std::string test = DataPath("mmlu/mmlu_test_excerpt.jsonl.gz");
  auto no_dev = LoadMcTask("mmlu", test, Options(5));
  ExpectError(no_dev.status(), core::StatusCode::kInvalidArgument, {"dev"});
  ExpectContains(no_dev.status().hint(), "mmlu_dev.jsonl");
  auto too_many =
      LoadMcTask("mmlu", test, Options(6, 1234, DataPath("mmlu/mmlu_dev_excerpt.jsonl")));
  ExpectError(too_many.status(), core::StatusCode::kInvalidArgument,
              {"abstract_algebra", "has 5 few-shot examples", "6 requested"});

  const std::string gsm = DataPath("gsm8k/test_excerpt.jsonl");
  auto no_train = LoadGenTask("gsm8k", gsm, {});
  ExpectError(no_train.status(), core::StatusCode::kInvalidArgument, {"5-shot", "train"});
  auto he = LoadGenTask("humaneval", DataPath("humaneval/HumanEval_excerpt.jsonl.gz"), Options(1));
  ExpectError(he.status(), core::StatusCode::kInvalidArgument, {"zero-shot"});
}

TEST_F(TaskErrors, LenientFieldTypes) {
  // ARC sets with numeric labels, integer answers (rowanz's hellaswag), winogrande as integers.
  auto arc = LoadMcTask(
      "arc_easy",
      Write("arc.jsonl",
            R"({"question": "q", "choices": {"text": ["a", "b", "c"], "label": ["1", "2", "3"]}, )"
            R"("answerKey": "3"})"),
      {});
  ASSERT_TRUE(arc.ok()) << arc.status().ToString();
  EXPECT_EQ((*arc)[0].gold, 2);
  EXPECT_EQ((*arc)[0].id, "arc.jsonl:1");
  auto wino = LoadMcTask("winogrande",
                         Write("w.jsonl", R"({"sentence": "a _ b", "option1": "x", )"
                                          R"("option2": "y", "answer": 2})"),
                         {});
  ASSERT_TRUE(wino.ok()) << wino.status().ToString();
  EXPECT_EQ((*wino)[0].gold, 1);
  EXPECT_EQ((*wino)[0].requests[1].context, "a y");
  EXPECT_EQ((*wino)[0].requests[1].continuation, " b");
  auto limited =
      LoadMcTask("winogrande", DataPath("winogrande/winogrande.jsonl"), Options(-1, 1234, "", 0));
  ASSERT_TRUE(limited.ok());
  EXPECT_TRUE(limited->empty());
}

}  // namespace
}  // namespace arle::eval
