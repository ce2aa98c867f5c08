// Built-ins of the Jinja engine: operators, attribute/item access with Python str and dict
// methods, and the jinja2 filters and tests chat templates use.
#include "arle/tokenizer/jinja/builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <unicase.h>

namespace arle::tokenizer::jinja {
namespace {

constexpr size_t kMaxString = 64u << 20;

bool IsPyWhite(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

std::string Strip(const std::string& s, const Value& chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (chars.kind == Kind::kString) {
    auto cps = SplitCodePoints(chars.s);
    auto starts = [&](size_t pos, size_t& n) {
      for (const auto& c : cps) if (s.compare(pos, c.size(), c) == 0) { n = c.size(); return true; }
      return false;
    };
    auto ends = [&](size_t end, size_t& n) {
      for (const auto& c : cps) if (end >= c.size() && s.compare(end - c.size(), c.size(), c) == 0) { n = c.size(); return true; }
      return false;
    };
    size_t n = 0;
    if (left) while (b < e && starts(b, n)) b += n;
    if (right) while (e > b && ends(e, n)) e -= n;
  } else {
    if (left) while (b < e && IsPyWhite(s[b])) ++b;
    if (right) while (e > b && IsPyWhite(s[e - 1])) --e;
  }
  return s.substr(b, e - b);
}

std::string Replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {
    auto cps = SplitCodePoints(s);
    int64_t n = 0;
    for (const auto& c : cps) {
      if (count < 0 || n < count) { out += to; ++n; }
      out += c;
    }
    if (count < 0 || n < count) out += to;
    return out;
  }
  size_t pos = 0;
  int64_t n = 0;
  for (;;) {
    size_t f = s.find(from, pos);
    if (f == std::string::npos || (count >= 0 && n >= count)) break;
    out.append(s, pos, f - pos);
    out += to;
    if (out.size() > kMaxString) Fail("string too large");
    pos = f + from.size();
    ++n;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

std::vector<Value> Split(const std::string& s, const Value& sep, int64_t maxsplit, int line) {
  List out;
  if (sep.kind == Kind::kNone || sep.kind == Kind::kUndefined) {
    size_t k = 0;
    while (k < s.size()) {
      while (k < s.size() && IsPyWhite(s[k])) ++k;
      if (k >= s.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        std::string rest = s.substr(k);
        while (!rest.empty() && IsPyWhite(rest.back())) rest.pop_back();
        out.push_back(Value::Str(rest));
        return out;
      }
      size_t b = k;
      while (k < s.size() && !IsPyWhite(s[k])) ++k;
      out.push_back(Value::Str(s.substr(b, k - b)));
    }
    return out;
  }
  if (sep.kind != Kind::kString) Fail("must be str or None, not " + TypeName(sep), line);
  if (sep.s.empty()) Fail("empty separator", line);
  size_t pos = 0;
  for (;;) {
    size_t f = s.find(sep.s, pos);
    if (f == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit)) break;
    out.push_back(Value::Str(s.substr(pos, f - pos)));
    pos = f + sep.s.size();
  }
  out.push_back(Value::Str(s.substr(pos)));
  return out;
}

std::string CaseMap(const std::string& s, bool upper) {
  size_t len = 0;
  const auto* in = reinterpret_cast<const uint8_t*>(s.data());
  uint8_t* mapped = upper ? u8_toupper(in, s.size(), nullptr, nullptr, nullptr, &len)
                          : u8_tolower(in, s.size(), nullptr, nullptr, nullptr, &len);
  if (mapped != nullptr) {
    std::string out(reinterpret_cast<const char*>(mapped), len);
    std::free(mapped);
    return out;
  }
  std::string out = s;  // invalid UTF-8: ASCII mapping only
  for (char& c : out) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

std::string Title(const std::string& s) {
  std::string out = s;
  bool prev_alpha = false;
  for (char& c : out) {
    bool alpha = std::isalpha(static_cast<unsigned char>(c));
    if (alpha) c = prev_alpha ? static_cast<char>(std::tolower(c)) : static_cast<char>(std::toupper(c));
    prev_alpha = alpha;
  }
  return out;
}

int64_t ToInt(const Value& v, int line) {
  if (v.kind == Kind::kInt) return v.i;
  if (v.kind == Kind::kBool) return v.b;
  Fail("an integer is required, got " + TypeName(v), line);
}

bool PrefixMatch(const std::string& s, const Value& arg, bool suffix, int line) {
  auto one = [&](const Value& p) {
    if (p.kind != Kind::kString) Fail("startswith/endswith needs str arguments", line);
    if (p.s.size() > s.size()) return false;
    return suffix ? s.compare(s.size() - p.s.size(), p.s.size(), p.s) == 0 : s.compare(0, p.s.size(), p.s) == 0;
  };
  if (arg.kind == Kind::kList) {
    for (const auto& p : *arg.list) if (one(p)) return true;
    return false;
  }
  return one(arg);
}

Value StrMethod(const Value& obj, const std::string& name, int line) {
  const std::string s = obj.s;
  auto make = [](auto f) { return Value::Callable(std::move(f)); };
  if (name == "startswith" || name == "endswith") {
    bool suffix = name == "endswith";
    return make([s, suffix](Args& a) {
      if (a.pos.empty()) Fail("startswith/endswith takes at least 1 argument", a.line);
      return Value::Bool(PrefixMatch(s, a.pos[0], suffix, a.line));
    });
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool l = name != "rstrip", r = name != "lstrip";
    return make([s, l, r](Args& a) { return Value::Str(Strip(s, a.Get(0, "chars", Value::None()), l, r)); });
  }
  if (name == "split" || name == "rsplit") {
    return make([s](Args& a) {
      Value ms = a.Get(1, "maxsplit", Value::Int(-1));
      return Value::MakeList(Split(s, a.Get(0, "sep", Value::None()), ToInt(ms, a.line), a.line));
    });
  }
  if (name == "upper" || name == "lower") {
    bool up = name == "upper";
    return make([s, up](Args&) { return Value::Str(CaseMap(s, up)); });
  }
  if (name == "title") return make([s](Args&) { return Value::Str(Title(s)); });
  if (name == "capitalize") {
    return make([s](Args&) {
      std::string out = CaseMap(s, false);
      if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
      return Value::Str(out);
    });
  }
  if (name == "replace") {
    return make([s](Args& a) {
      Value from = a.Get(0, "old"), to = a.Get(1, "new");
      if (from.kind != Kind::kString || to.kind != Kind::kString) Fail("replace() arguments must be str", a.line);
      return Value::Str(Replace(s, from.s, to.s, ToInt(a.Get(2, "count", Value::Int(-1)), a.line)));
    });
  }
  if (name == "find" || name == "count" || name == "index") {
    std::string n = name;
    return make([s, n](Args& a) {
      Value sub = a.Get(0, "sub");
      if (sub.kind != Kind::kString) Fail(n + "() argument must be str", a.line);
      if (n == "count") {
        if (sub.s.empty()) return Value::Int(static_cast<int64_t>(SplitCodePoints(s).size()) + 1);
        int64_t c = 0;
        for (size_t p = s.find(sub.s); p != std::string::npos; p = s.find(sub.s, p + sub.s.size())) ++c;
        return Value::Int(c);
      }
      size_t p = s.find(sub.s);
      if (p == std::string::npos) {
        if (n == "index") Fail("substring not found", a.line);
        return Value::Int(-1);
      }
      return Value::Int(static_cast<int64_t>(SplitCodePoints(s.substr(0, p)).size()));
    });
  }
  if (name == "join") {
    return make([s](Args& a) {
      std::string out;
      auto items = Iterate(a.Get(0, "iterable"), a.line);
      for (size_t k = 0; k < items.size(); ++k) {
        if (items[k].kind != Kind::kString) Fail("sequence item: expected str instance", a.line);
        if (k) out += s;
        out += items[k].s;
      }
      return Value::Str(out);
    });
  }
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum") {
    std::string n = name;
    return make([s, n](Args&) {
      if (s.empty()) return Value::Bool(false);
      for (unsigned char c : s) {
        bool ok = n == "isdigit" ? std::isdigit(c) : n == "isalpha" ? std::isalpha(c)
                  : n == "isspace" ? IsPyWhite(c) : std::isalnum(c);
        if (!ok) return Value::Bool(false);
      }
      return Value::Bool(true);
    });
  }
  (void)line;
  return Value::Undefined(name);
}

Value DictMethod(const Value& obj, const std::string& name) {
  auto d = obj.dict;
  if (name == "items") {
    return Value::Callable([d](Args&) {
      List out;
      for (const auto& [k, v] : d->items) out.push_back(Value::MakeTuple({Value::Str(k), v}));
      return Value::MakeList(std::move(out));
    });
  }
  if (name == "keys") {
    return Value::Callable([d](Args&) {
      List out;
      for (const auto& [k, v] : d->items) out.push_back(Value::Str(k));
      return Value::MakeList(std::move(out));
    });
  }
  if (name == "values") {
    return Value::Callable([d](Args&) {
      List out;
      for (const auto& [k, v] : d->items) out.push_back(v);
      return Value::MakeList(std::move(out));
    });
  }
  if (name == "get") {
    return Value::Callable([d](Args& a) {
      Value key = a.Get(0, "key");
      Value def = a.Get(1, "default", Value::None());
      if (key.kind != Kind::kString) return def;
      const Value* v = d->Find(key.s);
      return v ? *v : def;
    });
  }
  return Value::Undefined(name);
}

int Compare(const Value& a, const Value& b, const std::string& op, int line) {
  if (a.IsNumber() && b.IsNumber()) {
    double x = a.AsDouble(), y = b.AsDouble();
    if (a.kind != Kind::kFloat && b.kind != Kind::kFloat) {
      int64_t p = a.kind == Kind::kBool ? a.b : a.i, q = b.kind == Kind::kBool ? b.b : b.i;
      return p < q ? -1 : p > q ? 1 : 0;
    }
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind == Kind::kString && b.kind == Kind::kString) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
  if (a.kind == Kind::kUndefined) FailUndefined(a, line);
  if (b.kind == Kind::kUndefined) FailUndefined(b, line);
  Fail("'" + op + "' not supported between instances of '" + TypeName(a) + "' and '" + TypeName(b) + "'", line);
}

int64_t I(const Value& v) { return v.kind == Kind::kBool ? v.b : v.i; }

Value Arith(const std::string& op, const Value& a, const Value& b, int line) {
  if (a.kind == Kind::kUndefined) FailUndefined(a, line);
  if (b.kind == Kind::kUndefined) FailUndefined(b, line);
  if (op == "+") {
    if (a.kind == Kind::kString && b.kind == Kind::kString) {
      if (a.s.size() + b.s.size() > kMaxString) Fail("string too large", line);
      return Value::Str(a.s + b.s);
    }
    if (a.kind == Kind::kList && b.kind == Kind::kList) {
      List out = *a.list;
      out.insert(out.end(), b.list->begin(), b.list->end());
      return Value::MakeList(std::move(out));
    }
  }
  if (op == "*" && ((a.kind == Kind::kString || a.kind == Kind::kList) && (b.kind == Kind::kInt || b.kind == Kind::kBool))) {
    int64_t n = std::max<int64_t>(0, I(b));
    size_t unit = a.kind == Kind::kString ? a.s.size() : a.list->size();
    if (unit && static_cast<uint64_t>(n) > kMaxString / unit) Fail("result too large", line);
    if (a.kind == Kind::kString) {
      std::string out;
      for (int64_t k = 0; k < n; ++k) out += a.s;
      return Value::Str(out);
    }
    List out;
    for (int64_t k = 0; k < n; ++k) out.insert(out.end(), a.list->begin(), a.list->end());
    return Value::MakeList(std::move(out));
  }
  if (op == "*" && (b.kind == Kind::kString || b.kind == Kind::kList) && (a.kind == Kind::kInt || a.kind == Kind::kBool))
    return Arith(op, b, a, line);
  if (!a.IsNumber() || !b.IsNumber()) {
    if (op == "+" && a.kind == Kind::kString) Fail("can only concatenate str (not \"" + TypeName(b) + "\") to str", line);
    Fail("unsupported operand type(s) for " + op + ": '" + TypeName(a) + "' and '" + TypeName(b) + "'", line);
  }
  bool fl = a.kind == Kind::kFloat || b.kind == Kind::kFloat;
  if (op == "/") {
    if (b.AsDouble() == 0) Fail("division by zero", line);
    return Value::Float(a.AsDouble() / b.AsDouble());
  }
  if (op == "**") {
    if (!fl && I(b) >= 0) {
      int64_t r = 1, base = I(a);
      for (int64_t k = 0; k < I(b); ++k) {
        if (__builtin_mul_overflow(r, base, &r)) Fail("integer overflow", line);
        if (r == 0 || r == 1) break;
      }
      return Value::Int(r);
    }
    return Value::Float(std::pow(a.AsDouble(), b.AsDouble()));
  }
  if (fl) {
    double x = a.AsDouble(), y = b.AsDouble();
    if (op == "+") return Value::Float(x + y);
    if (op == "-") return Value::Float(x - y);
    if (op == "*") return Value::Float(x * y);
    if (y == 0) Fail("float division by zero", line);
    if (op == "//") return Value::Float(std::floor(x / y));
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return Value::Float(m);
  }
  int64_t x = I(a), y = I(b), r = 0;
  if (op == "+") { if (__builtin_add_overflow(x, y, &r)) Fail("integer overflow", line); return Value::Int(r); }
  if (op == "-") { if (__builtin_sub_overflow(x, y, &r)) Fail("integer overflow", line); return Value::Int(r); }
  if (op == "*") { if (__builtin_mul_overflow(x, y, &r)) Fail("integer overflow", line); return Value::Int(r); }
  if (y == 0) Fail("integer division or modulo by zero", line);
  if (x == INT64_MIN && y == -1) Fail("integer overflow", line);
  int64_t q = x / y, m = x % y;
  if (m != 0 && ((m < 0) != (y < 0))) { --q; m += y; }
  return Value::Int(op == "//" ? q : m);
}

bool Contains(const Value& container, const Value& item, int line) {
  switch (container.kind) {
    case Kind::kString:
      if (item.kind != Kind::kString) Fail("'in <string>' requires string as left operand, not " + TypeName(item), line);
      return container.s.find(item.s) != std::string::npos;
    case Kind::kList:
      for (const auto& v : *container.list) if (Equal(v, item)) return true;
      return false;
    case Kind::kDict:
      return item.kind == Kind::kString && container.dict->Find(item.s) != nullptr;
    case Kind::kUndefined: return false;
    default: Fail("argument of type '" + TypeName(container) + "' is not iterable", line);
  }
}

Value Attribute(const Value& v, const std::string& path, int line) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    cur = digits ? GetItem(cur, Value::Int(std::atoll(part.c_str())), line) : GetItem(cur, Value::Str(part), line);
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

}  // namespace

void FailUndefined(const Value& v, int line) {
  Fail(v.s.empty() ? "value is undefined" : "'" + v.s + "' is undefined", line);
}

Value GetAttr(const Value& obj, const std::string& name, int line) {
  switch (obj.kind) {
    case Kind::kUndefined: FailUndefined(obj, line);
    case Kind::kDict: {
      if (name == "items" || name == "keys" || name == "values" || name == "get") return DictMethod(obj, name);
      const Value* v = obj.dict->Find(name);
      return v ? *v : Value::Undefined(name);
    }
    case Kind::kNamespace: {
      const Value* v = obj.dict->Find(name);
      return v ? *v : Value::Undefined(name);
    }
    case Kind::kString: return StrMethod(obj, name, line);
    default: return Value::Undefined(name);
  }
}

Value GetItem(const Value& obj, const Value& key, int line) {
  switch (obj.kind) {
    case Kind::kUndefined: FailUndefined(obj, line);
    case Kind::kDict:
    case Kind::kNamespace:
      if (key.kind == Kind::kString) {
        const Value* v = obj.dict->Find(key.s);
        if (v) return *v;
        if (obj.kind == Kind::kDict) return DictMethod(obj, key.s);
      }
      return Value::Undefined(key.kind == Kind::kString ? key.s : Repr(key));
    case Kind::kList:
    case Kind::kString: {
      if (key.kind == Kind::kString) return GetAttr(obj, key.s, line);
      if (key.kind != Kind::kInt && key.kind != Kind::kBool) return Value::Undefined();
      int64_t k = I(key);
      if (obj.kind == Kind::kList) {
        int64_t n = static_cast<int64_t>(obj.list->size());
        if (k < 0) k += n;
        if (k < 0 || k >= n) return Value::Undefined();
        return (*obj.list)[k];
      }
      auto cps = SplitCodePoints(obj.s);
      int64_t n = static_cast<int64_t>(cps.size());
      if (k < 0) k += n;
      if (k < 0 || k >= n) return Value::Undefined();
      return Value::Str(cps[k]);
    }
    default: return Value::Undefined();
  }
}

Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line) {
  if (obj.kind == Kind::kUndefined) FailUndefined(obj, line);
  std::vector<std::string> cps;
  int64_t n;
  if (obj.kind == Kind::kString) { cps = SplitCodePoints(obj.s); n = static_cast<int64_t>(cps.size()); }
  else if (obj.kind == Kind::kList) n = static_cast<int64_t>(obj.list->size());
  else Fail("'" + TypeName(obj) + "' object is not subscriptable", line);
  auto get = [&](const Value& v, int64_t def) -> int64_t {
    if (v.kind == Kind::kNone || v.kind == Kind::kUndefined) return def;
    if (v.kind != Kind::kInt && v.kind != Kind::kBool) Fail("slice indices must be integers or None", line);
    return I(v);
  };
  int64_t st = get(step, 1);
  if (st == 0) Fail("slice step cannot be zero", line);
  int64_t lo, hi;
  if (st > 0) {
    lo = get(start, 0); hi = get(stop, n);
    if (lo < 0) lo = std::max<int64_t>(0, lo + n); else lo = std::min(lo, n);
    if (hi < 0) hi = std::max<int64_t>(0, hi + n); else hi = std::min(hi, n);
  } else {
    lo = get(start, n - 1); hi = get(stop, -n - 1);
    if (lo < 0) lo = std::max<int64_t>(-1, lo + n); else lo = std::min(lo, n - 1);
    if (hi < 0) hi = std::max<int64_t>(-1, hi + n); else hi = std::min(hi, n - 1);
  }
  std::vector<int64_t> idx;
  if (st > 0) for (int64_t k = lo; k < hi; k += st) idx.push_back(k);
  else for (int64_t k = lo; k > hi; k += st) idx.push_back(k);
  if (obj.kind == Kind::kString) {
    std::string out;
    for (int64_t k : idx) out += cps[k];
    return Value::Str(out);
  }
  List out;
  for (int64_t k : idx) out.push_back((*obj.list)[k]);
  return Value::MakeList(std::move(out));
}

Value BinaryOp(const std::string& op, const Value& a, const Value& b, int line) {
  if (op == "~") {
    std::string out = ToStr(a) + ToStr(b);
    if (out.size() > kMaxString) Fail("string too large", line);
    return Value::Str(std::move(out));
  }
  if (op == "==") return Value::Bool(Equal(a, b));
  if (op == "!=") return Value::Bool(!Equal(a, b));
  if (op == "<") return Value::Bool(Compare(a, b, op, line) < 0);
  if (op == "<=") return Value::Bool(Compare(a, b, op, line) <= 0);
  if (op == ">") return Value::Bool(Compare(a, b, op, line) > 0);
  if (op == ">=") return Value::Bool(Compare(a, b, op, line) >= 0);
  if (op == "in") return Value::Bool(Contains(b, a, line));
  if (op == "not in") return Value::Bool(!Contains(b, a, line));
  return Arith(op, a, b, line);
}

std::vector<Value> Iterate(const Value& v, int line) {
  switch (v.kind) {
    case Kind::kUndefined: return {};
    case Kind::kList: return *v.list;
    case Kind::kDict: {
      std::vector<Value> out;
      for (const auto& [k, x] : v.dict->items) out.push_back(Value::Str(k));
      return out;
    }
    case Kind::kString: {
      std::vector<Value> out;
      for (auto& c : SplitCodePoints(v.s)) out.push_back(Value::Str(std::move(c)));
      return out;
    }
    default: Fail("'" + TypeName(v) + "' object is not iterable", line);
  }
}

int64_t Length(const Value& v, int line) {
  switch (v.kind) {
    case Kind::kUndefined: return 0;
    case Kind::kString: return static_cast<int64_t>(SplitCodePoints(v.s).size());
    case Kind::kList: return static_cast<int64_t>(v.list->size());
    case Kind::kDict: return static_cast<int64_t>(v.dict->items.size());
    default: Fail("object of type '" + TypeName(v) + "' has no len()", line);
  }
}

bool CallTest(const std::string& name, const Value& v, Args& a) {
  const int line = a.line;
  Value arg = a.Get(0, "value");
  if (name == "defined") return v.kind != Kind::kUndefined;
  if (name == "undefined") return v.kind == Kind::kUndefined;
  if (name == "none") return v.kind == Kind::kNone;
  if (name == "string") return v.kind == Kind::kString;
  if (name == "mapping") return v.kind == Kind::kDict;
  if (name == "sequence") return v.kind == Kind::kString || v.kind == Kind::kList || v.kind == Kind::kDict;
  if (name == "iterable") return v.kind == Kind::kString || v.kind == Kind::kList || v.kind == Kind::kDict;
  if (name == "number") return v.IsNumber();
  if (name == "integer") return v.kind == Kind::kInt;
  if (name == "float") return v.kind == Kind::kFloat;
  if (name == "boolean") return v.kind == Kind::kBool;
  if (name == "true") return v.kind == Kind::kBool && v.b;
  if (name == "false") return v.kind == Kind::kBool && !v.b;
  if (name == "callable") return v.kind == Kind::kCallable;
  if (name == "odd" || name == "even") {
    if (v.kind != Kind::kInt && v.kind != Kind::kBool) Fail("odd/even test needs an integer", line);
    return (I(v) % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    Value d = Arith("%", v, arg, line);
    return d.AsDouble() == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return Equal(v, arg);
  if (name == "ne" || name == "!=") return !Equal(v, arg);
  if (name == "lt" || name == "lessthan") return Compare(v, arg, "<", line) < 0;
  if (name == "le") return Compare(v, arg, "<=", line) <= 0;
  if (name == "gt" || name == "greaterthan") return Compare(v, arg, ">", line) > 0;
  if (name == "ge") return Compare(v, arg, ">=", line) >= 0;
  if (name == "in") return Contains(arg, v, line);
  if (name == "sameas") {
    if (v.kind != arg.kind) return false;
    if (v.kind == Kind::kList) return v.list == arg.list;
    if (v.kind == Kind::kDict || v.kind == Kind::kNamespace) return v.dict == arg.dict;
    return Equal(v, arg);
  }
  if (name == "lower") return v.kind == Kind::kString && CaseMap(v.s, false) == v.s;
  if (name == "upper") return v.kind == Kind::kString && CaseMap(v.s, true) == v.s;
  Fail("No test named '" + name + "'.", line);
}

Value CallFilter(const std::string& name, const Value& v, Args& a) {
  const int line = a.line;
  auto need_str = [&](const Value& x) -> std::string {
    if (x.kind == Kind::kUndefined) FailUndefined(x, line);
    return ToStr(x);
  };
  if (name == "tojson") {
    Value ind = a.Get(0, "indent", Value::None());
    int indent = ind.kind == Kind::kInt ? static_cast<int>(std::clamp<int64_t>(ind.i, 0, 64)) : -1;
    if (v.kind == Kind::kUndefined) FailUndefined(v, line);
    return Value::Str(ToJson(v, indent, line));
  }
  if (name == "safe") return v;
  if (name == "string") return Value::Str(ToStr(v));
  if (name == "trim") return Value::Str(Strip(need_str(v), a.Get(0, "chars", Value::None()), true, true));
  if (name == "length" || name == "count") return Value::Int(Length(v, line));
  if (name == "default" || name == "d") {
    Value def = a.Get(0, "default_value", Value::Str(""));
    bool boolean = a.Get(1, "boolean", Value::Bool(false)).Truthy();
    if (v.kind == Kind::kUndefined || (boolean && !v.Truthy())) return def;
    return v;
  }
  if (name == "upper" || name == "lower") return Value::Str(CaseMap(need_str(v), name == "upper"));
  if (name == "title") return Value::Str(Title(need_str(v)));
  if (name == "capitalize") {
    std::string s = CaseMap(need_str(v), false);
    if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    return Value::Str(s);
  }
  if (name == "replace") {
    Value from = a.Get(0, "old"), to = a.Get(1, "new");
    return Value::Str(Replace(need_str(v), need_str(from), need_str(to), ToInt(a.Get(2, "count", Value::Int(-1)), line)));
  }
  if (name == "join") {
    Value sep = a.Get(0, "d", Value::Str(""));
    Value attr = a.Get(1, "attribute", Value::None());
    std::string out;
    auto items = Iterate(v, line);
    for (size_t k = 0; k < items.size(); ++k) {
      if (k) out += ToStr(sep);
      out += ToStr(attr.kind == Kind::kNone ? items[k] : Attribute(items[k], ToStr(attr), line));
      if (out.size() > kMaxString) Fail("string too large", line);
    }
    return Value::Str(out);
  }
  if (name == "first" || name == "last") {
    auto items = Iterate(v, line);
    if (items.empty()) return Value::Undefined(name);
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value::MakeList(Iterate(v, line));
  if (name == "reverse") {
    if (v.kind == Kind::kString) {
      auto cps = SplitCodePoints(v.s);
      std::string out;
      for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
      return Value::Str(out);
    }
    auto items = Iterate(v, line);
    std::reverse(items.begin(), items.end());
    return Value::MakeList(std::move(items));
  }
  if (name == "items" || name == "dictsort") {
    if (v.kind == Kind::kUndefined) return Value::MakeList();
    if (v.kind != Kind::kDict) Fail("Can only get item pairs from a mapping.", line);
    List out;
    for (const auto& [k, x] : v.dict->items) out.push_back(Value::MakeTuple({Value::Str(k), x}));
    if (name == "dictsort")
      std::stable_sort(out.begin(), out.end(), [](const Value& p, const Value& q) {
        return CaseMap((*p.list)[0].s, false) < CaseMap((*q.list)[0].s, false);
      });
    return Value::MakeList(std::move(out));
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    bool attr_mode = name == "selectattr" || name == "rejectattr";
    bool want = name == "selectattr" || name == "select";
    size_t base = attr_mode ? 1 : 0;
    std::string attr = attr_mode ? need_str(a.Get(0, "attribute")) : "";
    Value test = base < a.pos.size() ? a.pos[base] : Value::None();
    Args targs;
    targs.line = line;
    for (size_t k = base + 1; k < a.pos.size(); ++k) targs.pos.push_back(a.pos[k]);
    List out;
    for (const auto& item : Iterate(v, line)) {
      Value x = attr_mode ? Attribute(item, attr, line) : item;
      bool ok = test.kind == Kind::kNone ? x.Truthy() : CallTest(need_str(test), x, targs);
      if (ok == want) out.push_back(item);
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "map") {
    List out;
    Value attr = a.Get(99, "attribute", Value::None());
    if (attr.kind != Kind::kNone) {
      Value def = a.Get(99, "default", Value::Undefined());
      for (const auto& item : Iterate(v, line)) {
        Value x = Attribute(item, ToStr(attr), line);
        out.push_back(x.kind == Kind::kUndefined && def.kind != Kind::kUndefined ? def : x);
      }
      return Value::MakeList(std::move(out));
    }
    if (a.pos.empty()) Fail("map requires a filter argument", line);
    std::string fname = need_str(a.pos[0]);
    Args fargs;
    fargs.line = line;
    fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
    fargs.kw = a.kw;
    for (const auto& item : Iterate(v, line)) out.push_back(CallFilter(fname, item, fargs));
    return Value::MakeList(std::move(out));
  }
  if (name == "int") {
    Value def = a.Get(0, "default", Value::Int(0));
    if (v.kind == Kind::kInt) return v;
    if (v.kind == Kind::kBool) return Value::Int(v.b);
    if (v.kind == Kind::kFloat) return std::isfinite(v.f) && std::fabs(v.f) < 9.2e18 ? Value::Int(static_cast<int64_t>(v.f)) : def;
    if (v.kind == Kind::kString) {
      std::string s = Strip(v.s, Value::None(), true, true);
      errno = 0;
      char* endp = nullptr;
      long long x = std::strtoll(s.c_str(), &endp, 10);
      if (!s.empty() && endp == s.c_str() + s.size() && errno == 0) return Value::Int(x);
      double d = std::strtod(s.c_str(), &endp);
      if (!s.empty() && endp == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18)
        return Value::Int(static_cast<int64_t>(d));
    }
    return def;
  }
  if (name == "float") {
    if (v.IsNumber()) return Value::Float(v.AsDouble());
    if (v.kind == Kind::kString) {
      char* endp = nullptr;
      std::string s = Strip(v.s, Value::None(), true, true);
      double d = std::strtod(s.c_str(), &endp);
      if (!s.empty() && endp == s.c_str() + s.size()) return Value::Float(d);
    }
    return a.Get(0, "default", Value::Float(0));
  }
  if (name == "abs") {
    if (v.kind == Kind::kFloat) return Value::Float(std::fabs(v.f));
    if (v.kind == Kind::kInt || v.kind == Kind::kBool) {
      if (I(v) == INT64_MIN) Fail("integer overflow", line);
      return Value::Int(std::llabs(I(v)));
    }
    Fail("bad operand type for abs()", line);
  }
  if (name == "unique") {
    List out;
    for (const auto& item : Iterate(v, line)) {
      bool seen = false;
      for (const auto& o : out) if (Equal(o, item)) seen = true;
      if (!seen) out.push_back(item);
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "sum") {
    Value total = a.Get(1, "start", Value::Int(0));
    for (const auto& item : Iterate(v, line)) total = Arith("+", total, item, line);
    return total;
  }
  if (name == "e" || name == "escape" || name == "forceescape") {
    std::string out;
    for (char c : need_str(v)) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return Value::Str(out);
  }
  if (name == "indent") {
    int64_t width = ToInt(a.Get(0, "width", Value::Int(4)), line);
    bool first = a.Get(1, "first", Value::Bool(false)).Truthy();
    bool blank = a.Get(2, "blank", Value::Bool(false)).Truthy();
    std::string pad(static_cast<size_t>(std::clamp<int64_t>(width, 0, 1000)), ' ');
    std::string s = need_str(v), out;
    auto lines = Split(s, Value::Str("\n"), -1, line);
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k) out += "\n";
      const std::string& l = lines[k].s;
      if ((k > 0 || first) && (blank || !l.empty())) out += pad;
      out += l;
    }
    return Value::Str(out);
  }
  if (name == "wordcount") return Value::Int(static_cast<int64_t>(Split(need_str(v), Value::None(), -1, line).size()));
  Fail("No filter named '" + name + "'.", line);
}

}  // namespace arle::tokenizer::jinja
