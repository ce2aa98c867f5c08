// Chat-shaped parameters shared by the OpenAI request parsers: content flattening, message
// normalization for the chat template, tools, template kwargs and the text-only format switches.
#include <fmt/format.h>

#include "arle/server/openai_fields.h"

namespace arle::server::openai_fields {

// string-content templates (parts joined by "\n").
MaybeError FlattenContent(const Json& content, const std::string& param,
                          std::initializer_list<std::string_view> text_types, std::string* out) {
  if (content.is_string()) {
    *out = content.get<std::string>();
    return std::nullopt;
  }
  if (!content.is_array()) return TypeMismatch(param, "a string or an array of content parts", content);
  out->clear();
  for (size_t k = 0; k < content.size(); ++k) {
    const Json& part = content[k];
    const std::string pp = fmt::format("{}[{}]", param, k);
    if (!part.is_object()) return TypeMismatch(pp, "an object", part);
    auto type = part.find("type");
    if (type == part.end()) return Missing(pp + ".type");
    if (!type->is_string()) return TypeMismatch(pp + ".type", "a string", *type);
    const std::string t = type->get<std::string>();
    bool is_text = false;
    for (std::string_view tt : text_types) is_text |= t == tt;
    if (!is_text) {
      return Invalid(fmt::format("Content parts of type '{}' are not supported: arle serves "
                                 "text-only models ('{}')",
                                 t, pp + ".type"),
                     pp + ".type");
    }
    auto text = part.find("text");
    if (text == part.end()) return Missing(pp + ".text");
    if (!text->is_string()) return TypeMismatch(pp + ".text", "a string", *text);
    for (auto it = part.begin(); it != part.end(); ++it) {
      if (it.key() != "type" && it.key() != "text" && it.key() != "annotations") {
        const std::string kp = pp + "." + it.key();
        return Invalid(fmt::format("Unrecognized request argument supplied: {}", kp), kp);
      }
    }
    if (k > 0) out->push_back('\n');
    out->append(text->get<std::string>());
  }
  return std::nullopt;
}

namespace {

MaybeError CheckToolCalls(const Json& calls, const std::string& param) {
  if (!calls.is_array()) return TypeMismatch(param, "an array", calls);
  for (size_t k = 0; k < calls.size(); ++k) {
    const Json& c = calls[k];
    const std::string cp = fmt::format("{}[{}]", param, k);
    if (!c.is_object()) return TypeMismatch(cp, "an object", c);
    if (auto t = c.find("type"); t != c.end() && !(t->is_string() && *t == "function")) {
      return Invalid(fmt::format("Invalid value for '{}.type': only 'function' tool calls are "
                                 "supported",
                                 cp),
                     cp + ".type");
    }
    if (auto id = c.find("id"); id != c.end() && !id->is_string()) {
      return TypeMismatch(cp + ".id", "a string", *id);
    }
    auto f = c.find("function");
    if (f == c.end()) return Missing(cp + ".function");
    if (!f->is_object()) return TypeMismatch(cp + ".function", "an object", *f);
    auto name = f->find("name");
    if (name == f->end()) return Missing(cp + ".function.name");
    if (!name->is_string()) return TypeMismatch(cp + ".function.name", "a string", *name);
    auto args = f->find("arguments");
    if (args == f->end()) return Missing(cp + ".function.arguments");
    if (!args->is_string() && !args->is_object()) {
      return TypeMismatch(cp + ".function.arguments", "a string", *args);
    }
  }
  return std::nullopt;
}

}  // namespace

MaybeError NormalizeMessages(const Json& messages, Json* out) {
  if (!messages.is_array()) return TypeMismatch("messages", "an array", messages);
  if (messages.empty()) {
    return Invalid("Invalid 'messages': empty array. Expected an array with minimum length 1, but "
                   "got an empty array instead.",
                   "messages");
  }
  *out = Json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    const std::string mp = fmt::format("messages[{}]", i);
    if (!m.is_object()) return TypeMismatch(mp, "an object", m);
    auto role_it = m.find("role");
    if (role_it == m.end()) return Missing(mp + ".role");
    if (!role_it->is_string()) return TypeMismatch(mp + ".role", "a string", *role_it);
    std::string role = role_it->get<std::string>();
    if (role != "system" && role != "developer" && role != "user" && role != "assistant" &&
        role != "tool") {
      return Invalid(fmt::format("Invalid value: '{}'. Supported values are: 'system', 'assistant', "
                                 "'user', 'tool', and 'developer'.",
                                 role),
                     mp + ".role");
    }
    // OpenAI's "developer" is the system message of newer models; templates know "system".
    if (role == "developer") role = "system";
    Json msg = m;
    msg["role"] = role;
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      if (role != "assistant") return Missing(mp + ".content");
      // Templates such as Llama's trim the content; a null would render as "None".
      msg["content"] = "";
    } else {
      std::string text;
      ARLE_API_TRY(FlattenContent(*content, mp + ".content", {"text"}, &text));
      msg["content"] = std::move(text);
    }
    if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
      if (role != "assistant") {
        return Invalid(fmt::format("Invalid parameter: '{}.tool_calls' is only allowed on assistant "
                                   "messages",
                                   mp),
                       mp + ".tool_calls");
      }
      ARLE_API_TRY(CheckToolCalls(*tc, mp + ".tool_calls"));
    }
    if (role == "tool") {
      auto id = m.find("tool_call_id");
      if (id == m.end() || id->is_null()) return Missing(mp + ".tool_call_id");
      if (!id->is_string()) return TypeMismatch(mp + ".tool_call_id", "a string", *id);
    }
    if (auto name = m.find("name"); name != m.end() && !name->is_null() && !name->is_string()) {
      return TypeMismatch(mp + ".name", "a string", *name);
    }
    out->push_back(std::move(msg));
  }
  return std::nullopt;
}

