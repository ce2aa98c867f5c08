// Evaluation reports: one summary (task, model, metrics with standard errors, counts, settings)
// as JSON and as a Markdown table, and per-sample records as JSON Lines, written atomically
// into an output directory (summary.json, summary.md, samples.jsonl).
#pragma once

#include <string>
#include <vector>

#include "arle/core/status.h"
#include "arle/eval/runners.h"
#include "arle/eval/tasks.h"

namespace arle::eval {

struct Metric {
  std::string name;
  double value = 0;
  std::optional<double> stderr_;  // none for counts
};

struct Summary {
  std::string task;   // "ppl", "kld", "hellaswag", ...
  std::string model;  // what ran it (Backend::Describe, or the model spec)
  std::vector<Metric> metrics;
  std::string settings_json = "{}";  // the options, as a JSON object
  double seconds = 0;
  int64_t samples = 0;
};

std::string SummaryJson(const Summary& summary);      // one line
std::string SummaryMarkdown(const Summary& summary);  // a table with a heading line
// The plain table `arle eval` prints: one "name  value ± stderr" line per metric.
std::string SummaryText(const Summary& summary);

// One JSON object per document.
std::vector<std::string> McSampleLines(const std::vector<McDoc>& docs, const McReport& report);
std::vector<std::string> GenSampleLines(const std::vector<GenDoc>& docs, const GenReport& report);

// Writes DIR/summary.json, DIR/summary.md and (when `samples` is non-empty) DIR/samples.jsonl,
// creating DIR; each file atomically. IoError naming the file otherwise.
core::Status WriteReport(const std::string& dir, const Summary& summary,
                         const std::vector<std::string>& samples);

}  // namespace arle::eval
