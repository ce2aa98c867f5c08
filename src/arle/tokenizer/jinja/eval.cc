// Tree-walking renderer of the Jinja engine: scopes (for loops and macros get their own frames),
// loop.* variables, break/continue, set/namespace attributes, macros and the chat globals.
#include <cmath>
#include <ctime>
#include <map>

#include "arle/tokenizer/jinja/builtins.h"

namespace arle::tokenizer::jinja {
namespace {

constexpr int64_t kMaxSteps = 20'000'000;
constexpr size_t kMaxOutput = 64u << 20;
constexpr int kMaxCallDepth = 64;

class Interpreter {
 public:
  Interpreter(const Value& context) {
    frames_.emplace_back();
    if (context.kind == Kind::kDict)
      for (const auto& [k, v] : context.dict->items) frames_[0][k] = v;
    globals_["raise_exception"] = Value::Callable([](Args& a) -> Value {
      Fail(a.pos.empty() ? std::string() : ToStr(a.pos[0]), a.line);
    });
    globals_["namespace"] = Value::Callable([](Args& a) -> Value {
      Value ns = Value::MakeNamespace();
      for (const auto& p : a.pos) {
        if (p.kind != Kind::kDict) Fail("namespace() takes keyword arguments or a dict", a.line);
        for (const auto& [k, v] : p.dict->items) ns.dict->Set(k, v);
      }
      for (const auto& [k, v] : a.kw) ns.dict->Set(k, v);
      return ns;
    });
    // transformers' strftime_now(format): the local time formatted by strftime.
    globals_["strftime_now"] = Value::Callable([](Args& a) -> Value {
      Value fmt = a.Get(0, "format");
      if (fmt.kind != Kind::kString) Fail("strftime_now() needs a format string", a.line);
      std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      size_t n = fmt.s.size() < 64 ? std::strftime(buf, sizeof(buf), fmt.s.c_str(), &tm) : 0;
      return Value::Str(std::string(buf, n));
    });
    globals_["dict"] = Value::Callable([](Args& a) -> Value {
      Value d = Value::MakeDict();
      for (const auto& [k, v] : a.kw) d.dict->Set(k, v);
      return d;
    });
    globals_["range"] = Value::Callable([](Args& a) -> Value {
      auto num = [&](const Value& v) {
        if (v.kind != Kind::kInt && v.kind != Kind::kBool) Fail("range() needs integers", a.line);
        return v.kind == Kind::kBool ? static_cast<int64_t>(v.b) : v.i;
      };
      int64_t start = 0, stop = 0, step = 1;
      if (a.pos.size() == 1) stop = num(a.pos[0]);
      else if (a.pos.size() >= 2) { start = num(a.pos[0]); stop = num(a.pos[1]); }
      if (a.pos.size() >= 3) step = num(a.pos[2]);
      if (a.pos.empty() || a.pos.size() > 3) Fail("range expected 1 to 3 arguments", a.line);
      if (step == 0) Fail("range() arg 3 must not be zero", a.line);
      List out;
      for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
        if (out.size() >= 100000) Fail("range too big", a.line);
        out.push_back(Value::Int(k));
      }
      return Value::MakeList(std::move(out));
    });
  }

  enum class Flow { kNormal, kBreak, kContinue };

