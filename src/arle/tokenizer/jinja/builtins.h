// arle::tokenizer::jinja built-ins: filters, tests, attribute/item access (incl. str and dict
// methods), operators, iteration and the renderer entry point. Internal to the engine.
#pragma once

#include <string>
#include <vector>

#include "arle/tokenizer/jinja/ast.h"
#include "arle/tokenizer/jinja/value.h"

namespace arle::tokenizer::jinja {

// Applies filter `name` (jinja2 semantics); throws Error for unknown filters or bad operands.
Value CallFilter(const std::string& name, const Value& v, Args& args);
// Applies test `name`; throws Error for unknown tests.
bool CallTest(const std::string& name, const Value& v, Args& args);
// obj.name (attribute first, then item, as jinja2's getattr); Undefined when missing.
Value GetAttr(const Value& obj, const std::string& name, int line);
// obj[key] (item first, then attribute, as jinja2's getitem); Undefined when missing.
Value GetItem(const Value& obj, const Value& key, int line);
// Python slice obj[start:stop:step] of a list or str.
Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line);
// Binary operator (+ - * / // % ** ~ == != < <= > >= in, not in).
Value BinaryOp(const std::string& op, const Value& a, const Value& b, int line);
// The items `for` iterates over (dict: keys, str: code points, undefined: none).
std::vector<Value> Iterate(const Value& v, int line);
// Python len(); throws Error when v has none.
int64_t Length(const Value& v, int line);
// Error for using an undefined value where jinja2 raises UndefinedError.
[[noreturn]] void FailUndefined(const Value& v, int line);

// Renders a parsed template with `context` (a dict) and the chat-template globals
// (raise_exception, namespace, range, dict). Throws Error.
std::string RenderTemplate(const Template& tpl, const Value& context);

}  // namespace arle::tokenizer::jinja
