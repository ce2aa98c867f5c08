// Chat template discovery and rendering.
#include "arle/tokenizer/chat_prompt.h"

#include <nlohmann/json.hpp>


#include "arle/core/file_util.h"
#include "arle/io/gguf.h"

namespace arle::tokenizer {
namespace {

// tokenizer_config.json's chat_template: a string, or a list of {"name", "template"} from which
// transformers takes "default" (else the only one).
core::StatusOr<std::optional<std::string>> TemplateFromTokenizerConfig(const std::string& path) {
  if (!core::FileExists(path)) return std::optional<std::string>();
  ARLE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(path));
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return core::InvalidArgumentError(path + ": not a JSON object");
  }
  if (!j.contains("chat_template") || j["chat_template"].is_null()) {
    return std::optional<std::string>();
  }
  const nlohmann::json& t = j["chat_template"];
  if (t.is_string()) return std::optional<std::string>(t.get<std::string>());
  if (t.is_array()) {
    const nlohmann::json* chosen = nullptr;
    for (const auto& item : t) {
      if (!item.is_object() || !item.contains("template") || !item["template"].is_string()) {
        return core::InvalidArgumentError(
            path + ": chat_template list entries need a \"template\" string");
      }
      if (item.value("name", "") == "default" || t.size() == 1) chosen = &item;
    }
    if (chosen == nullptr) {
      return core::InvalidArgumentError(path + ": chat_template list has no \"default\" entry",
                                        "pass --chat-template FILE");
    }
    return std::optional<std::string>((*chosen)["template"].get<std::string>());
  }
  return core::InvalidArgumentError(path + ": chat_template must be a string or a list");
}

std::string SpecialTokenString(const std::string& config_path, const char* key) {
  if (!core::FileExists(config_path)) return {};
  auto text = core::ReadFile(config_path);
  if (!text.ok()) return {};
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains(key)) return {};
  const nlohmann::json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return {};
}

}  // namespace

core::StatusOr<ChatSetup> LoadChatSetup(const io::ModelLocation& location,
                                        const Tokenizer& tokenizer,
                                        const std::string& override_file,
                                        const io::GgufFile* gguf) {
  std::optional<std::string> source_text;
  std::string source;
  if (!override_file.empty()) {
    ARLE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(override_file));
    source_text = std::move(text);
    source = override_file;
  } else if (location.kind == io::ModelLocation::Kind::kHfDirectory) {
    const std::string jinja_file = core::JoinPath(location.path, "chat_template.jinja");
    if (core::FileExists(jinja_file)) {
      ARLE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(jinja_file));
      source_text = std::move(text);
      source = jinja_file;
    } else {
      const std::string config = core::JoinPath(location.path, "tokenizer_config.json");
      ARLE_ASSIGN_OR_RETURN(source_text, TemplateFromTokenizerConfig(config));
      source = config;
    }
  } else if (location.kind == io::ModelLocation::Kind::kGguf) {
    std::optional<io::GgufFile> opened;
    if (gguf == nullptr) {
      ARLE_ASSIGN_OR_RETURN(opened, io::GgufFile::Open(location.path));
      gguf = &*opened;
    }
    if (gguf->Find("tokenizer.chat_template") != nullptr) {
      ARLE_ASSIGN_OR_RETURN(std::string text, gguf->GetString("tokenizer.chat_template"));
      source_text = std::move(text);
      source = location.path + " (tokenizer.chat_template)";
    }
  }
  ChatSetup setup;
  if (!source_text) {
    source_text = std::string(kFallbackChatTemplate);
    source = "built-in fallback (message contents joined by newlines)";
    setup.is_fallback = true;
  }
  ARLE_ASSIGN_OR_RETURN(setup.chat_template, ChatTemplate::Parse(*source_text, source));
  setup.source = source;
  if (location.kind == io::ModelLocation::Kind::kHfDirectory) {
    const std::string config = core::JoinPath(location.path, "tokenizer_config.json");
    setup.bos_token = SpecialTokenString(config, "bos_token");
    setup.eos_token = SpecialTokenString(config, "eos_token");
  }
  if (setup.bos_token.empty() && tokenizer.bos_id()) {
    setup.bos_token = std::string(tokenizer.IdToToken(*tokenizer.bos_id()));
  }
  if (setup.eos_token.empty() && tokenizer.eos_id()) {
    setup.eos_token = std::string(tokenizer.IdToToken(*tokenizer.eos_id()));
  }
  return setup;
}

core::StatusOr<nlohmann::ordered_json> ThinkingKwargs(const std::string& enable_thinking) {
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
  if (enable_thinking.empty()) return kwargs;
  if (enable_thinking == "true" || enable_thinking == "1") {
    kwargs["enable_thinking"] = true;
  } else if (enable_thinking == "false" || enable_thinking == "0") {
    kwargs["enable_thinking"] = false;
  } else {
    return core::InvalidArgumentError("--enable-thinking must be true or false, got '" +
                                      enable_thinking + "'");
  }
  return kwargs;
}

core::StatusOr<std::string> RenderChat(const ChatSetup& setup,
                                       const nlohmann::ordered_json& messages,
                                       const nlohmann::ordered_json& tools,
                                       bool add_generation_prompt,
                                       const nlohmann::ordered_json& kwargs) {
  if (!messages.is_array()) return core::InvalidArgumentError("messages must be a JSON array");
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  context["messages"] = messages;
  if (!tools.is_null()) {
    if (!tools.is_array()) return core::InvalidArgumentError("tools must be a JSON array");
    context["tools"] = tools;
  }
  context["add_generation_prompt"] = add_generation_prompt;
  context["bos_token"] = setup.bos_token;
  context["eos_token"] = setup.eos_token;
  if (kwargs.is_object()) {
    for (const auto& [key, value] : kwargs.items()) context[key] = value;
  }
  return setup.chat_template.Render(
      context.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

}  // namespace arle::tokenizer