  Flow ExecBody(const Body& body, std::string& out) {
    for (const auto& s : body) {
      Flow f = Exec(*s, out);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Value Lookup(const std::string& name) {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return f->second;
    }
    auto g = globals_.find(name);
    if (g != globals_.end()) return g->second;
    return Value::Undefined(name);
  }

 private:
  void Step(int line) {
    if (++steps_ > kMaxSteps) Fail("template execution limit exceeded", line);
  }
  void Assign(const std::vector<std::string>& targets, const Value& v, int line) {
    if (targets.size() == 1) { frames_.back()[targets[0]] = v; return; }
    std::vector<Value> items = Iterate(v, line);
    if (items.size() != targets.size())
      Fail("cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(targets.size()), line);
    for (size_t k = 0; k < targets.size(); ++k) frames_.back()[targets[k]] = items[k];
  }

  Flow Exec(const Stmt& s, std::string& out) {
    Step(s.line);
    if (out.size() > kMaxOutput) Fail("template output too large", s.line);
    switch (s.kind) {
      case StmtKind::kText: out += s.text; return Flow::kNormal;
      case StmtKind::kOutput: out += ToStr(Eval(*s.expr)); return Flow::kNormal;
      case StmtKind::kIf:
        for (size_t k = 0; k < s.branches.size(); ++k) {
          if (k >= s.conds.size() || Eval(*s.conds[k]).Truthy()) return ExecBody(s.branches[k], out);
        }
        return Flow::kNormal;
      case StmtKind::kFor: return ExecFor(s, out);
      case StmtKind::kSet: {
        Value v = Eval(*s.expr);
        if (!s.attr.empty()) {
          Value ns = Lookup(s.targets[0]);
          if (ns.kind != Kind::kNamespace) Fail("cannot assign attribute on non-namespace object", s.line);
          ns.dict->Set(s.attr, v);
        } else {
          Assign(s.targets, v, s.line);
        }
        return Flow::kNormal;
      }
      case StmtKind::kSetBlock: {
        std::string captured;
        ExecBody(s.body, captured);
        if (!s.attr.empty()) {
          Value ns = Lookup(s.targets[0]);
          if (ns.kind != Kind::kNamespace) Fail("cannot assign attribute on non-namespace object", s.line);
          ns.dict->Set(s.attr, Value::Str(captured));
        } else {
          frames_.back()[s.targets[0]] = Value::Str(std::move(captured));
        }
        return Flow::kNormal;
      }
      case StmtKind::kMacro: {
        const Stmt* def = &s;
        frames_.back()[s.targets[0]] = Value::Callable([this, def](Args& a) { return CallMacro(*def, a); });
        return Flow::kNormal;
      }
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
      default: Fail("unsupported statement", s.line);
    }
  }

  Value CallMacro(const Stmt& def, Args& a) {
    if (++call_depth_ > kMaxCallDepth) Fail("maximum macro recursion depth exceeded", def.line);
    std::vector<std::map<std::string, Value>> saved;
    saved.swap(frames_);
    frames_.push_back(saved.front());
    frames_.emplace_back();
    size_t nparams = def.targets.size() - 1;
    if (a.pos.size() > nparams) Fail("macro '" + def.targets[0] + "' takes not more than " +
                                     std::to_string(nparams) + " argument(s)", a.line);
    for (size_t k = 0; k < nparams; ++k) {
      const std::string& p = def.targets[k + 1];
      Value v = Value::Undefined(p);
      if (k < a.pos.size()) v = a.pos[k];
      else {
        bool found = false;
        for (const auto& [n, kv] : a.kw) if (n == p) { v = kv; found = true; }
        if (!found && def.defaults[k]) v = Eval(*def.defaults[k]);
      }
      frames_.back()[p] = v;
    }
    for (const auto& [n, kv] : a.kw) {
      bool known = false;
      for (size_t k = 0; k < nparams; ++k) if (def.targets[k + 1] == n) known = true;
      if (!known) Fail("macro '" + def.targets[0] + "' takes no keyword argument '" + n + "'", a.line);
    }
    std::string out;
    struct Restore {
      Interpreter* self;
      std::vector<std::map<std::string, Value>>* saved;
      ~Restore() { self->frames_.swap(*saved); --self->call_depth_; }
    } restore{this, &saved};
    ExecBody(def.body, out);
    return Value::Str(std::move(out));
  }

  Flow ExecFor(const Stmt& s, std::string& out) {
    std::vector<Value> all = Iterate(Eval(*s.expr), s.line);
    frames_.emplace_back();
    struct Pop { Interpreter* self; ~Pop() { self->frames_.pop_back(); } } pop{this};
    std::vector<Value> items;
    if (s.filter) {
      for (const auto& it : all) {
        Assign(s.targets, it, s.line);
        if (Eval(*s.filter).Truthy()) items.push_back(it);
      }
    } else {
      items = std::move(all);
    }
    if (items.empty()) {
      ExecBody(s.else_body, out);
      return Flow::kNormal;
    }
    Value outer_loop = Lookup("loop");
    int64_t n = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < n; ++k) {
      Value loop = Value::MakeDict();
      Dict& d = *loop.dict;
      d.Set("index", Value::Int(k + 1));
      d.Set("index0", Value::Int(k));
      d.Set("revindex", Value::Int(n - k));
      d.Set("revindex0", Value::Int(n - k - 1));
      d.Set("first", Value::Bool(k == 0));
      d.Set("last", Value::Bool(k == n - 1));
      d.Set("length", Value::Int(n));
      d.Set("depth", Value::Int(1));
      d.Set("depth0", Value::Int(0));
      d.Set("previtem", k > 0 ? items[k - 1] : Value::Undefined("previtem"));
      d.Set("nextitem", k + 1 < n ? items[k + 1] : Value::Undefined("nextitem"));
      std::vector<Value> cyc_k = {Value::Int(k)};
      d.Set("cycle", Value::Callable([k](Args& a) -> Value {
        if (a.pos.empty()) Fail("no items for cycling given", a.line);
        return a.pos[static_cast<size_t>(k) % a.pos.size()];
      }));
      frames_.back()["loop"] = loop;
      Assign(s.targets, items[k], s.line);
      Flow f = ExecBody(s.body, out);
      if (f == Flow::kBreak) break;
    }
    (void)outer_loop;
    return Flow::kNormal;
  }

  Args EvalArgs(const std::vector<CallArg>& args, int line) {
    Args a;
    a.line = line;
    for (const auto& arg : args) {
      if (arg.name.empty()) a.pos.push_back(Eval(*arg.value));
      else a.kw.emplace_back(arg.name, Eval(*arg.value));
    }
    return a;
  }

 public:
  Value Eval(const Expr& e) {
    Step(e.line);
    switch (e.kind) {
      case ExprKind::kLiteral: return e.literal;
      case ExprKind::kName: return Lookup(e.name);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        List items;
        for (const auto& it : e.items) items.push_back(Eval(*it));
        return e.kind == ExprKind::kTuple ? Value::MakeTuple(std::move(items)) : Value::MakeList(std::move(items));
      }
      case ExprKind::kDict: {
        Value d = Value::MakeDict();
        for (size_t k = 0; k + 1 < e.items.size(); k += 2) {
          Value key = Eval(*e.items[k]);
          if (key.kind != Kind::kString) Fail("only string dict keys are supported", e.line);
          d.dict->Set(key.s, Eval(*e.items[k + 1]));
        }
        return d;
      }
      case ExprKind::kAttr: return GetAttr(Eval(*e.a), e.name, e.line);
      case ExprKind::kIndex: return GetItem(Eval(*e.a), Eval(*e.b), e.line);
      case ExprKind::kSlice: {
        Value obj = Eval(*e.a);
        Value parts[3];
        for (int k = 0; k < 3; ++k) parts[k] = e.items[k] ? Eval(*e.items[k]) : Value::None();
        return Slice(obj, parts[0], parts[1], parts[2], e.line);
      }
      case ExprKind::kCall: {
        Value fn = Eval(*e.a);
        Args a = EvalArgs(e.args, e.line);
        if (fn.kind == Kind::kUndefined) FailUndefined(fn, e.line);
        if (fn.kind != Kind::kCallable) Fail("'" + TypeName(fn) + "' object is not callable", e.line);
        return (*fn.fn)(a);
      }
      case ExprKind::kFilter: {
        Value v = Eval(*e.a);
        Args a = EvalArgs(e.args, e.line);
        return CallFilter(e.name, v, a);
      }
      case ExprKind::kTest: {
        Value v;
        if (e.name == "defined" || e.name == "undefined") {
          v = Eval(*e.a);
        } else {
          v = Eval(*e.a);
        }
        Args a = EvalArgs(e.args, e.line);
        return Value::Bool(CallTest(e.name, v, a) != e.negated);
      }
      case ExprKind::kUnary: {
        Value v = Eval(*e.a);
        if (v.kind == Kind::kUndefined) FailUndefined(v, e.line);
        if (!v.IsNumber()) Fail("bad operand type for unary " + e.name + ": '" + TypeName(v) + "'", e.line);
        if (e.name == "+") return v.kind == Kind::kBool ? Value::Int(v.b) : v;
        if (v.kind == Kind::kFloat) return Value::Float(-v.f);
        int64_t x = v.kind == Kind::kBool ? v.b : v.i;
        if (x == INT64_MIN) Fail("integer overflow", e.line);
        return Value::Int(-x);
      }
      case ExprKind::kBinary: return BinaryOp(e.name, Eval(*e.a), Eval(*e.b), e.line);
      case ExprKind::kAnd: {
        Value a = Eval(*e.a);
        return a.Truthy() ? Eval(*e.b) : a;
      }
      case ExprKind::kOr: {
        Value a = Eval(*e.a);
        return a.Truthy() ? a : Eval(*e.b);
      }
      case ExprKind::kNot: return Value::Bool(!Eval(*e.a).Truthy());
      case ExprKind::kCond:
        if (Eval(*e.b).Truthy()) return Eval(*e.a);
        return e.c ? Eval(*e.c) : Value::Undefined();
    }
    return Value::Undefined();
  }

 private:
  std::vector<std::map<std::string, Value>> frames_;
  std::map<std::string, Value> globals_;
  int64_t steps_ = 0;
  int call_depth_ = 0;
};

}  // namespace

std::string RenderTemplate(const Template& tpl, const Value& context) {
  Interpreter interp(context);
  std::string out;
  interp.ExecBody(tpl.body, out);
  return out;
}

}  // namespace arle::tokenizer::jinja
