// ChatTemplate: the Status-returning boundary around the Jinja engine (engine errors are
// exceptions internal to the engine; none escapes this file).
#include "arle/tokenizer/chat_template.h"

#include <exception>

#include "arle/tokenizer/jinja/ast.h"
#include "arle/tokenizer/jinja/builtins.h"

namespace arle::tokenizer {
namespace {
core::Status ToStatus(const std::string& name, const jinja::Error& e, const char* what) {
  std::string where = name + (e.line > 0 ? ":" + std::to_string(e.line) : std::string());
  return core::InvalidArgumentError("chat template " + where + ": " + what + ": " + e.message);
}
}  // namespace

core::StatusOr<ChatTemplate> ChatTemplate::Parse(std::string_view source, const std::string& name) {
  ChatTemplate t;
  t.name_ = name;
  try {
    t.tpl_ = jinja::ParseTemplate(source);
  } catch (const jinja::Error& e) {
    return ToStatus(name, e, "syntax error");
  } catch (const std::exception& e) {
    return core::InvalidArgumentError("chat template " + name + ": " + e.what());
  }
  return t;
}

core::StatusOr<std::string> ChatTemplate::Render(std::string_view context_json) const {
  try {
    jinja::Value context = jinja::FromJsonText(context_json);
    if (context.kind != jinja::Kind::kDict) {
      return core::InvalidArgumentError("chat template " + name_ + ": context must be a JSON object");
    }
    return jinja::RenderTemplate(*tpl_, context);
  } catch (const jinja::Error& e) {
    return ToStatus(name_, e, "render error");
  } catch (const std::exception& e) {
    return core::InvalidArgumentError("chat template " + name_ + ": " + e.what());
  }
}

}  // namespace arle::tokenizer
