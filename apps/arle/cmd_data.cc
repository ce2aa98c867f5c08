// `arle data convert`: alpaca / dolly / sharegpt / chat datasets to canonical chat JSONL
// (the conversion itself is train/data_convert).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>

#include "apps/arle/commands.h"
#include "arle/core/file_util.h"
#include "arle/train/data_convert.h"

namespace arle::app {

void RegisterDataCommand(CLI::App& app, int& exit_code) {
  CLI::App* data = app.add_subcommand("data", "Prepare training datasets");
  data->require_subcommand(1);
  CLI::App* convert = data->add_subcommand(
      "convert", "Convert a dataset to chat JSONL ({\"messages\": [{\"role\", \"content\"}]})");
  static std::string input, format, output;
  convert->add_option("--input", input, "Input file: JSON Lines, or one JSON array")->required();
  convert->add_option("--format", format, "Input layout: chat, alpaca, dolly or sharegpt")
      ->required();
  convert->add_option("--output", output, "Output .jsonl file (default: stdout)");
  convert->callback([&exit_code] {
    auto kind = train::ParseDatasetFormat(format);
    if (!kind.ok()) {
      exit_code = ReportError(kind.status());
      return;
    }
    auto result = train::ConvertDatasetFile(input, *kind);
    if (!result.ok()) {
      exit_code = ReportError(result.status());
      return;
    }
    for (const train::ConvertIssue& issue : result->skipped) {
      fmt::print(stderr, "arle: warning: {}:{}: skipped: {}\n", input, issue.line, issue.message);
    }
    if (output.empty()) {
      std::fwrite(result->jsonl.data(), 1, result->jsonl.size(), stdout);
      std::fflush(stdout);
    } else if (core::Status s = core::WriteFileAtomic(output, result->jsonl); !s.ok()) {
      exit_code = ReportError(s);
      return;
    }
    fmt::print(stderr, "arle: converted {} records, skipped {}{}\n", result->n_converted,
               result->skipped.size(), output.empty() ? "" : " -> " + output);
    if (result->n_converted == 0) {
      exit_code = ReportError(core::InvalidArgumentError(
          input + ": no record could be converted", "check --format against the file's fields"));
    }
  });
}

}  // namespace arle::app
