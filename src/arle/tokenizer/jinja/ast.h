// arle::tokenizer::jinja syntax tree and parser entry point: expressions and statements of the
// Jinja subset chat templates use, each node carrying its template line for error messages.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "arle/tokenizer/jinja/value.h"

namespace arle::tokenizer::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral, kName, kList, kDict, kTuple, kAttr, kIndex, kSlice, kCall, kFilter, kTest,
  kUnary, kBinary, kAnd, kOr, kNot, kCond,
};

struct CallArg {
  std::string name;  // empty: positional
  ExprPtr value;
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value literal;          // kLiteral
  std::string name;       // kName, kAttr attribute, kFilter/kTest name, kUnary/kBinary operator
  std::vector<ExprPtr> items;  // kList/kTuple items; kDict keys/values alternating;
                               // kSlice start/stop/step (null when absent)
  ExprPtr a, b, c;        // operands: kAttr/kIndex/kCall/kFilter/kTest target in a; kIndex key in b;
                          // kCond: a if b else c
  std::vector<CallArg> args;  // kCall, kFilter, kTest
  bool negated = false;   // kTest "is not"
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue, kCallBlock };

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;                   // kText
  ExprPtr expr;                       // kOutput, kSet value, kFor iterable
  std::vector<ExprPtr> conds;         // kIf: one condition per branch (else: none)
  std::vector<Body> branches;         // kIf branches (else last when conds.size() < branches.size())
  std::vector<std::string> targets;   // kFor loop variables; kSet names; kMacro: name + params
  std::string attr;                   // kSet "ns.attr": attribute
  ExprPtr filter;                     // kFor "if" filter
  Body body, else_body;               // kFor, kMacro, kSetBlock
  std::vector<ExprPtr> defaults;      // kMacro parameter defaults (null when none)
};

struct Template {
  Body body;
};

// Parses template source with trim_blocks and lstrip_blocks; throws Error (with line) on bad syntax.
std::unique_ptr<Template> ParseTemplate(std::string_view source);

}  // namespace arle::tokenizer::jinja
