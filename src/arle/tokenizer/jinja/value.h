// arle::tokenizer::jinja value model: the dynamic values a chat template computes with (Python-like
// none/bool/int/float/str/list/dict, jinja2 Undefined, namespaces and callables), their printing
// (Python str/repr) and JSON conversion (json.dumps(ensure_ascii=False) as transformers' tojson).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace arle::tokenizer::jinja {

// Thrown inside the engine only; ChatTemplate converts it to a core::Status at the module boundary.
struct Error {
  std::string message;
  int line = 0;
};
[[noreturn]] void Fail(std::string message, int line = 0);

struct Value;
using List = std::vector<Value>;
struct Dict;
struct Args;
using Function = std::function<Value(Args&)>;

enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

struct Value {
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // string value, or the name of an undefined value
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // dict and namespace
  std::shared_ptr<Function> fn;
  bool tuple = false;  // a list that prints as a Python tuple (items(), tuple literals)

  static Value Undefined(std::string name = {}) { Value v; v.s = std::move(name); return v; }
  static Value None() { Value v; v.kind = Kind::kNone; return v; }
  static Value Bool(bool x) { Value v; v.kind = Kind::kBool; v.b = x; return v; }
  static Value Int(int64_t x) { Value v; v.kind = Kind::kInt; v.i = x; return v; }
  static Value Float(double x) { Value v; v.kind = Kind::kFloat; v.f = x; return v; }
  static Value Str(std::string x) { Value v; v.kind = Kind::kString; v.s = std::move(x); return v; }
  static Value MakeList(List items = {});
  static Value MakeTuple(List items) { Value v = MakeList(std::move(items)); v.tuple = true; return v; }
  static Value MakeDict();
  static Value MakeNamespace();
  static Value Callable(Function f);

  bool IsUndefined() const { return kind == Kind::kUndefined; }
  bool IsNumber() const { return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool; }
  bool IsMapping() const { return kind == Kind::kDict; }
  bool Truthy() const;
  double AsDouble() const;
};

struct Dict {
  std::vector<std::pair<std::string, Value>> items;  // insertion-ordered, string keys
  const Value* Find(std::string_view key) const;
  void Set(const std::string& key, Value v);
};

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  int line = 0;
  // Returns positional i, else keyword `name`, else `def`.
  Value Get(size_t i, std::string_view name, Value def = Value::Undefined()) const;
};

// Python str(v) (jinja2 output of {{ v }}; undefined prints "").
std::string ToStr(const Value& v);
// Python repr(v).
std::string Repr(const Value& v);
// Python float repr (shortest round trip: 1.0, 1e-05, 1e+16).
std::string FloatRepr(double d);
// json.dumps(v, ensure_ascii=False, indent=indent) with default separators; indent < 0: none.
std::string ToJson(const Value& v, int indent = -1, int line = 0);
// Parses JSON text (object order kept) into a value; throws Error on bad JSON.
Value FromJsonText(std::string_view text);
// Python == between values.
bool Equal(const Value& a, const Value& b);
// Type name for messages ("str", "int", "dict object" ...).
std::string TypeName(const Value& v);

// UTF-8 helpers for str indexing (code points).
std::vector<std::string> SplitCodePoints(std::string_view s);

}  // namespace arle::tokenizer::jinja
