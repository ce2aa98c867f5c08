// `arle template render`: prints a conversation rendered with the model's chat template, exactly
// (no trailing newline added), for checking prompts byte for byte.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>

#include "apps/arle/commands.h"
#include "apps/arle/model_source.h"
#include "arle/core/file_util.h"
#include "arle/tokenizer/chat_prompt.h"

namespace arle::app {
namespace {

core::StatusOr<nlohmann::ordered_json> ReadJsonFile(const std::string& path) {
  ARLE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(path));
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(text, nullptr, false);
  if (j.is_discarded()) return core::InvalidArgumentError(path + ": not valid JSON");
  return j;
}

}  // namespace

void RegisterTemplateCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("template", "Chat templates");
  cmd->require_subcommand(1);
  CLI::App* render = cmd->add_subcommand("render", "Render a conversation with the chat template");
  static std::string model, messages_file, tools_file, chat_template, enable_thinking;
  static bool no_generation_prompt = false;
  render->add_option("-m,--model", model, "Model (default: built-in)");
  render->add_option("--messages", messages_file, "JSON file: an array of messages")->required();
  render->add_option("--tools", tools_file, "JSON file: an array of tools (OpenAI format)");
  render->add_flag("--no-generation-prompt", no_generation_prompt,
                   "Do not append the assistant turn opener");
  render->add_option("--enable-thinking", enable_thinking, "true | false (Qwen3 templates)");
  render->add_option("--chat-template", chat_template, "Template file overriding the model's");
  render->callback([&exit_code] {
    auto run = [&]() -> core::Status {
      ARLE_ASSIGN_OR_RETURN(ModelLocation location, ResolveModel(model));
      ARLE_ASSIGN_OR_RETURN(auto tok, LoadTokenizerOnly(model));
      ARLE_ASSIGN_OR_RETURN(tokenizer::ChatSetup setup,
                            tokenizer::LoadChatSetup(location, *tok, chat_template));
      ARLE_ASSIGN_OR_RETURN(nlohmann::ordered_json messages, ReadJsonFile(messages_file));
      nlohmann::ordered_json tools;
      if (!tools_file.empty()) {
        ARLE_ASSIGN_OR_RETURN(tools, ReadJsonFile(tools_file));
      }
      ARLE_ASSIGN_OR_RETURN(nlohmann::ordered_json kwargs,
                            tokenizer::ThinkingKwargs(enable_thinking));
      ARLE_ASSIGN_OR_RETURN(
          std::string prompt,
          tokenizer::RenderChat(setup, messages, tools, !no_generation_prompt, kwargs));
      std::fwrite(prompt.data(), 1, prompt.size(), stdout);
      return core::OkStatus();
    };
    core::Status status = run();
    if (!status.ok()) exit_code = ReportError(status);
  });
}

}  // namespace arle::app
