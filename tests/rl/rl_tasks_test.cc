// rl/rl_tasks: the task JSONL reader and each of its errors with FILE:LINE and the field, GSM8K's
// format on the eval excerpt, and the synthetic generators: deterministic for a seed, the train and
// held-out splits disjoint, answers right, bad options refused.
#include "arle/rl/rl_tasks.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "tests/common/temp_dir.h"

namespace arle::rl {
namespace {

class TaskFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    const std::string path = dir_.File("tasks.jsonl");
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  // The error LoadTasks gives for `text`; it must be one.
  core::Status Error(const std::string& text) {
    auto r = LoadTasks(Write(text));
    EXPECT_FALSE(r.ok()) << "accepted: " << text;
    return r.ok() ? core::OkStatus() : r.status();
  }
  test::TempDir dir_;
};

TEST_F(TaskFileTest, ReadsPromptsMessagesAnswersAndTests) {
  const std::string path = Write(
      "{\"prompt\": \"What is 2 + 2?\", \"answer\": \"4\"}\n"
      "\n"
      "{\"prompt\": \"p\", \"answer\": 42, \"id\": 7}\r\n"
      "{\"prompt\": \"p\", \"answer\": 1.5, \"id\": \"x-1\", \"extra\": true}\n"
      "  \n"
      "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
      "\"content\": \"Hi\"}], \"answer\": \"hello\"}\n"
      "{\"prompt\": \"Write f.\", \"tests\": \"assert f() == 1\"}\n");
  auto tasks = LoadTasks(path);
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  ASSERT_EQ(tasks->size(), 5u);
  const std::vector<RlTask>& t = *tasks;
  EXPECT_EQ(t[0].prompt, "What is 2 + 2?");
  EXPECT_EQ(t[0].answer, "4");
  EXPECT_EQ(t[0].line, 1);
  EXPECT_EQ(t[0].where, path + ":1");
  EXPECT_TRUE(t[0].id.empty());
  EXPECT_FALSE(t[0].is_chat());
  EXPECT_EQ(t[1].answer, "42");  // a JSON number keeps its text
  EXPECT_EQ(t[1].id, "7");
  EXPECT_EQ(t[1].line, 3);
  EXPECT_EQ(t[2].answer, "1.5");
  EXPECT_EQ(t[2].id, "x-1");
  ASSERT_TRUE(t[3].is_chat());
  EXPECT_TRUE(t[3].prompt.empty());
  ASSERT_EQ(t[3].messages.size(), 2u);
  EXPECT_EQ(t[3].messages[0].role, "system");
  EXPECT_EQ(t[3].messages[1].content, "Hi");
  EXPECT_EQ(t[3].line, 6);
  EXPECT_TRUE(t[4].answer.empty());  // a tests task needs no answer
  EXPECT_EQ(t[4].tests, "assert f() == 1");
  EXPECT_EQ(t[4].line, 7);
}

TEST_F(TaskFileTest, RoundTripsThroughTasksToJsonl) {
  auto first = LoadTasks(
      Write("{\"prompt\": \"p \\u00e9\", \"answer\": \"1\", \"id\": \"a\"}\n"
            "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"answer\": \"2\"}\n"
            "{\"prompt\": \"w\", \"tests\": \"assert True\"}\n"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const std::string jsonl = TasksToJsonl(*first);
  EXPECT_EQ(jsonl,
            "{\"id\":\"a\",\"prompt\":\"p \xC3\xA9\",\"answer\":\"1\"}\n"
            "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"answer\":\"2\"}\n"
            "{\"prompt\":\"w\",\"answer\":\"\",\"tests\":\"assert True\"}\n");
  auto second = LoadTasks(Write(jsonl));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(TasksToJsonl(*second), jsonl);
}

TEST_F(TaskFileTest, SftChatsEndWithTheAnswer) {
  auto tasks =
      LoadTasks(Write("{\"prompt\": \"What is 2 + 3?\", \"answer\": 5}\n"
                      "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, "
                      "{\"role\": \"user\", \"content\": \"q\"}], \"answer\": \"a\"}\n"));
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  EXPECT_EQ(TasksToSftJsonl(*tasks),
            "{\"messages\":[{\"role\":\"user\",\"content\":\"What is 2 + 3?\"},"
            "{\"role\":\"assistant\",\"content\":\"5\"}]}\n"
            "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
            "{\"role\":\"user\",\"content\":\"q\"},"
            "{\"role\":\"assistant\",\"content\":\"a\"}]}\n");
}

TEST_F(TaskFileTest, ErrorsNameTheLineAndTheField) {
  const std::string where = dir_.File("tasks.jsonl");
  struct Case {
    std::string text;
    core::StatusCode code;
    std::string message_start;  // after "FILE:"
    std::string field;
  };
  const std::string ok = "{\"prompt\": \"p\", \"answer\": \"1\"}\n";
  const std::vector<Case> cases = {
      {ok + "\n{\"prompt\": \"p\"\n", core::StatusCode::kDataLoss, "3: not valid JSON", ""},
      {ok + "[1, 2]\n", core::StatusCode::kInvalidArgument, "2: expected a JSON object", ""},
      {ok + "{\"answer\": \"1\"}\n", core::StatusCode::kInvalidArgument,
       "2: missing required field \"prompt\" (or \"messages\")", "prompt"},
      {"{\"prompt\": \"p\", \"messages\": [{\"role\": \"user\", \"content\": \"q\"}], "
       "\"answer\": \"1\"}\n",
       core::StatusCode::kInvalidArgument, "1: field \"messages\" is given with \"prompt\"",
       "messages"},
      {ok + ok + "{\"prompt\": \"p\"}\n", core::StatusCode::kInvalidArgument,
       "3: missing required field \"answer\"", "answer"},
      {"{\"prompt\": 3, \"answer\": \"1\"}\n", core::StatusCode::kInvalidArgument,
       "1: field \"prompt\" must be a string, got an integer", "prompt"},
      {"{\"prompt\": \"\", \"answer\": \"1\"}\n", core::StatusCode::kInvalidArgument,
       "1: field \"prompt\" is empty", "prompt"},
      {"{\"prompt\": \"p\", \"answer\": [1]}\n", core::StatusCode::kInvalidArgument,
       "1: field \"answer\" must be a string or a number, got an array", "answer"},
      {"{\"prompt\": \"p\", \"answer\": \"1\", \"tests\": 5}\n", core::StatusCode::kInvalidArgument,
       "1: field \"tests\" must be a string", "tests"},
      {"{\"prompt\": \"p\", \"answer\": \"1\", \"id\": 1.5}\n", core::StatusCode::kInvalidArgument,
       "1: field \"id\" must be a string or an integer", "id"},
      {"{\"messages\": \"hi\", \"answer\": \"1\"}\n", core::StatusCode::kInvalidArgument,
       "1: field \"messages\" must be an array", "messages"},
      {"{\"messages\": [], \"answer\": \"1\"}\n", core::StatusCode::kInvalidArgument,
       "1: field \"messages\" is empty", "messages"},
      {ok + "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}], \"answer\": \"1\"}\n",
       core::StatusCode::kInvalidArgument,
       "2: field \"messages\": messages[0]: unknown role 'robot'", "messages"},
  };
  for (const Case& c : cases) {
    const core::Status s = Error(c.text);
    EXPECT_EQ(s.code(), c.code) << s.ToString();
    EXPECT_TRUE(s.message().starts_with(where + ":" + c.message_start))
        << s.message() << "\n  expected to start with: " << where << ":" << c.message_start;
    EXPECT_EQ(s.field(), c.field) << s.ToString();
  }
}

TEST_F(TaskFileTest, EmptyAndMissingFilesAreErrors) {
  core::Status s = Error("");
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), dir_.File("tasks.jsonl") + ": no tasks (the file has no non-blank line)");
  s = Error("\n  \n\n");
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  auto missing = LoadTasks(dir_.File("absent.jsonl"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("absent.jsonl"), std::string::npos);
}

// The first 10 GSM8K test problems (tests/data/eval/gsm8k, openai/grade-school-math, MIT).
TEST(Gsm8kTasksTest, PromptIsTheQuestionAnswerTheFinalNumber) {
  const std::string path = std::string(ARLE_TEST_DATA_DIR) + "/eval/gsm8k/test_excerpt.jsonl";
  auto tasks = LoadGsm8kTasks(path);
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  ASSERT_EQ(tasks->size(), 10u);
  const RlTask& t = (*tasks)[0];
  EXPECT_TRUE(t.prompt.starts_with("Janet\xE2\x80\x99s ducks lay 16 eggs per day.")) << t.prompt;
  EXPECT_EQ(t.answer, "18");
  EXPECT_EQ(t.where, path + ":1");
  EXPECT_EQ((*tasks)[1].answer, "3");
  EXPECT_EQ((*tasks)[2].answer, "70000");
  EXPECT_EQ((*tasks)[3].answer, "540");
  for (const RlTask& task : *tasks) {
    EXPECT_FALSE(task.answer.empty());
    EXPECT_EQ(task.answer.find_first_not_of("-0123456789."), std::string::npos) << task.answer;
  }
}

TEST(Gsm8kTasksTest, ThousandsSeparatorsAndErrors) {
  test::TempDir dir;
  const std::string path = dir.File("gsm.jsonl");
  std::ofstream(path) << "{\"question\": \"q\", \"answer\": \"So 1,000 + 450,000 = 451,000\\n#### "
                         "1,450,000 \"}\n";
  auto tasks = LoadGsm8kTasks(path);
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  EXPECT_EQ((*tasks)[0].answer, "1450000");

  std::ofstream(path) << "{\"question\": \"q\", \"answer\": \"#### 1\"}\n"
                         "{\"question\": \"q\", \"answer\": \"no final answer\"}\n";
  tasks = LoadGsm8kTasks(path);
  ASSERT_FALSE(tasks.ok());
  EXPECT_EQ(tasks.status().field(), "answer");
  EXPECT_TRUE(tasks.status().message().starts_with(path + ":2: field \"answer\" does not end in"))
      << tasks.status().message();

  std::ofstream(path) << "{\"answer\": \"#### 1\"}\n";
  tasks = LoadGsm8kTasks(path);
  ASSERT_FALSE(tasks.ok());
  EXPECT_EQ(tasks.status().message(), path + ":1: missing required field \"question\"");
}

// ---------------------------------------------------------------------------------------------
// Generators.

std::vector<RlTask> Generate(const std::string& kind, int64_t n, uint64_t seed, TaskSplit split,
                             int digits = 0) {
  auto tasks =
      GenerateTasks({.kind = kind, .n = n, .seed = seed, .split = split, .digits = digits});
  EXPECT_TRUE(tasks.ok()) << tasks.status().ToString();
  return tasks.ok() ? std::move(tasks).value() : std::vector<RlTask>{};
}

std::set<std::string> Ids(const std::vector<RlTask>& tasks) {
  std::set<std::string> ids;
  for (const RlTask& t : tasks) ids.insert(t.id);
  return ids;
}

// The problem of an id ("37+58") with commutative operands sorted, as the split sees it.
std::string Canonical(const std::string& id) {
  const size_t op = id.find_first_of("+-*");
  std::string a = id.substr(0, op), b = id.substr(op + 1);
  if (id[op] != '-' && std::stoll(a) > std::stoll(b)) std::swap(a, b);
  return a + id[op] + b;
}

TEST(GenerateTasksTest, DeterministicForASeedAndPrefixConsistent) {
  const auto a = Generate("arithmetic", 200, 7, TaskSplit::kTrain);
  const auto b = Generate("arithmetic", 200, 7, TaskSplit::kTrain);
  ASSERT_EQ(a.size(), 200u);
  EXPECT_EQ(TasksToJsonl(a), TasksToJsonl(b));
  const auto c = Generate("arithmetic", 50, 7, TaskSplit::kTrain);
  EXPECT_EQ(TasksToJsonl(c), TasksToJsonl(std::span(a).first(50)));
  const auto d = Generate("arithmetic", 200, 8, TaskSplit::kTrain);
  EXPECT_NE(TasksToJsonl(a), TasksToJsonl(d));
  EXPECT_EQ(Ids(a).size(), 200u);  // distinct
  // The stream is the same on every platform (core::Rng and arle's own integer mapping): these
  // are seed 7's first tasks, pinned.
  EXPECT_EQ(TasksToJsonl(std::span(a).first(2)),
            "{\"id\":\"93-26\",\"prompt\":\"What is 93 - 26?\",\"answer\":\"67\"}\n"
            "{\"id\":\"77-35\",\"prompt\":\"What is 77 - 35?\",\"answer\":\"42\"}\n");
  EXPECT_EQ(a[3].id, "55*65");
  EXPECT_EQ(a[3].answer, "3575");
  const auto m = Generate("multiplication", 3, 7, TaskSplit::kHeldout);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].id, "397*651");
  EXPECT_EQ(m[0].answer, "258447");
  EXPECT_EQ(m[2].id, "485*392");
}

