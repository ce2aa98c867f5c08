// Lexer and recursive-descent parser of the Jinja engine (trim_blocks + lstrip_blocks whitespace
// rules as jinja2's lexer applies them; operator precedence as jinja2's parser).
#include <cstdlib>

#include "arle/tokenizer/jinja/ast.h"

namespace arle::tokenizer::jinja {
namespace {

enum class Tok { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };

struct Token {
  Tok type;
  std::string text;
  int line;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) out += static_cast<char>(cp);
  else if (cp < 0x800) { out += static_cast<char>(0xC0 | (cp >> 6)); out += static_cast<char>(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12)); out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18)); out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  std::vector<Token> Run() {
    bool strip_next = false, line_starting = true;
    while (pos_ < src_.size()) {
      size_t start = pos_;
      size_t tag = std::string_view::npos;
      for (size_t k = pos_; k + 1 < src_.size(); ++k) {
        if (src_[k] == '{' && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) { tag = k; break; }
      }
      std::string text(src_.substr(start, (tag == std::string_view::npos ? src_.size() : tag) - start));
      int text_line = line_;
      if (strip_next) {
        size_t k = 0;
        while (k < text.size() && IsSpace(text[k])) ++k;
        for (size_t m = 0; m < k; ++m) if (text[m] == '\n') ++text_line;
        text.erase(0, k);
      }
      for (size_t k = start; k < (tag == std::string_view::npos ? src_.size() : tag); ++k)
        if (src_[k] == '\n') ++line_;
      if (tag == std::string_view::npos) {
        Emit(Tok::kText, text, text_line);
        pos_ = src_.size();
        break;
      }
      char kind = src_[tag + 1];
      char mod = tag + 2 < src_.size() ? src_[tag + 2] : 0;
      if (mod == '-') {
        while (!text.empty() && IsSpace(text.back())) text.pop_back();
      } else if (kind != '{' && mod != '+') {
        size_t l = text.rfind('\n');
        size_t lp = l == std::string::npos ? 0 : l + 1;
        if (lp > 0 || line_starting) {
          bool blank = true;
          for (size_t k = lp; k < text.size(); ++k) if (text[k] != ' ' && text[k] != '\t') blank = false;
          if (blank) text.erase(lp);
        }
      }
      Emit(Tok::kText, text, text_line);
      pos_ = tag + 2 + ((mod == '-' || mod == '+') ? 1 : 0);
      strip_next = false;
      line_starting = false;
      if (kind == '#') {
        size_t end = src_.find("#}", pos_);
        if (end == std::string_view::npos) Fail("Missing end of comment tag", line_);
        for (size_t k = pos_; k < end; ++k) if (src_[k] == '\n') ++line_;
        strip_next = end > pos_ && src_[end - 1] == '-';
        pos_ = end + 2;
        if (!strip_next && !(end > pos_ - 2 && end > 0 && src_[end - 1] == '+')) TrimNewline(line_starting);
        continue;
      }
      bool var = kind == '{';
      Emit(var ? Tok::kVarBegin : Tok::kBlockBegin, "", line_);
      const char close = var ? '}' : '%';
      bool raw = false;
      if (!var) {  // {% raw %}
        size_t k = pos_;
        while (k < src_.size() && IsSpace(src_[k])) ++k;
        if (src_.substr(k, 3) == "raw") {
          size_t e = k + 3;
          while (e < src_.size() && IsSpace(src_[e])) ++e;
          if (src_.substr(e, 2) == "%}" || src_.substr(e, 3) == "-%}") raw = true;
        }
      }
      if (raw) { LexRaw(strip_next, line_starting); continue; }
      for (;;) {
        while (pos_ < src_.size() && IsSpace(src_[pos_])) { if (src_[pos_] == '\n') ++line_; ++pos_; }
        if (pos_ >= src_.size()) Fail(var ? "unexpected end of template, expected '}}'" : "unexpected end of template, expected '%}'", line_);
        if (src_[pos_] == '-' && pos_ + 2 < src_.size() + 0 && src_[pos_ + 1] == close && src_[pos_ + 2] == '}') {
          pos_ += 3; strip_next = true; break;
        }
        if (src_[pos_] == '+' && !var && pos_ + 2 < src_.size() && src_[pos_ + 1] == '%' && src_[pos_ + 2] == '}') {
          pos_ += 3; break;
        }
        if (src_[pos_] == close && pos_ + 1 < src_.size() && src_[pos_ + 1] == '}') {
          pos_ += 2;
          if (!var) TrimNewline(line_starting);
          break;
        }
        LexOne();
      }
      Emit(var ? Tok::kVarEnd : Tok::kBlockEnd, "", line_);
    }
    tokens_.push_back({Tok::kEof, "", line_});
    return std::move(tokens_);
  }

 private:
  void TrimNewline(bool& line_starting) {
    if (pos_ < src_.size() && src_[pos_] == '\n') { ++pos_; ++line_; line_starting = true; }
  }
  void Emit(Tok t, std::string text, int line) {
    if (t == Tok::kText && text.empty()) return;
    tokens_.push_back({t, std::move(text), line});
  }
  void LexRaw(bool& strip_next, bool& line_starting) {
    size_t close = src_.find("%}", pos_);
    pos_ = close + 2;
    if (src_[close - 1] != '-') TrimNewline(line_starting);
    else strip_next = true;
    Emit(Tok::kBlockEnd, "", line_);
    // Find {% endraw %}.
    size_t k = pos_;
    for (;;) {
      k = src_.find("{%", k);
      if (k == std::string_view::npos) Fail("Missing end of raw directive", line_);
      size_t m = k + 2;
      if (m < src_.size() && (src_[m] == '-' || src_[m] == '+')) ++m;
      while (m < src_.size() && IsSpace(src_[m])) ++m;
      if (src_.substr(m, 6) == "endraw") break;
      k += 2;
    }
    std::string text(src_.substr(pos_, k - pos_));
    if (strip_next) { size_t s = 0; while (s < text.size() && IsSpace(text[s])) ++s; text.erase(0, s); }
    if (src_[k + 2] == '-') while (!text.empty() && IsSpace(text.back())) text.pop_back();
    tokens_.pop_back();  // the BlockEnd: raw becomes plain text
    tokens_.pop_back();  // the BlockBegin
    Emit(Tok::kText, text, line_);
    for (char c : text) if (c == '\n') ++line_;
    size_t end = src_.find("%}", k);
    if (end == std::string_view::npos) Fail("Missing end of raw directive", line_);
    strip_next = src_[end - 1] == '-';
    pos_ = end + 2;
    if (!strip_next) TrimNewline(line_starting);
  }
  void LexOne() {
    char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t s = pos_;
      while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
      Emit(Tok::kName, std::string(src_.substr(s, pos_ - s)), line_);
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t s = pos_;
      bool is_float = false;
      while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
      if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
        is_float = true;
        ++pos_;
        while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
      }
      if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
        size_t m = pos_ + 1;
        if (m < src_.size() && (src_[m] == '+' || src_[m] == '-')) ++m;
        if (m < src_.size() && std::isdigit(static_cast<unsigned char>(src_[m]))) {
          is_float = true;
          pos_ = m;
          while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
        }
      }
      std::string t;
      for (char d : src_.substr(s, pos_ - s)) if (d != '_') t += d;
      Emit(is_float ? Tok::kFloat : Tok::kInt, t, line_);
      return;
    }
    if (c == '\'' || c == '"') {
      int start_line = line_;
      ++pos_;
      std::string out;
      for (;;) {
        if (pos_ >= src_.size()) Fail("unexpected end of string", start_line);
        char d = src_[pos_++];
        if (d == c) break;
        if (d == '\n') ++line_;
        if (d != '\\') { out += d; continue; }
        if (pos_ >= src_.size()) Fail("unexpected end of string", start_line);
        char e = src_[pos_++];
        switch (e) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case '0': out += '\0'; break;
          case 'a': out += '\a'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'v': out += '\v'; break;
          case '\\': case '\'': case '"': out += e; break;
          case '\n': ++line_; break;
          case 'x': case 'u': case 'U': {
            size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            if (pos_ + n > src_.size()) Fail("truncated escape in string", line_);
            std::string hex(src_.substr(pos_, n));
            char* endp = nullptr;
            unsigned long cp = std::strtoul(hex.c_str(), &endp, 16);
            if (endp != hex.c_str() + n || cp > 0x10FFFF) Fail("bad escape in string", line_);
            AppendUtf8(out, static_cast<uint32_t>(cp));
            pos_ += n;
            break;
          }
          default: out += '\\'; out += e;
        }
      }
      Emit(Tok::kString, out, start_line);
      return;
    }
    static const char* kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwo) {
      if (src_.substr(pos_, 2) == op) { Emit(Tok::kOp, op, line_); pos_ += 2; return; }
    }
    if (std::string_view("+-*/%~|.,:()[]{}<>=").find(c) != std::string_view::npos) {
      Emit(Tok::kOp, std::string(1, c), line_);
      ++pos_;
      return;
    }
    Fail(std::string("unexpected char '") + c + "'", line_);
  }

  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