MaybeError CheckTools(const Json& tools, std::vector<std::string>* names) {
  if (!tools.is_array()) return TypeMismatch("tools", "an array", tools);
  for (size_t k = 0; k < tools.size(); ++k) {
    const Json& t = tools[k];
    const std::string tp = fmt::format("tools[{}]", k);
    if (!t.is_object()) return TypeMismatch(tp, "an object", t);
    auto type = t.find("type");
    if (type == t.end()) return Missing(tp + ".type");
    if (!(type->is_string() && *type == "function")) {
      return Invalid(fmt::format("Invalid value for '{}.type': only 'function' tools are supported",
                                 tp),
                     tp + ".type");
    }
    auto f = t.find("function");
    if (f == t.end()) return Missing(tp + ".function");
    if (!f->is_object()) return TypeMismatch(tp + ".function", "an object", *f);
    auto name = f->find("name");
    if (name == f->end()) return Missing(tp + ".function.name");
    if (!name->is_string()) return TypeMismatch(tp + ".function.name", "a string", *name);
    if (name->get<std::string>().empty()) {
      return Invalid(fmt::format("Invalid '{}.function.name': empty string", tp),
                     tp + ".function.name");
    }
    if (auto d = f->find("description"); d != f->end() && !d->is_null() && !d->is_string()) {
      return TypeMismatch(tp + ".function.description", "a string", *d);
    }
    if (auto pr = f->find("parameters"); pr != f->end() && !pr->is_null() && !pr->is_object()) {
      return TypeMismatch(tp + ".function.parameters", "an object", *pr);
    }
    if (auto s = f->find("strict"); s != f->end() && !s->is_null() && !s->is_boolean()) {
      return TypeMismatch(tp + ".function.strict", "a boolean", *s);
    }
    names->push_back(name->get<std::string>());
  }
  return std::nullopt;
}

// chat_template_kwargs (an object) plus a top-level enable_thinking (which wins).
MaybeError ReadTemplateKwargs(ObjectReader& r, std::string* out) {
  Json kwargs = Json::object();
  if (const Json* k = r.Get("chat_template_kwargs")) {
    if (!k->is_object()) return TypeMismatch("chat_template_kwargs", "an object", *k);
    // These come from the request itself; a kwarg must not silently replace the conversation.
    for (const char* reserved : {"messages", "tools", "add_generation_prompt", "bos_token",
                                 "eos_token"}) {
      if (k->contains(reserved)) {
        const std::string param = fmt::format("chat_template_kwargs.{}", reserved);
        return Invalid(fmt::format("'{}' cannot be set through chat_template_kwargs", reserved), param);
      }
    }
    kwargs = *k;
  }
  std::optional<bool> thinking;
  ARLE_API_TRY(r.Bool("enable_thinking", &thinking));
  if (thinking) kwargs["enable_thinking"] = *thinking;
  *out = kwargs.dump();
  return std::nullopt;
}

MaybeError ReadResponseFormat(ObjectReader& r) {
  const Json* rf = r.Get("response_format");
  if (!rf) return std::nullopt;
  if (!rf->is_object()) return TypeMismatch("response_format", "an object", *rf);
  auto type = rf->find("type");
  if (type == rf->end() || !type->is_string()) return Missing("response_format.type");
  if (*type != "text" || rf->size() != 1) {
    return Unsupported("response_format",
                       fmt::format("only {{\"type\": \"text\"}} is supported, got type '{}' "
                                   "(structured output is not implemented yet)",
                                   type->get<std::string>()));
  }
  return std::nullopt;
}

// Keys OpenAI clients send that have no effect to implement as long as they keep their default.
MaybeError ReadStoreAndMetadata(ObjectReader& r) {
  std::optional<bool> store;
  ARLE_API_TRY(r.Bool("store", &store));
  if (store && *store) {
    return Unsupported("store", "arle keeps no completions for later retrieval; omit it or pass "
                                "false");
  }
  ARLE_API_TRY(r.RejectIfGiven("metadata", "it is only meaningful with store"));
  return std::nullopt;
}

}  // namespace arle::server::openai_fields
