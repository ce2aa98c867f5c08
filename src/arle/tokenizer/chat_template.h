// arle::tokenizer::ChatTemplate: a Hugging Face chat template (Jinja) parsed once and rendered the
// way transformers renders it (jinja2 ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
// loop controls, tojson = json.dumps(ensure_ascii=False), raise_exception).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "arle/core/status.h"

namespace arle::tokenizer {

namespace jinja {
struct Template;
}

class ChatTemplate {
 public:
  // Parses `source`. `name` labels error messages ("<name>:<line>: ..."). Returns InvalidArgument
  // on a syntax error (naming the line).
  static core::StatusOr<ChatTemplate> Parse(std::string_view source, const std::string& name);

  // Renders with `context_json`, a JSON object whose members become template variables (messages,
  // tools, add_generation_prompt, enable_thinking, bos_token, eos_token, ...; object member order is
  // kept, as tojson prints it). Returns InvalidArgument naming the template and line for
  // raise_exception(msg) (the message is included verbatim), undefined values used in strict places,
  // type errors, or execution limits. Thread safety: const, safe to call concurrently.
  core::StatusOr<std::string> Render(std::string_view context_json) const;

  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::shared_ptr<const jinja::Template> tpl_;
};

}  // namespace arle::tokenizer
