// The task registry and the document builders (tasks.h). Each task turns a record into the
// harness's processed doc (doc_to_text, doc_to_choice, doc_to_target); one assembler then builds
// the prompt as lm_eval/api/task.py's fewshot_context does, with few-shot examples picked as
// lm_eval/api/samplers.py picks them. Read against lm-evaluation-harness 4e7e0d47 (2026-08).
#include "arle/eval/tasks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "arle/eval/answer_extraction.h"
#include "arle/eval/python_random.h"
#include "arle/eval/task_data.h"

namespace arle::eval {
namespace {

using nlohmann::json;

enum class TaskId {
  kHellaswag,
  kArcEasy,
  kArcChallenge,
  kMmlu,
  kWinogrande,
  kGsm8k,
  kHumaneval,
  kMath
};

struct TaskSpec {
  TaskId id;
  TaskInfo info;
  std::vector<std::string> id_fields;  // the first one present names the doc
  // The harness's configs of hellaswag and winogrande set neither fewshot_split nor test_split,
  // so its `fewshot_split == test_split` holds and it draws shots + 1 and drops the doc whatever
  // the pool is.
  bool extra_draw_for_any_pool = false;
};

constexpr std::string_view kTargetDelimiter = " ";
constexpr std::string_view kFewshotDelimiter = "\n\n";

const std::vector<TaskSpec>& Specs() {
  static const std::vector<TaskSpec>* specs = new std::vector<TaskSpec>{
      {TaskId::kHellaswag,
       {"hellaswag", TaskKind::kMultipleChoice,
        "acc and acc_norm (log-likelihood divided by the ending's length in characters)", 0,
        "llama.cpp's hellaswag_val_full.txt (6 lines a task: \"activity_label: ctx\", gold label, "
        "4 endings), or Hugging Face Rowan/hellaswag records {activity_label, ctx_a, ctx_b, "
        "endings[], label}; id from \"ind\"",
        "hellaswag"},
       {"ind", "id"},
       true},
      {TaskId::kArcEasy,
       {"arc_easy", TaskKind::kMultipleChoice, "acc and acc_norm", 0,
        "allenai/ai2_arc records {id, question, choices{text[], label[]}, answerKey}", "arc_easy"},
       {"id"}},
      {TaskId::kArcChallenge,
       {"arc_challenge", TaskKind::kMultipleChoice, "acc and acc_norm", 0,
        "allenai/ai2_arc records {id, question, choices{text[], label[]}, answerKey}",
        "arc_challenge"},
       {"id"}},
      {TaskId::kMmlu,
       {"mmlu", TaskKind::kMultipleChoice,
        "acc over the choice letters A-D; the harness's mmlu group averages subjects weighted by "
        "their size (5-shot is the usual report)",
        0,
        "cais/mmlu records {subject, question, choices[4], answer 0-3}, or the original "
        "header-less SUBJECT_test.csv (question,A,B,C,D,answer letter); few-shot from the dev "
        "split (mmlu_dev.jsonl or SUBJECT_dev.csv)",
        "mmlu (default: mmlu_SUBJECT with _default_template_yaml)"},
       {"id"}},
      {TaskId::kWinogrande,
       {"winogrande", TaskKind::kMultipleChoice,
        "acc: the option whose filled-in context gives the shared rest of the sentence the higher "
        "log-likelihood",
        0, "allenai/winogrande records {sentence with one _, option1, option2, answer \"1\"|\"2\"}",
        "winogrande"},
       {"qID", "id"},
       true},
      {TaskId::kGsm8k,
       {"gsm8k", TaskKind::kGenerate,
        "exact_match after the strict-match (\"#### N\") and flexible-extract (last number) "
        "filters, greedy",
        5, "openai/gsm8k records {question, answer}; few-shot from train.jsonl", "gsm8k"},
       {"id"}},
      {TaskId::kHumaneval,
       {"humaneval", TaskKind::kGenerate,
        "pass@1: prompt + completion + test + check(entry_point) run in a sandbox, greedy", 0,
        "openai/openai_humaneval records {task_id, prompt, canonical_solution, test, entry_point}",
        "humaneval"},
       {"task_id", "id"}},
      {TaskId::kMath,
       {"math", TaskKind::kGenerate,
        "exact_match: the text between the first and last '$' of the completion (or all of it) "
        "against the reference after hendrycks_math's strip_string, greedy",
        0,
        "MATH records {problem, solution with \\boxed{answer}} (EleutherAI/hendrycks_math, "
        "HuggingFaceH4/MATH-500 {problem, solution, answer, unique_id}); records without a "
        "solution use their answer",
        "hendrycks_math500 (hendrycks_math_algebra.yaml's format)"},
       {"unique_id", "id"}},
  };
  return *specs;
}

core::StatusOr<const TaskSpec*> FindSpec(std::string_view name) {
  for (const TaskSpec& s : Specs()) {
    if (s.info.name == name) return &s;
  }
  std::vector<std::string> names;
  for (const TaskSpec& s : Specs()) names.push_back(s.info.name);
  return core::InvalidArgumentError(
      fmt::format("unknown task \"{}\" (known: {})", name, fmt::join(names, ", ")));
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

core::StatusOr<std::string> DocId(const TaskSpec& spec, const RecordReader& r,
                                  const std::string& file_name) {
  for (const std::string& key : spec.id_fields) {
    ARLE_ASSIGN_OR_RETURN(std::optional<std::string> id, r.OptionalId(key));
    if (id) return *id;
  }
  return fmt::format("{}:{}", file_name, r.record().number);
}

core::Status GoldOutOfRange(const RecordReader& r, std::string_view key, int64_t gold,
                            size_t n_choices) {
  return r.FieldError(key, fmt::format("is {}, outside the {} choices (0..{})", gold, n_choices,
                                       static_cast<int64_t>(n_choices) - 1));
}

// ---- multiple choice: the harness's processed doc ----

struct McItem {
  const Record* record = nullptr;
  std::string id;
  std::string subject;      // mmlu: which few-shot examples belong to it
  std::string description;  // mmlu: the subject's description
  std::string text;         // doc_to_text
  std::vector<std::string> choices;
  int gold = 0;
  // winogrande: doc_to_text is the gold index and the choices are contexts (the harness's
  // "multiple input"); every context is followed by the same `target`.
  bool multiple_input = false;
  std::string target;
};

core::Status SetGold(McItem& item, const RecordReader& r, std::string_view key, int64_t gold) {
  if (gold < 0 || gold >= static_cast<int64_t>(item.choices.size())) {
    return GoldOutOfRange(r, key, gold, item.choices.size());
  }
  item.gold = static_cast<int>(gold);
  return core::OkStatus();
}

core::Status BuildHellaswag(const RecordReader& r, McItem& item) {
  std::vector<std::string> endings;
  if (r.Has("context")) {
    // The text format keeps "activity_label: ctx" joined, so ctx_b cannot be capitalized apart
    // from ctx_a as the harness does; the rest of its preprocess applies.
    ARLE_ASSIGN_OR_RETURN(const std::string context, r.String("context"));
    item.text = HellaswagPreprocess(context);
  } else {
    ARLE_ASSIGN_OR_RETURN(const std::string label, r.String("activity_label"));
    ARLE_ASSIGN_OR_RETURN(const std::string ctx_a, r.String("ctx_a"));
    ARLE_ASSIGN_OR_RETURN(const std::string ctx_b, r.String("ctx_b"));
    item.text = HellaswagPreprocess(label + ": " + ctx_a + " " + PythonCapitalize(ctx_b));
  }
  ARLE_ASSIGN_OR_RETURN(endings, r.StringList("endings"));
  for (const std::string& e : endings) item.choices.push_back(HellaswagPreprocess(e));
  ARLE_ASSIGN_OR_RETURN(const int64_t gold, r.IntOrDigits("label"));
  return SetGold(item, r, "label", gold);
}

core::Status BuildArc(const RecordReader& r, McItem& item) {
  ARLE_ASSIGN_OR_RETURN(const std::string question, r.String("question"));
  item.text = "Question: " + question + "\nAnswer:";
  ARLE_ASSIGN_OR_RETURN(item.choices, r.NestedStringList("choices", "text"));
  ARLE_ASSIGN_OR_RETURN(const std::vector<std::string> labels,
                        r.NestedStringList("choices", "label"));
  if (labels.size() != item.choices.size()) {
    return r.FieldError("choices.label", fmt::format("has {} labels for {} texts", labels.size(),
                                                     item.choices.size()));
  }
  ARLE_ASSIGN_OR_RETURN(const std::string key, r.StringOrInt("answerKey"));
  const auto it = std::find(labels.begin(), labels.end(), key);
  if (it == labels.end()) {
    return r.FieldError("answerKey", fmt::format("\"{}\" is not one of the choice labels ({})", key,
                                                 fmt::join(labels, ", ")));
  }
  item.gold = static_cast<int>(it - labels.begin());
  return core::OkStatus();
}

// The subject of an original MMLU CSV file: its name without the split ("abstract_algebra_test").
std::string MmluSubjectFromPath(const std::string& path) {
  std::string name = BaseName(path);
  for (std::string_view ext : {".gz", ".csv"}) {
    if (name.size() > ext.size() && name.ends_with(ext)) name.resize(name.size() - ext.size());
  }
  for (std::string_view split : {"_test", "_dev", "_val"}) {
    if (name.size() > split.size() && name.ends_with(split)) {
      name.resize(name.size() - split.size());
      break;
    }
  }
  return name;
}

const std::vector<std::string>& MmluCsvColumns() {
  static const std::vector<std::string>* columns =
      new std::vector<std::string>{"question", "A", "B", "C", "D", "answer"};
  return *columns;
}

core::Status BuildMmlu(const RecordReader& r, McItem& item, const std::string& csv_subject) {
  ARLE_ASSIGN_OR_RETURN(const std::string question, r.String("question"));
  std::vector<std::string> options;
  if (!csv_subject.empty()) {
    item.subject = csv_subject;
    for (const char* letter : {"A", "B", "C", "D"}) {
      ARLE_ASSIGN_OR_RETURN(std::string option, r.String(letter));
      options.push_back(std::move(option));
    }
  } else {
    ARLE_ASSIGN_OR_RETURN(item.subject, r.String("subject"));
    ARLE_ASSIGN_OR_RETURN(options, r.StringList("choices"));
    if (options.size() != 4) {
      return r.FieldError("choices",
                          fmt::format("has {} entries; MMLU has 4 (A-D)", options.size()));
    }
  }
  std::string subject_words = item.subject;
  std::replace(subject_words.begin(), subject_words.end(), '_', ' ');
  item.description = fmt::format(
      "The following are multiple choice questions (with answers) about {}.\n\n", subject_words);
  item.text = fmt::format("{}\nA. {}\nB. {}\nC. {}\nD. {}\nAnswer:", PythonStrip(question),
                          options[0], options[1], options[2], options[3]);
  item.choices = {"A", "B", "C", "D"};
  // The original CSV answers with a letter; the Hugging Face split with its index.
  int64_t gold = 0;
  const json& answer =
      r.record().fields.contains("answer") ? r.record().fields.at("answer") : json();
  if (answer.is_string() && answer.get<std::string>().size() == 1 &&
      answer.get<std::string>()[0] >= 'A' && answer.get<std::string>()[0] <= 'Z') {
    gold = answer.get<std::string>()[0] - 'A';
  } else {
    ARLE_ASSIGN_OR_RETURN(gold, r.IntOrDigits("answer"));
  }
  return SetGold(item, r, "answer", gold);
}

core::Status BuildWinogrande(const RecordReader& r, McItem& item) {
  ARLE_ASSIGN_OR_RETURN(const std::string sentence, r.String("sentence"));
  ARLE_ASSIGN_OR_RETURN(const std::string option1, r.String("option1"));
  ARLE_ASSIGN_OR_RETURN(const std::string option2, r.String("option2"));
  const size_t blank = sentence.find('_');
  if (blank == std::string::npos) return r.FieldError("sentence", "has no \"_\" blank");
  item.multiple_input = true;
  item.choices = {sentence.substr(0, blank) + option1, sentence.substr(0, blank) + option2};
  item.target = PythonStrip(std::string_view(sentence).substr(blank + 1));
  ARLE_ASSIGN_OR_RETURN(const std::string answer, r.StringOrInt("answer"));
  if (answer != "1" && answer != "2") {
    return r.FieldError("answer", fmt::format("must be \"1\" or \"2\", got \"{}\"", answer));
  }
  item.gold = answer == "1" ? 0 : 1;
  return core::OkStatus();
}

// Reads `path` and builds the processed doc of every record.
core::StatusOr<std::vector<McItem>> LoadMcItems(const TaskSpec& spec, const std::string& path,
                                                std::vector<Record>& records) {
  std::string csv_subject;
  DataFormat format = DataFormat::kAuto;
  std::vector<std::string> csv_columns;
  if (spec.id == TaskId::kMmlu) {
    ARLE_ASSIGN_OR_RETURN(format, FormatForPath(path));
    if (format == DataFormat::kCsv) {
      csv_columns = MmluCsvColumns();
      csv_subject = MmluSubjectFromPath(path);
    }
  }
  ARLE_ASSIGN_OR_RETURN(records, ReadRecords(path, format, csv_columns));
  if (!csv_subject.empty() && !records.empty()) {
    // A header row written over the original layout is not a question.
    bool header = true;
    for (const std::string& c : MmluCsvColumns()) header = header && records[0].fields[c] == c;
    if (header) records.erase(records.begin());
  }
  const std::string file_name = BaseName(path);
  std::vector<McItem> items;
  items.reserve(records.size());
  for (const Record& record : records) {
    const RecordReader r(record);
    McItem item;
    item.record = &record;
    ARLE_ASSIGN_OR_RETURN(item.id, DocId(spec, r, file_name));
    switch (spec.id) {
      case TaskId::kHellaswag:
        ARLE_RETURN_IF_ERROR(BuildHellaswag(r, item));
        break;
      case TaskId::kArcEasy:
      case TaskId::kArcChallenge:
        ARLE_RETURN_IF_ERROR(BuildArc(r, item));
        break;
      case TaskId::kMmlu:
        ARLE_RETURN_IF_ERROR(BuildMmlu(r, item, csv_subject));
        break;
      case TaskId::kWinogrande:
        ARLE_RETURN_IF_ERROR(BuildWinogrande(r, item));
        break;
      default:
        return core::InternalError(fmt::format("{} is not multiple choice", spec.info.name));
    }
    items.push_back(std::move(item));
  }
  return items;
}

// build_qa_turn of a few-shot example: doc_to_text, then the target after " " and "\n\n" when
// there is one (an int target always; a string one when not empty).
std::string McExample(const McItem& item) {
  if (item.multiple_input) {
    const std::string& q = item.choices[static_cast<size_t>(item.gold)];
    if (item.target.empty()) return q;
    return fmt::format("{}{}{}{}", q, kTargetDelimiter, item.target, kFewshotDelimiter);
  }
  return fmt::format("{}{}{}{}", item.text, kTargetDelimiter,
                     item.choices[static_cast<size_t>(item.gold)], kFewshotDelimiter);
}

// ---- generative: the harness's processed doc ----

struct GenItem {
  const Record* record = nullptr;
  std::string id;
  std::string text;    // doc_to_text
  std::string target;  // doc_to_target of a few-shot example
  std::string reference;
  std::string test;
  std::string entry_point;
  std::string humaneval_prompt;
};

std::string GenExample(const GenItem& item) {
  if (item.target.empty()) return item.text;
  return fmt::format("{}{}{}{}", item.text, kTargetDelimiter, item.target, kFewshotDelimiter);
}

// A math answer that is a number (AMC's 27.0) as Python's str() writes it.
core::StatusOr<std::string> AnswerText(const RecordReader& r, std::string_view key) {
  const json& v = r.record().fields.at(key);
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 1e16) {
      return fmt::format("{:.1f}", d);
    }
    return fmt::format("{}", d);
  }
  return r.StringOrInt(key);
}

core::Status BuildGen(TaskId id, const RecordReader& r, GenItem& item) {
  switch (id) {
    case TaskId::kGsm8k: {
      ARLE_ASSIGN_OR_RETURN(const std::string question, r.String("question"));
      ARLE_ASSIGN_OR_RETURN(item.reference, r.String("answer"));
      item.text = "Question: " + question + "\nAnswer:";
      item.target = item.reference;
      return core::OkStatus();
    }
    case TaskId::kHumaneval: {
      ARLE_ASSIGN_OR_RETURN(item.humaneval_prompt, r.String("prompt"));
      ARLE_ASSIGN_OR_RETURN(item.test, r.String("test"));
      ARLE_ASSIGN_OR_RETURN(item.entry_point, r.String("entry_point"));
      item.text = item.humaneval_prompt;
      item.target = item.test + "\ncheck(" + item.entry_point + ")";
      return core::OkStatus();
    }
    case TaskId::kMath: {
      ARLE_ASSIGN_OR_RETURN(const std::string problem, r.String("problem"));
      std::optional<std::string> answer;
      if (r.Has("solution")) {
        ARLE_ASSIGN_OR_RETURN(const std::string solution, r.String("solution"));
        answer = MathReferenceAnswer(solution);
      }
      if (!answer) {
        if (!r.Has("answer")) {
          return r.FieldError("answer",
                              "is missing and the record has no solution with a \\boxed{} answer");
        }
        ARLE_ASSIGN_OR_RETURN(answer, AnswerText(r, "answer"));
      }
      item.reference = *answer;
      item.text = "Problem: " + problem + "\nAnswer:";
      item.target = item.reference;
      return core::OkStatus();
    }
    default:
      return core::InternalError("not a generative task");
  }
}

core::StatusOr<std::vector<GenItem>> LoadGenItems(const TaskSpec& spec, const std::string& path,
                                                  std::vector<Record>& records) {
  ARLE_ASSIGN_OR_RETURN(records, ReadRecords(path));
  const std::string file_name = BaseName(path);
  std::vector<GenItem> items;
  items.reserve(records.size());
  for (const Record& record : records) {
    const RecordReader r(record);
    GenItem item;
    item.record = &record;
    ARLE_ASSIGN_OR_RETURN(item.id, DocId(spec, r, file_name));
    ARLE_RETURN_IF_ERROR(BuildGen(spec.id, r, item));
    items.push_back(std::move(item));
  }
  return items;
}

// ---- few-shot examples ----

// The pool a task's examples come from: the evaluated docs themselves, or another file's.
template <typename Item>
struct Pool {
  std::vector<Record> records;  // another file's records (items point into them)
  std::vector<Item> items;
  const std::vector<Item>* docs = nullptr;  // the items examples come from
  bool is_eval_file = true;
  std::string name;  // the file, for errors
};

// ContextSampler.sample: rnd.sample(pool, n), or with `drop_doc` rnd.sample(pool, n + 1) without
// the records equal to the doc (dict equality, as the harness compares docs), first n kept.
template <typename Item>
core::StatusOr<std::vector<const Item*>> SampleExamples(PythonRandom& rnd, const Pool<Item>& pool,
                                                        const Item& doc, int shots, bool drop_doc,
                                                        std::string_view task) {
  const std::vector<Item>& docs = *pool.docs;
  const size_t draw = static_cast<size_t>(shots) + (drop_doc ? 1 : 0);
  if (draw > docs.size()) {
    return core::InvalidArgumentError(
        fmt::format("{}: {} few-shot examples{} need {} records but {} has {}", task, shots,
                    drop_doc ? " (one more is drawn to leave out the doc itself)" : "", draw,
                    pool.name, docs.size()));
  }
  std::vector<const Item*> picked;
  for (const size_t i : rnd.Sample(docs.size(), draw)) {
    if (drop_doc && docs[i].record->fields == doc.record->fields) continue;
    if (picked.size() < static_cast<size_t>(shots)) picked.push_back(&docs[i]);
  }
  if (picked.size() < static_cast<size_t>(shots)) {
    return core::InvalidArgumentError(
        fmt::format("{}: {}: only {} of {} few-shot examples differ from the doc (duplicates of "
                    "it in {})",
                    task, doc.record->where, picked.size(), shots, pool.name));
  }
  return picked;
}

int ResolveShots(const TaskSpec& spec, const TaskOptions& options) {
  return options.shots < 0 ? spec.info.default_shots : options.shots;
}

size_t DocCount(size_t n, const TaskOptions& options) {
  return options.limit < 0 ? n : std::min(n, static_cast<size_t>(options.limit));
}

}  // namespace

