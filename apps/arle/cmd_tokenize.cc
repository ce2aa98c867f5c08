// `arle tokenize`: text to token ids with a model's tokenizer.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apps/arle/commands.h"
#include "apps/arle/model_source.h"
#include "arle/core/file_util.h"

namespace arle::app {

void RegisterTokenizeCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  static std::string model, text, file;
  static bool json = false, no_special = false, no_parse_special = false;
  cmd->add_option("-m,--model", model, "Model directory, .gguf file or ORG/NAME (default: built-in)");
  auto* text_opt = cmd->add_option("--text", text, "Text to tokenize");
  auto* file_opt = cmd->add_option("--file", file, "File whose contents to tokenize");
  text_opt->excludes(file_opt);
  cmd->add_flag("--json", json, "Print {\"ids\": [...], \"tokens\": [...]}");
  cmd->add_flag("--no-add-special", no_special, "Do not add BOS or other template tokens");
  cmd->add_flag("--no-parse-special", no_parse_special,
                "Treat special-token text such as <|im_start|> as plain text");
  cmd->callback([&exit_code, text_opt, file_opt] {
    if (text_opt->count() == 0 && file_opt->count() == 0) {
      exit_code = ReportError(core::InvalidArgumentError("give --text or --file"));
      return;
    }
    std::string input = text;
    if (file_opt->count() > 0) {
      auto data = core::ReadFile(file);
      if (!data.ok()) {
        exit_code = ReportError(data.status());
        return;
      }
      input = std::move(data).value();
    }
    auto tok = LoadTokenizerOnly(model);
    if (!tok.ok()) {
      exit_code = ReportError(tok.status());
      return;
    }
    tokenizer::EncodeOptions options;
    options.add_special_tokens = !no_special;
    options.parse_special = !no_parse_special;
    const std::vector<int32_t> ids = (*tok)->Encode(input, options);
    if (json) {
      nlohmann::json out;
      out["ids"] = ids;
      nlohmann::json tokens = nlohmann::json::array();
      for (int32_t id : ids) tokens.push_back(std::string((*tok)->IdToToken(id)));
      out["tokens"] = tokens;
      fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      fmt::print("{}\n", fmt::join(ids, " "));
    }
  });
}

}  // namespace arle::app