TEST(GenerateTasksTest, PromptsAndAnswersAreRight) {
  for (const std::string kind : {"arithmetic", "add-sub", "multiplication"}) {
    for (const RlTask& t : Generate(kind, 300, 1, TaskSplit::kHeldout)) {
      const size_t op = t.id.find_first_of("+-*");
      ASSERT_NE(op, std::string::npos) << t.id;
      const int64_t a = std::stoll(t.id.substr(0, op)), b = std::stoll(t.id.substr(op + 1));
      const int64_t want = t.id[op] == '+' ? a + b : t.id[op] == '-' ? a - b : a * b;
      EXPECT_EQ(t.answer, std::to_string(want)) << t.id;
      EXPECT_EQ(t.prompt,
                "What is " + std::to_string(a) + " " + t.id[op] + " " + std::to_string(b) + "?");
      EXPECT_GE(want, 0) << t.id;  // subtraction puts the larger operand first
      const bool two_digit = kind != "multiplication";
      const int64_t lo = two_digit ? 10 : 100, hi = two_digit ? 99 : 999;
      EXPECT_TRUE(a >= lo && a <= hi && b >= lo && b <= hi) << t.id;
      if (kind == "multiplication") {
        EXPECT_EQ(t.id[op], '*');
      }
      if (kind == "add-sub") {
        EXPECT_NE(t.id[op], '*');
      }
      EXPECT_EQ(t.line, 0);
      EXPECT_TRUE(t.where.empty());
    }
  }
  // All three operators appear.
  std::set<char> ops;
  for (const RlTask& t : Generate("arithmetic", 100, 3, TaskSplit::kTrain)) {
    ops.insert(t.id[t.id.find_first_of("+-*")]);
  }
  EXPECT_EQ(ops.size(), 3u);
  ops.clear();
  for (const RlTask& t : Generate("add-sub", 100, 3, TaskSplit::kTrain)) {
    ops.insert(t.id[t.id.find_first_of("+-*")]);
  }
  EXPECT_EQ(ops, (std::set<char>{'+', '-'}));
  // --digits.
  for (const RlTask& t : Generate("multiplication", 20, 3, TaskSplit::kTrain, 4)) {
    EXPECT_EQ(t.id.size(), 9u) << t.id;  // "1234*5678"
  }
}