const std::vector<TaskInfo>& Tasks() {
  static const std::vector<TaskInfo>* tasks = [] {
    auto* v = new std::vector<TaskInfo>();
    for (const TaskSpec& s : Specs()) v->push_back(s.info);
    return v;
  }();
  return *tasks;
}

core::StatusOr<const TaskInfo*> FindTask(std::string_view name) {
  ARLE_ASSIGN_OR_RETURN(const TaskSpec* spec, FindSpec(name));
  for (const TaskInfo& info : Tasks()) {
    if (info.name == spec->info.name) return &info;
  }
  return core::InternalError("task registry out of sync");
}

core::StatusOr<std::vector<McDoc>> LoadMcTask(std::string_view task, const std::string& data_path,
                                              const TaskOptions& options) {
  ARLE_ASSIGN_OR_RETURN(const TaskSpec* spec, FindSpec(task));
  if (spec->info.kind != TaskKind::kMultipleChoice) {
    return core::InvalidArgumentError(
        fmt::format("{} is a generative task: load it with LoadGenTask", spec->info.name));
  }
  std::vector<Record> records;
  ARLE_ASSIGN_OR_RETURN(const std::vector<McItem> items, LoadMcItems(*spec, data_path, records));
  const int shots = ResolveShots(*spec, options);

  Pool<McItem> pool;
  pool.docs = &items;
  pool.name = data_path;
  if (shots > 0) {
    if (!options.fewshot_data.empty() && options.fewshot_data != data_path) {
      ARLE_ASSIGN_OR_RETURN(pool.items, LoadMcItems(*spec, options.fewshot_data, pool.records));
      pool.docs = &pool.items;
      pool.is_eval_file = false;
      pool.name = options.fewshot_data;
    } else if (spec->id == TaskId::kMmlu && options.fewshot_data.empty()) {
      return core::InvalidArgumentError(
          fmt::format("mmlu: {}-shot needs the dev split's examples", shots),
          "set the few-shot data to mmlu_dev.jsonl (or SUBJECT_dev.csv), or use 0 shots");
    }
  }
  // MMLU's first_n sampler: the subject's examples in file order.
  std::map<std::string, std::vector<const McItem*>> by_subject;
  if (spec->id == TaskId::kMmlu && shots > 0) {
    for (const McItem& item : *pool.docs) by_subject[item.subject].push_back(&item);
  }

  PythonRandom rnd(options.seed);
  const bool drop_doc = pool.is_eval_file || spec->extra_draw_for_any_pool;
  std::vector<McDoc> docs;
  const size_t n = DocCount(items.size(), options);
  docs.reserve(n);
  for (size_t d = 0; d < n; ++d) {
    const McItem& item = items[d];
    std::vector<const McItem*> examples;
    if (shots > 0 && spec->id == TaskId::kMmlu) {
      for (const McItem* e : by_subject[item.subject]) {
        // FirstNSampler leaves out the doc only when the few-shot split is the test split.
        if (pool.is_eval_file && e->record->fields == item.record->fields) continue;
        if (examples.size() < static_cast<size_t>(shots)) examples.push_back(e);
      }
      if (examples.size() < static_cast<size_t>(shots)) {
        return core::InvalidArgumentError(
            fmt::format("mmlu: {}: subject \"{}\" has {} few-shot examples in {}, {} requested",
                        item.record->where, item.subject, examples.size(), pool.name, shots));
      }
    } else if (shots > 0) {
      ARLE_ASSIGN_OR_RETURN(examples,
                            SampleExamples(rnd, pool, item, shots, drop_doc, spec->info.name));
    }
    std::string prefix = item.description;
    for (const McItem* e : examples) prefix += McExample(*e);

    McDoc doc;
    doc.id = item.id;
    doc.choices = item.choices;
    doc.gold = item.gold;
    for (const std::string& choice : item.choices) {
      if (item.multiple_input) {
        doc.requests.push_back({prefix + choice, std::string(kTargetDelimiter) + item.target});
      } else {
        doc.requests.push_back({prefix + item.text, std::string(kTargetDelimiter) + choice});
      }
    }
    docs.push_back(std::move(doc));
  }
  return docs;
}

