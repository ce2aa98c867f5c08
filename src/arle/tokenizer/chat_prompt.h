// Chat prompts of a model: finds its chat template (tokenizer_config.json's
// `chat_template`, a `chat_template.jinja` file, GGUF `tokenizer.chat_template`, or a
// --chat-template FILE override) and renders conversations with it. Models without a template
// (the built-in stories260K) get the documented plain fallback: message contents joined by "\n".
#pragma once

#include <nlohmann/json_fwd.hpp>  // declarations only; callers building JSON include json.hpp

#include <optional>
#include <string>
#include <string_view>

#include "arle/core/status.h"
#include "arle/io/gguf.h"
#include "arle/io/hf_config.h"
#include "arle/io/model_location.h"
#include "arle/tokenizer/chat_template.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::tokenizer {

// The fallback template for models that ship none.
inline constexpr std::string_view kFallbackChatTemplate =
    "{%- for message in messages %}{{ message['content'] }}"
    "{% if not loop.last %}{{ '\\n' }}{% endif %}{% endfor %}";

struct ChatSetup {
  ChatTemplate chat_template;
  std::string source;  // where the template came from
  bool is_fallback = false;
  std::string bos_token;  // special-token strings passed to the template, as transformers does
  std::string eos_token;
};

// Loads the template for `location` (override_file wins when non-empty). `gguf` is the already
// parsed file of a GGUF model, if the caller has it; otherwise the file is opened here.
core::StatusOr<ChatSetup> LoadChatSetup(const io::ModelLocation& location,
                                        const Tokenizer& tokenizer,
                                        const std::string& override_file,
                                        const io::GgufFile* gguf = nullptr);


// The extra template variables of the --enable-thinking flag: {} when `enable_thinking` is
// empty, {"enable_thinking": bool} for "true"/"1" or "false"/"0", InvalidArgument otherwise.
core::StatusOr<nlohmann::ordered_json> ThinkingKwargs(const std::string& enable_thinking);

// Renders `messages` (a JSON array, member order kept) with optional `tools` (array or null) and
// extra template variables `kwargs` (an object, e.g. {"enable_thinking": false}).
core::StatusOr<std::string> RenderChat(const ChatSetup& setup,
                                       const nlohmann::ordered_json& messages,
                                       const nlohmann::ordered_json& tools,
                                       bool add_generation_prompt,
                                       const nlohmann::ordered_json& kwargs);

}  // namespace arle::tokenizer