TEST(GenerateTasksTest, SplitsNeverShareAProblem) {
  for (const std::string kind : {"arithmetic", "add-sub", "multiplication"}) {
    std::set<std::string> train, heldout;
    for (uint64_t seed : {0, 1, 2}) {
      for (const RlTask& t : Generate(kind, 3000, seed, TaskSplit::kTrain)) {
        train.insert(Canonical(t.id));
      }
      for (const RlTask& t : Generate(kind, 3000, seed, TaskSplit::kHeldout)) {
        heldout.insert(Canonical(t.id));
      }
    }
    EXPECT_GT(train.size(), 3000u);
    EXPECT_GT(heldout.size(), 3000u);
    for (const std::string& p : train) EXPECT_EQ(heldout.count(p), 0u) << kind << " " << p;
  }
  // 2-digit arithmetic x overlaps 2x2 multiplication: the same problem keeps its split.
  std::set<std::string> arithmetic_train;
  for (const RlTask& t : Generate("arithmetic", 5000, 4, TaskSplit::kTrain)) {
    arithmetic_train.insert(Canonical(t.id));
  }
  for (const RlTask& t : Generate("multiplication", 2000, 5, TaskSplit::kHeldout, 2)) {
    EXPECT_EQ(arithmetic_train.count(Canonical(t.id)), 0u) << t.id;
  }
}

