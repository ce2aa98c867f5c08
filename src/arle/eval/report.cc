#include "arle/eval/report.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "arle/io/atomic_writer.h"

namespace arle::eval {
namespace {

using Json = nlohmann::ordered_json;

// JSON has no NaN or infinity: they become null.
Json Number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

// Enough digits to compare runs: 4 decimals for large values (perplexities), 6 for the rest
// (accuracies, KL divergences), 6 significant digits for tiny or huge ones.
std::string Format(double v) {
  if (!std::isfinite(v)) return "n/a";
  const double a = std::fabs(v);
  if (a >= 2 && a < 1e15 && std::floor(v) == v) return fmt::format("{:.0f}", v);  // counts
  if (v != 0 && (a >= 1e9 || a < 1e-4)) return fmt::format("{:.6g}", v);
  return a >= 100 ? fmt::format("{:.4f}", v) : fmt::format("{:.6f}", v);
}

core::Status WriteFile(const std::string& path, std::string_view text) {
  ARLE_ASSIGN_OR_RETURN(io::AtomicFileWriter w, io::AtomicFileWriter::Create(path));
  ARLE_RETURN_IF_ERROR(w.Append(text));
  return w.Commit();
}

}  // namespace

std::string SummaryJson(const Summary& s) {
  Json j = {{"task", s.task}, {"model", s.model}};
  Json metrics = Json::object();
  for (const Metric& m : s.metrics) {
    metrics[m.name] = Number(m.value);
    if (m.stderr_.has_value()) metrics[m.name + "_stderr"] = Number(*m.stderr_);
  }
  j["metrics"] = std::move(metrics);
  j["samples"] = s.samples;
  j["seconds"] = Number(s.seconds);
  j["settings"] = Json::parse(s.settings_json, nullptr, false);
  if (j["settings"].is_discarded()) j["settings"] = Json::object();
  return j.dump();
}

std::string SummaryMarkdown(const Summary& s) {
  std::string out =
      fmt::format("### {} — {}\n\n| metric | value | stderr |\n|---|---:|---:|\n", s.task, s.model);
  for (const Metric& m : s.metrics) {
    out += fmt::format("| {} | {} | {} |\n", m.name, Format(m.value),
                       m.stderr_.has_value() ? Format(*m.stderr_) : "");
  }
  out += fmt::format("\n{} samples in {:.1f} s\n", s.samples, s.seconds);
  return out;
}

std::string SummaryText(const Summary& s) {
  size_t width = 6;
  for (const Metric& m : s.metrics) width = std::max(width, m.name.size());
  std::string out = fmt::format("{} — {}\n", s.task, s.model);
  for (const Metric& m : s.metrics) {
    out += fmt::format("  {:<{}}  {}", m.name, width, Format(m.value));
    if (m.stderr_.has_value()) out += fmt::format(" ± {}", Format(*m.stderr_));
    out += "\n";
  }
  out += fmt::format("  {} samples, {:.1f} s\n", s.samples, s.seconds);
  return out;
}

std::vector<std::string> McSampleLines(const std::vector<McDoc>& docs, const McReport& report) {
  std::vector<std::string> lines;
  for (size_t i = 0; i < docs.size() && i < report.docs.size(); ++i) {
    const McDoc& d = docs[i];
    const McDocResult& r = report.docs[i];
    Json requests = Json::array();
    for (const LoglikelihoodRequest& q : d.requests) {
      requests.push_back({{"context", q.context}, {"continuation", q.continuation}});
    }
    Json ll = Json::array();
    for (double v : r.loglikelihoods) ll.push_back(Number(v));
    Json j = {{"doc", i},
              {"id", d.id},
              {"requests", std::move(requests)},
              {"choices", d.choices},
              {"loglikelihoods", std::move(ll)},
              {"is_greedy", r.is_greedy},
              {"gold", d.gold},
              {"predicted", r.predicted},
              {"predicted_norm", r.predicted_norm},
              {"acc", r.correct ? 1 : 0}};
    if (report.has_acc_norm) j["acc_norm"] = r.correct_norm ? 1 : 0;
    lines.push_back(j.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  return lines;
}

std::vector<std::string> GenSampleLines(const std::vector<GenDoc>& docs, const GenReport& report) {
  std::vector<std::string> lines;
  for (size_t i = 0; i < docs.size() && i < report.docs.size(); ++i) {
    const GenDoc& d = docs[i];
    Json samples = Json::array();
    for (const GenSampleScore& s : report.docs[i].samples) {
      Json one = {{"completion", s.completion}, {"extracted", s.extracted}, {"correct", s.correct}};
      if (!s.extracted_flexible.empty()) {
        one["extracted_flexible"] = s.extracted_flexible;
        one["correct_flexible"] = s.correct_flexible;
      }
      if (!s.outcome.empty()) one["outcome"] = s.outcome;
      samples.push_back(std::move(one));
    }
    Json j = {{"doc", i},
              {"id", d.id},
              {"prompt", d.prompt},
              {"answer", d.reference},
              {"samples", std::move(samples)}};
    lines.push_back(j.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  return lines;
}

core::Status WriteReport(const std::string& dir, const Summary& summary,
                         const std::vector<std::string>& samples) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return core::IoError("cannot create " + dir + ": " + ec.message());
  ARLE_RETURN_IF_ERROR(WriteFile(dir + "/summary.json", SummaryJson(summary) + "\n"));
  ARLE_RETURN_IF_ERROR(WriteFile(dir + "/summary.md", SummaryMarkdown(summary)));
  if (!samples.empty()) {
    std::string text;
    for (const std::string& line : samples) text += line + "\n";
    ARLE_RETURN_IF_ERROR(WriteFile(dir + "/samples.jsonl", text));
  }
  return core::OkStatus();
}

}  // namespace arle::eval