core::StatusOr<std::vector<GenDoc>> LoadGenTask(std::string_view task, const std::string& data_path,
                                                const TaskOptions& options) {
  ARLE_ASSIGN_OR_RETURN(const TaskSpec* spec, FindSpec(task));
  if (spec->info.kind != TaskKind::kGenerate) {
    return core::InvalidArgumentError(
        fmt::format("{} is a multiple-choice task: load it with LoadMcTask", spec->info.name));
  }
  const int shots = ResolveShots(*spec, options);
  if (spec->id == TaskId::kHumaneval && shots > 0) {
    return core::InvalidArgumentError(fmt::format(
        "humaneval is zero-shot (the harness has only its test split), got {} shots", shots));
  }
  std::vector<Record> records;
  ARLE_ASSIGN_OR_RETURN(const std::vector<GenItem> items, LoadGenItems(*spec, data_path, records));

  Pool<GenItem> pool;
  pool.docs = &items;
  pool.name = data_path;
  if (shots > 0) {
    if (!options.fewshot_data.empty() && options.fewshot_data != data_path) {
      ARLE_ASSIGN_OR_RETURN(pool.items, LoadGenItems(*spec, options.fewshot_data, pool.records));
      pool.docs = &pool.items;
      pool.is_eval_file = false;
      pool.name = options.fewshot_data;
    } else if (spec->id == TaskId::kGsm8k && options.fewshot_data.empty()) {
      return core::InvalidArgumentError(
          fmt::format("gsm8k: {}-shot needs the train split's examples", shots),
          "set the few-shot data to gsm8k's train.jsonl, or use 0 shots");
    }
  }

  std::vector<std::string> until;
  switch (spec->id) {
    case TaskId::kGsm8k:
      until = {"Question:", "</s>", "<|im_end|>"};
      break;
    case TaskId::kHumaneval:
      until = {"\nclass", "\ndef", "\n#", "\nif", "\nprint"};
      break;
    default:
      until = {"Problem:"};
      break;
  }

  PythonRandom rnd(options.seed);
  const bool drop_doc = pool.is_eval_file || spec->extra_draw_for_any_pool;
  std::vector<GenDoc> docs;
  const size_t n = DocCount(items.size(), options);
  docs.reserve(n);
  for (size_t d = 0; d < n; ++d) {
    const GenItem& item = items[d];
    GenDoc doc;
    if (shots > 0) {
      ARLE_ASSIGN_OR_RETURN(const std::vector<const GenItem*> examples,
                            SampleExamples(rnd, pool, item, shots, drop_doc, spec->info.name));
      for (const GenItem* e : examples) doc.prompt += GenExample(*e);
    }
    doc.prompt += item.text;
    doc.id = item.id;
    doc.until = until;
    doc.reference = item.reference;
    doc.test = item.test;
    doc.entry_point = item.entry_point;
    doc.humaneval_prompt = item.humaneval_prompt;
    docs.push_back(std::move(doc));
  }
  return docs;
}

}  // namespace arle::eval