TEST(GenerateTasksTest, AWholeSmallSplitCanBeDrawn) {
  // 1-digit multiplication: 81 problems; each split holds some, and exactly those.
  auto all_train =
      GenerateTasks({.kind = "multiplication", .n = 1, .split = TaskSplit::kTrain, .digits = 1});
  ASSERT_TRUE(all_train.ok());
  auto too_many =
      GenerateTasks({.kind = "multiplication", .n = 81, .split = TaskSplit::kTrain, .digits = 1});
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.status().field(), "n");
  // The count the message gives is drawable, and one more is not.
  const std::string& m = too_many.status().message();
  const size_t at = m.find("holds ");
  ASSERT_NE(at, std::string::npos) << m;
  const int64_t holds = std::stoll(m.substr(at + 6));
  EXPECT_GT(holds, 20);
  EXPECT_LT(holds, 61);
  auto exact = GenerateTasks(
      {.kind = "multiplication", .n = holds, .split = TaskSplit::kTrain, .digits = 1});
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  auto heldout = GenerateTasks(
      {.kind = "multiplication", .n = 81 - holds, .split = TaskSplit::kHeldout, .digits = 1});
  ASSERT_TRUE(heldout.ok()) << heldout.status().ToString();
  std::set<std::string> union_ids = Ids(*exact);
  for (const RlTask& t : *heldout) union_ids.insert(t.id);
  EXPECT_EQ(union_ids.size(), 81u);  // every problem, each in one split
}

