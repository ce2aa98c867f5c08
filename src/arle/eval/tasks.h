// Evaluation tasks as EleutherAI's lm-evaluation-harness defines them (lm_eval/tasks/*, and
// lm_eval/api/task.py + samplers.py for how a prompt is assembled): the registry of tasks, and
// loaders that turn a data file into the harness's log-likelihood requests (multiple choice) or
// completion prompts (generative), few-shot examples included. Pure text: no tokenizer, no model.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "arle/core/status.h"

namespace arle::eval {

// log P(continuation | context). The continuation starts with the target delimiter " ".
struct LoglikelihoodRequest {
  std::string context;
  std::string continuation;
};

// One multiple-choice question.
struct McDoc {
  std::string id;  // the data's id field (see TaskInfo::data_fields_doc), else "<file name>:<line>"
  std::vector<LoglikelihoodRequest> requests;  // one per choice, in choice order
  // The harness's doc_to_choice strings (acc_norm divides each log-likelihood by the length of its
  // choice in characters, i.e. Unicode code points). For winogrande these are the two contexts
  // (sentence up to the blank + option), which is what the harness measures too.
  std::vector<std::string> choices;
  int gold = 0;  // index into choices
};

// One generative problem.
struct GenDoc {
  std::string id;
  std::string prompt;              // completion-style prompt, few-shot examples included
  std::vector<std::string> until;  // the task's stop strings
  // gsm8k: the doc's `answer` field (the worked solution ending in "#### N"); math: the last
  // \boxed{} answer of the doc's `solution` (the harness's process_docs), else its `answer`;
  // humaneval: "".
  std::string reference;
  std::string test;              // humaneval: the test code (defines check(candidate))
  std::string entry_point;       // humaneval: the function check() is called with
  std::string humaneval_prompt;  // humaneval: the doc's prompt (the program starts with it)
};

struct TaskOptions {
  int shots = -1;            // few-shot examples per doc; < 0: the task's default_shots
  uint64_t seed = 1234;      // the harness's --fewshot_random_seed (one random.Random per task)
  std::string fewshot_data;  // file of few-shot examples; "": the task's default pool (below)
  int64_t limit = -1;        // keep the first `limit` docs; < 0: all
};

enum class TaskKind { kMultipleChoice, kGenerate };

struct TaskInfo {
  std::string name;
  TaskKind kind;
  std::string metrics_note;     // what the harness reports for it and how
  int default_shots;            // the harness's num_fewshot for it
  std::string data_fields_doc;  // the files and fields it reads
  std::string harness_task;     // the harness task (yaml) it reproduces
};

// hellaswag arc_easy arc_challenge mmlu winogrande gsm8k humaneval math, in that order.
const std::vector<TaskInfo>& Tasks();
// The task named `name`; InvalidArgument listing the known names otherwise.
core::StatusOr<const TaskInfo*> FindTask(std::string_view name);

// Few-shot examples, as the harness picks them (a prompt is description + examples, each
// doc_to_text + " " + target + "\n\n", + doc_to_text of the doc):
//  - mmlu: the first `shots` records of `fewshot_data` (the dev split, mmlu_dev.jsonl or
//    SUBJECT_dev.csv) with the doc's subject, in file order (the harness's first_n sampler).
//    Required when shots > 0; InvalidArgument when a subject has fewer than `shots` records.
//  - gsm8k: random.Random(seed).sample of `fewshot_data` (the train split, train.jsonl);
//    required when shots > 0.
//  - humaneval: zero-shot only.
//  - the others: `fewshot_data` when given, else the evaluated file itself.
// The random draws use one PythonRandom(seed) per call, over the docs in file order, so `limit`
// keeps exactly the first docs of an unlimited run. When the pool is the evaluated file (no
// `fewshot_data`, or the same path) the sampler draws shots + 1 and drops records equal to the
// doc (the harness's rule for a few-shot split equal to the test split); hellaswag and winogrande
// do so for any pool, because their harness configs have neither a few-shot nor a test split and
// None == None.
//
// Formats are the harness's (TaskInfo::harness_task). Where it cannot read a file arle can:
// llama.cpp's HellaSwag text keeps "activity_label: ctx" joined, so the query is preprocess(that
// line) without the harness's ctx_b.capitalize(); MMLU's original CSV takes its subject from the
// file name; a MATH record without a \boxed{} solution uses its `answer` (numbers as Python's str).
//
// Errors (core::Status naming the file, the 1-based line or record and the field): the file
// cannot be read or parsed (task_data.h), a required field is missing or of the wrong type,
// choices are empty, a gold label is out of range, a task of the other kind or an unknown task
// (InvalidArgument listing the known ones), or too few few-shot examples.
core::StatusOr<std::vector<McDoc>> LoadMcTask(std::string_view task, const std::string& data_path,
                                              const TaskOptions& options);
core::StatusOr<std::vector<GenDoc>> LoadGenTask(std::string_view task, const std::string& data_path,
                                                const TaskOptions& options);

// The harness's text helpers of the task formats.
// Python's str.strip(): drops leading and trailing characters for which str.isspace() is true
// (ASCII whitespace, U+001C..U+001F, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
// U+202F, U+205F, U+3000).
std::string PythonStrip(std::string_view s);
// Python's str.rstrip(): the same, trailing characters only.
std::string PythonRStrip(std::string_view s);
// Python's str.capitalize(): the first character title-cased, the rest lower-cased (full Unicode
// mappings, Greek final sigma included).
std::string PythonCapitalize(std::string_view s);
// hellaswag's utils.preprocess: strip, " [title]" -> ". ", drop "[...]" (no newline inside), then
// one pass of "  " -> " ".
std::string HellaswagPreprocess(std::string_view text);
// (MATH's boxed answers: MathReferenceAnswer in answer_extraction.h.)

}  // namespace arle::eval