constexpr int kMaxDepth = 300;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  std::unique_ptr<Template> Run() {
    auto tpl = std::make_unique<Template>();
    std::string end;
    tpl->body = ParseBody({}, &end);
    return tpl;
  }

 private:
  const Token& Peek(size_t ahead = 0) const { return t_[std::min(p_ + ahead, t_.size() - 1)]; }
  Token Next() { Token tok = Peek(); if (p_ < t_.size() - 1) ++p_; return tok; }
  bool IsOp(const char* op, size_t ahead = 0) const { return Peek(ahead).type == Tok::kOp && Peek(ahead).text == op; }
  bool IsName(const char* n, size_t ahead = 0) const { return Peek(ahead).type == Tok::kName && Peek(ahead).text == n; }
  void ExpectOp(const char* op) {
    if (!IsOp(op)) Fail(std::string("expected '") + op + "', got " + Describe(Peek()), Peek().line);
    Next();
  }
  std::string ExpectName() {
    if (Peek().type != Tok::kName) Fail("expected name, got " + Describe(Peek()), Peek().line);
    return Next().text;
  }
  void ExpectBlockEnd() {
    if (Peek().type != Tok::kBlockEnd) Fail("expected end of statement block, got " + Describe(Peek()), Peek().line);
    Next();
  }
  static std::string Describe(const Token& tok) {
    switch (tok.type) {
      case Tok::kEof: return "end of template";
      case Tok::kBlockEnd: return "'%}'";
      case Tok::kVarEnd: return "'}}'";
      case Tok::kText: return "template text";
      default: return "'" + tok.text + "'";
    }
  }
  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p(p) { if (++p->depth_ > kMaxDepth) Fail("template nested too deeply", p->Peek().line); }
    ~DepthGuard() { --p->depth_; }
    Parser* p;
  };

  // Each link of a left-associative chain (a + b + c, x.y.z, f|g|h) deepens the tree by one.
  struct ChainGuard {
    explicit ChainGuard(Parser* p) : p(p) {}
    void Link() { ++added; if (++p->depth_ > kMaxDepth) Fail("expression nested too deeply", p->Peek().line); }
    ~ChainGuard() { p->depth_ -= added; }
    Parser* p;
    int added = 0;
  };

  // Parses statements until a block whose keyword is in `ends` (consumed up to the keyword).
  Body ParseBody(const std::vector<std::string>& ends, std::string* end_found) {
    DepthGuard guard(this);
    Body body;
    for (;;) {
      const Token& tok = Peek();
      if (tok.type == Tok::kEof) {
        if (!ends.empty()) Fail("unexpected end of template, expected '" + ends.front() + "'", tok.line);
        return body;
      }
      if (tok.type == Tok::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->line = tok.line;
        s->text = tok.text;
        body.push_back(std::move(s));
        Next();
        continue;
      }
      if (tok.type == Tok::kVarBegin) {
        Next();
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->line = tok.line;
        s->expr = ParseTupleOrExpr();
        if (Peek().type != Tok::kVarEnd) Fail("expected '}}', got " + Describe(Peek()), Peek().line);
        Next();
        body.push_back(std::move(s));
        continue;
      }
      if (tok.type != Tok::kBlockBegin) Fail("unexpected " + Describe(tok), tok.line);
      const Token& kw = Peek(1);
      if (kw.type != Tok::kName) Fail("tag name expected", kw.line);
      for (const auto& e : ends) {
        if (kw.text == e) { Next(); Next(); *end_found = e; return body; }
      }
      Next();
      body.push_back(ParseStatement());
    }
  }

  StmtPtr ParseStatement() {
    Token kw = Next();
    auto s = std::make_unique<Stmt>();
    s->line = kw.line;
    std::string end;
    if (kw.text == "if") {
      s->kind = StmtKind::kIf;
      s->conds.push_back(ParseExpr());
      ExpectBlockEnd();
      for (;;) {
        s->branches.push_back(ParseBody({"elif", "else", "endif"}, &end));
        if (end == "elif") { s->conds.push_back(ParseExpr()); ExpectBlockEnd(); continue; }
        ExpectBlockEnd();
        if (end == "else") { s->branches.push_back(ParseBody({"endif"}, &end)); ExpectBlockEnd(); }
        break;
      }
    } else if (kw.text == "for") {
      s->kind = StmtKind::kFor;
      s->targets.push_back(ExpectName());
      while (IsOp(",")) { Next(); s->targets.push_back(ExpectName()); }
      if (!IsName("in")) Fail("expected 'in', got " + Describe(Peek()), Peek().line);
      Next();
      s->expr = ParseExpr(/*no_cond=*/true);
      if (IsName("if")) { Next(); s->filter = ParseExpr(); }
      if (IsName("recursive")) Fail("recursive loops are not supported", Peek().line);
      ExpectBlockEnd();
      s->body = ParseBody({"else", "endfor"}, &end);
      ExpectBlockEnd();
      if (end == "else") { s->else_body = ParseBody({"endfor"}, &end); ExpectBlockEnd(); }
    } else if (kw.text == "set") {
      std::string name = ExpectName();
      if (IsOp(".")) { Next(); s->attr = ExpectName(); }
      s->targets.push_back(name);
      while (IsOp(",") && s->attr.empty()) { Next(); s->targets.push_back(ExpectName()); }
      if (IsOp("=")) {
        Next();
        s->kind = StmtKind::kSet;
        s->expr = ParseTupleOrExpr();
        ExpectBlockEnd();
      } else {
        s->kind = StmtKind::kSetBlock;
        if (s->targets.size() != 1) Fail("expected '='", Peek().line);
        if (IsOp("|")) Fail("filtered set blocks are not supported", Peek().line);
        ExpectBlockEnd();
        s->body = ParseBody({"endset"}, &end);
        ExpectBlockEnd();
      }
    } else if (kw.text == "macro") {
      s->kind = StmtKind::kMacro;
      s->targets.push_back(ExpectName());
      ExpectOp("(");
      while (!IsOp(")")) {
        s->targets.push_back(ExpectName());
        if (IsOp("=")) { Next(); s->defaults.push_back(ParseExpr()); }
        else s->defaults.push_back(nullptr);
        if (!IsOp(",")) break;
        Next();
      }
      ExpectOp(")");
      ExpectBlockEnd();
      s->body = ParseBody({"endmacro"}, &end);
      if (Peek().type == Tok::kName) Next();
      ExpectBlockEnd();
    } else if (kw.text == "break" || kw.text == "continue") {
      s->kind = kw.text == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      ExpectBlockEnd();
    } else if (kw.text == "generation" ) {
      // transformers' {% generation %} marker: render its body as is.
      s->kind = StmtKind::kIf;
      ExpectBlockEnd();
      auto cond = std::make_unique<Expr>();
      cond->kind = ExprKind::kLiteral;
      cond->literal = Value::Bool(true);
      s->conds.push_back(std::move(cond));
      s->branches.push_back(ParseBody({"endgeneration"}, &end));
      ExpectBlockEnd();
    } else {
      Fail("Encountered unknown tag '" + kw.text + "'", kw.line);
    }
    return s;
  }

  ExprPtr Make(ExprKind k, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = line;
    return e;
  }

  ExprPtr ParseTupleOrExpr() {
    int line = Peek().line;
    ExprPtr first = ParseExpr();
    if (!IsOp(",")) return first;
    auto t = Make(ExprKind::kTuple, line);
    t->items.push_back(std::move(first));
    while (IsOp(",")) {
      Next();
      if (Peek().type == Tok::kVarEnd || Peek().type == Tok::kBlockEnd || IsOp(")")) break;
      t->items.push_back(ParseExpr());
    }
    return t;
  }

  ExprPtr ParseExpr(bool no_cond = false) {
    DepthGuard guard(this);
    ExprPtr e = ParseOr();
    if (no_cond) return e;
    ChainGuard chain(this);
    while (IsName("if")) {
      chain.Link();
      int line = Next().line;
      auto c = Make(ExprKind::kCond, line);
      c->a = std::move(e);
      c->b = ParseOr();
      if (IsName("else")) { Next(); c->c = ParseExpr(); }
      e = std::move(c);
    }
    return e;
  }
  ExprPtr ParseOr() {
    ExprPtr e = ParseAnd();
    ChainGuard chain(this);
    while (IsName("or")) {
      chain.Link();
      auto o = Make(ExprKind::kOr, Next().line);
      o->a = std::move(e);
      o->b = ParseAnd();
      e = std::move(o);
    }
    return e;
  }
  ExprPtr ParseAnd() {
    ExprPtr e = ParseNot();
    ChainGuard chain(this);
    while (IsName("and")) {
      chain.Link();
      auto o = Make(ExprKind::kAnd, Next().line);
      o->a = std::move(e);
      o->b = ParseNot();
      e = std::move(o);
    }
    return e;
  }
  ExprPtr ParseNot() {
    if (IsName("not")) {
      DepthGuard guard(this);
      auto n = Make(ExprKind::kNot, Next().line);
      n->a = ParseNot();
      return n;
    }
    return ParseCompare();
  }
  ExprPtr ParseCompare() {
    ExprPtr e = ParseMath1();
    ChainGuard chain(this);
    for (;;) {
      chain.Link();
      std::string op;
      int line = Peek().line;
      if (Peek().type == Tok::kOp && (Peek().text == "==" || Peek().text == "!=" || Peek().text == "<" ||
                                      Peek().text == "<=" || Peek().text == ">" || Peek().text == ">=")) {
        op = Next().text;
      } else if (IsName("in")) {
        Next();
        op = "in";
      } else if (IsName("not") && IsName("in", 1)) {
        Next(); Next();
        op = "not in";
      } else {
        return e;
      }
      auto b = Make(ExprKind::kBinary, line);
      b->name = op;
      b->a = std::move(e);
      b->b = ParseMath1();
      e = std::move(b);
    }
  }
  ExprPtr Binary(std::string op, ExprPtr a, ExprPtr b, int line) {
    auto e = Make(ExprKind::kBinary, line);
    e->name = std::move(op);
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }
  ExprPtr ParseMath1() {
    ExprPtr e = ParseConcat();
    ChainGuard chain(this);
    while (IsOp("+") || IsOp("-")) {
      chain.Link();
      Token op = Next();
      e = Binary(op.text, std::move(e), ParseConcat(), op.line);
    }
    return e;
  }
  ExprPtr ParseConcat() {
    ExprPtr e = ParseMath2();
    ChainGuard chain(this);
    while (IsOp("~")) {
      chain.Link();
      Token op = Next();
      e = Binary("~", std::move(e), ParseMath2(), op.line);
    }
    return e;
  }
  ExprPtr ParseMath2() {
    ExprPtr e = ParsePow();
    ChainGuard chain(this);
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      chain.Link();
      Token op = Next();
      e = Binary(op.text, std::move(e), ParsePow(), op.line);
    }
    return e;
  }
  ExprPtr ParsePow() {
    ExprPtr e = ParseUnary(true);
    ChainGuard chain(this);
    while (IsOp("**")) {
      chain.Link();
      Token op = Next();
      e = Binary("**", std::move(e), ParseUnary(true), op.line);
    }
    return e;
  }
  ExprPtr ParseUnary(bool with_filter) {
    DepthGuard guard(this);
    ExprPtr e;
    if (IsOp("-") || IsOp("+")) {
      Token op = Next();
      e = Make(ExprKind::kUnary, op.line);
      e->name = op.text;
      e->a = ParseUnary(false);
    } else {
      e = ParsePrimary();
    }
    e = ParsePostfix(std::move(e));
    if (with_filter) e = ParseFilterExpr(std::move(e));
    return e;
  }
  ExprPtr ParsePrimary() {
    Token tok = Next();
    switch (tok.type) {
      case Tok::kName: {
        auto e = Make(ExprKind::kLiteral, tok.line);
        if (tok.text == "true" || tok.text == "True") e->literal = Value::Bool(true);
        else if (tok.text == "false" || tok.text == "False") e->literal = Value::Bool(false);
        else if (tok.text == "none" || tok.text == "None") e->literal = Value::None();
        else { e->kind = ExprKind::kName; e->name = tok.text; }
        return e;
      }
      case Tok::kString: {
        auto e = Make(ExprKind::kLiteral, tok.line);
        std::string s = tok.text;
        while (Peek().type == Tok::kString) s += Next().text;
        e->literal = Value::Str(std::move(s));
        return e;
      }
      case Tok::kInt: {
        auto e = Make(ExprKind::kLiteral, tok.line);
        errno = 0;
        char* endp = nullptr;
        long long v = std::strtoll(tok.text.c_str(), &endp, 10);
        if (errno == ERANGE) e->literal = Value::Float(std::strtod(tok.text.c_str(), nullptr));
        else e->literal = Value::Int(v);
        return e;
      }
      case Tok::kFloat: {
        auto e = Make(ExprKind::kLiteral, tok.line);
        e->literal = Value::Float(std::strtod(tok.text.c_str(), nullptr));
        return e;
      }
      case Tok::kOp:
        if (tok.text == "(") {
          if (IsOp(")")) { Next(); auto t = Make(ExprKind::kTuple, tok.line); return t; }
          ExprPtr e = ParseExpr();
          if (IsOp(",")) {
            auto t = Make(ExprKind::kTuple, tok.line);
            t->items.push_back(std::move(e));
            while (IsOp(",")) { Next(); if (IsOp(")")) break; t->items.push_back(ParseExpr()); }
            e = std::move(t);
          }
          ExpectOp(")");
          return e;
        }
        if (tok.text == "[") {
          auto l = Make(ExprKind::kList, tok.line);
          while (!IsOp("]")) {
            l->items.push_back(ParseExpr());
            if (!IsOp(",")) break;
            Next();
          }
          ExpectOp("]");
          return l;
        }
        if (tok.text == "{") {
          auto d = Make(ExprKind::kDict, tok.line);
          while (!IsOp("}")) {
            d->items.push_back(ParseExpr());
            ExpectOp(":");
            d->items.push_back(ParseExpr());
            if (!IsOp(",")) break;
            Next();
          }
          ExpectOp("}");
          return d;
        }
        break;
      default: break;
    }
    Fail("unexpected " + Describe(tok), tok.line);
  }
  void ParseCallArgs(Expr* e) {
    ExpectOp("(");
    while (!IsOp(")")) {
      CallArg arg;
      if (Peek().type == Tok::kName && IsOp("=", 1)) { arg.name = Next().text; Next(); }
      arg.value = ParseExpr();
      e->args.push_back(std::move(arg));
      if (!IsOp(",")) break;
      Next();
    }
    ExpectOp(")");
  }
  ExprPtr ParsePostfix(ExprPtr e) {
    ChainGuard chain(this);
    for (;;) {
      chain.Link();
      if (IsOp(".")) {
        int line = Next().line;
        auto a = Make(ExprKind::kAttr, line);
        if (Peek().type == Tok::kInt) {  // x.0 is x[0]
          a->kind = ExprKind::kIndex;
          a->b = Make(ExprKind::kLiteral, line);
          a->b->literal = Value::Int(std::strtoll(Next().text.c_str(), nullptr, 10));
        } else {
          a->name = ExpectName();
        }
        a->a = std::move(e);
        e = std::move(a);
      } else if (IsOp("[")) {
        int line = Next().line;
        ExprPtr parts[3];
        bool slice = false;
        int idx = 0;
        while (!IsOp("]")) {
          if (IsOp(":")) {
            Next();
            slice = true;
            if (++idx > 2) Fail("invalid slice", line);
            continue;
          }
          if (parts[idx]) Fail("expected ']'", Peek().line);
          parts[idx] = ParseExpr();
        }
        ExpectOp("]");
        if (slice) {
          auto s = Make(ExprKind::kSlice, line);
          s->a = std::move(e);
          for (auto& p : parts) s->items.push_back(std::move(p));
          e = std::move(s);
        } else {
          if (!parts[0]) Fail("expected subscript", line);
          auto s = Make(ExprKind::kIndex, line);
          s->a = std::move(e);
          s->b = std::move(parts[0]);
          e = std::move(s);
        }
      } else if (IsOp("(")) {
        auto c = Make(ExprKind::kCall, Peek().line);
        c->a = std::move(e);
        ParseCallArgs(c.get());
        e = std::move(c);
      } else {
        return e;
      }
    }
  }
  ExprPtr ParseFilterExpr(ExprPtr e) {
    ChainGuard chain(this);
    for (;;) {
      chain.Link();
      if (IsOp("|")) {
        int line = Next().line;
        auto f = Make(ExprKind::kFilter, line);
        f->name = ExpectName();
        while (IsOp(".")) { Next(); f->name += "." + ExpectName(); }
        if (IsOp("(")) ParseCallArgs(f.get());
        f->a = std::move(e);
        e = std::move(f);
      } else if (IsName("is")) {
        int line = Next().line;
        auto t = Make(ExprKind::kTest, line);
        if (IsName("not")) { Next(); t->negated = true; }
        t->name = ExpectName();
        if (IsOp("(")) {
          ParseCallArgs(t.get());
        } else if (Peek().type == Tok::kString || Peek().type == Tok::kInt || Peek().type == Tok::kFloat ||
                   (Peek().type == Tok::kName && !IsName("and") && !IsName("or") && !IsName("else") &&
                    !IsName("if") && !IsName("in") && !IsName("is") && !IsName("not"))) {
          CallArg arg;
          arg.value = ParseUnary(false);
          t->args.push_back(std::move(arg));
        }
        t->a = std::move(e);
        e = std::move(t);
      } else if (IsOp("(")) {
        auto c = Make(ExprKind::kCall, Peek().line);
        c->a = std::move(e);
        ParseCallArgs(c.get());
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  size_t p_ = 0;
  int depth_ = 0;
};

}  // namespace

std::unique_ptr<Template> ParseTemplate(std::string_view source) {
  Lexer lexer(source);
  Parser parser(lexer.Run());
  return parser.Run();
}

}  // namespace arle::tokenizer::jinja