TEST(GenerateTasksTest, BadOptionsAreRefused) {
  auto r = GenerateTasks({.kind = "division", .n = 5});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().field(), "kind");
  EXPECT_NE(r.status().message().find("arithmetic, add-sub, multiplication"), std::string::npos)
      << r.status().message();
  r = GenerateTasks({.kind = "arithmetic", .n = 0});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().field(), "n");
  r = GenerateTasks({.kind = "arithmetic", .n = 5, .digits = 10});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().field(), "digits");
  r = GenerateTasks({.kind = "arithmetic", .n = 5, .digits_b = 3});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().field(), "digits_b");
  r = GenerateTasks({.kind = "arithmetic", .n = 20000, .split = TaskSplit::kHeldout});
  ASSERT_FALSE(r.ok());  // 20295 2-digit problems, about half in each split
  EXPECT_EQ(r.status().field(), "n");
  EXPECT_NE(r.status().message().find("(of 20295)"), std::string::npos) << r.status().message();

  EXPECT_TRUE(ParseTaskSplit("train").ok());
  EXPECT_EQ(*ParseTaskSplit("heldout"), TaskSplit::kHeldout);
  EXPECT_EQ(*ParseTaskSplit("held-out"), TaskSplit::kHeldout);
  EXPECT_EQ(ParseTaskSplit("test").status().field(), "split");
}

}  // namespace
}  // namespace arle::rl
