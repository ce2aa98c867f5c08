// `arle data convert`: alpaca / dolly / sharegpt / chat datasets to canonical chat JSONL
// (the conversion itself is train/data_convert); `arle data gen-tasks`: synthetic RL tasks
// (rl/rl_tasks).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "apps/arle/commands.h"
#include "arle/core/file_util.h"
#include "arle/rl/rl_tasks.h"
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

  CLI::App* gen = data->add_subcommand(
      "gen-tasks",
      "Generate synthetic RL tasks (JSONL {\"id\", \"prompt\", \"answer\"}) for arle train "
      "grpo; the train and heldout splits never share a problem");
  static rl::TaskGenOptions gen_options;
  static std::string gen_split = "train", gen_out;
  gen->add_option(
         "--kind", gen_options.kind,
         "arithmetic (a + b, a - b, a * b), add-sub (a + b, a - b) or multiplication (a * b, "
         "large operands)")
      ->required();
  gen->add_option("--n", gen_options.n, "Number of distinct tasks")->required();
  gen->add_option("--seed", gen_options.seed, "Random seed (the same seed gives the same tasks)")
      ->default_val(0);
  gen->add_option("--split", gen_split, "train or heldout (decided by a hash of each problem)")
      ->default_val("train");
  gen->add_option("--out", gen_out, "Output .jsonl file (written atomically)")->required();
  gen->add_option("--digits", gen_options.digits,
                  "Digits per operand (default: arithmetic and add-sub 2, multiplication 3)");
  static bool gen_sft = false;
  gen->add_flag("--sft", gen_sft,
                "Write supervised chats ({\"messages\": [user prompt, assistant answer]}) for arle "
                "train sft instead of tasks");
  static double gen_sft_tools = -1;
  gen->add_option("--sft-tools", gen_sft_tools,
                  "Write supervised chats with the agent's tools in which this share of the tasks "
                  "(0..1) is solved with a python call, the rest answered directly (a warm-up "
                  "for arle train multi-turn)")
      ->check(CLI::Range(0.0, 1.0))
      ->excludes("--sft");
  static bool gen_text = false;
  gen->add_flag("--text", gen_text,
                "Write pretraining text ({\"text\": \"PROMPT ANSWER\"}) for arle train pretrain "
                "instead of tasks")
      ->excludes("--sft")
      ->excludes("--sft-tools");
  gen->add_option("--digits-b", gen_options.digits_b,
                  "multiplication: digits of the second operand (default: --digits)");
  gen->callback([&exit_code] {
    auto split = rl::ParseTaskSplit(gen_split);
    if (!split.ok()) {
      exit_code = ReportError(split.status());
      return;
    }
    gen_options.split = *split;
    auto tasks = rl::GenerateTasks(gen_options);
    if (!tasks.ok()) {
      exit_code = ReportError(tasks.status());
      return;
    }
    std::string text;
    if (gen_sft_tools >= 0) {
      auto chats = rl::TasksToToolSftJsonl(*tasks, gen_sft_tools);
      if (!chats.ok()) {
        exit_code = ReportError(chats.status());
        return;
      }
      text = std::move(chats).value();
    } else {
      text = gen_sft    ? rl::TasksToSftJsonl(*tasks)
             : gen_text ? rl::TasksToTextJsonl(*tasks)
                        : rl::TasksToJsonl(*tasks);
    }
    if (core::Status s = core::WriteFileAtomic(gen_out, text); !s.ok()) {
      exit_code = ReportError(s);
      return;
    }
    fmt::print(stderr, "arle: wrote {} {} tasks ({} split, seed {}) -> {}\n", tasks->size(),
               gen_options.kind, rl::TaskSplitName(gen_options.split), gen_options.seed, gen_out);
  });
}

}  // namespace arle::app
