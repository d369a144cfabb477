// The Program facade and Compile: parse (syntax.h), check (internal/checker.h), analyse
// (internal/analysis.h); Program runs the result with the interpreter (internal/interpreter.h).
#include "engine/expr/program.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/expr/internal/analysis.h"
#include "engine/expr/internal/checker.h"
#include "engine/expr/internal/compiled.h"
#include "engine/expr/internal/interpreter.h"
#include "engine/expr/internal/values.h"
#include "engine/expr/syntax.h"

namespace agate::engine::expr {

using internal::CompiledExpr;

Program::Program(std::unique_ptr<CompiledExpr> expr) : expr_(std::move(expr)) {}
Program::~Program() = default;

Outcome Program::Evaluate(const Request& request, const EvalContext& context) const {
  return internal::Evaluate(*expr_, request, context);
}

std::string Program::DescribeError(const Outcome& outcome) const {
  if (!outcome.is_error()) return "";
  if (outcome.error_code() == ErrorCode::kNotBool) {
    return absl::StrCat("the condition's value is not a bool in ", expr_->texts[expr_->ast.root]);
  }
  // The failing node: the outermost node at that offset (parents come after their children).
  int node = expr_->ast.root;
  for (size_t i = 0; i < expr_->ast.nodes.size(); ++i) {
    if (expr_->ast.nodes[i].offset == outcome.error_offset()) node = static_cast<int>(i);
  }
  const std::string& text = expr_->texts[node];
  const internal::Compiled& k = expr_->nodes[node];
  switch (outcome.error_code()) {
    case ErrorCode::kNoSuchKey:
      return absl::StrCat("no such key '", k.has_key ? k.key : "?", "' in ", text);
    case ErrorCode::kNoSuchOverload: {
      const internal::Node& n = expr_->ast.nodes[node];
      const std::string op = n.kind == internal::NodeKind::kBinary ||
                                     n.kind == internal::NodeKind::kUnary ||
                                     n.kind == internal::NodeKind::kCall
                                 ? n.text
                                 : "[]";
      return absl::StrCat("no matching overload for '", op,
                          "' (an operand has the wrong type at run time) in ", text);
    }
    case ErrorCode::kIndexOutOfRange:
      return absl::StrCat("index out of range in ", text);
    case ErrorCode::kDivisionByZero:
      return absl::StrCat("division by zero in ", text);
    case ErrorCode::kOverflow:
      return absl::StrCat("integer overflow in ", text);
    case ErrorCode::kInvalidArgument:
      return absl::StrCat("invalid argument in ", text);
    default:
      return absl::StrCat("error in ", text);
  }
}

void Program::Observe(const Request& request, const EvalContext& context,
                      std::vector<Observation>* out) const {
  for (int n : expr_->reads) {
    const internal::Compiled& k = expr_->nodes[n];
    Observation& o = out->emplace_back();
    o.field = expr_->texts[n];
    internal::Val v;
    if (k.op == internal::Op::kHasField) {
      o.field = expr_->texts[expr_->ast.nodes[n].args[0]];
      v = internal::ReadField(*expr_, request, context, k.field);
    } else {
      v = internal::Eval(*expr_, request, context, n);
    }
    internal::ToProto(v, &o.value);
  }
}

std::optional<bool> Program::ConstantValue() const { return expr_->constant; }
const std::optional<std::vector<std::string>>& Program::RequiredActionTypes() const {
  return expr_->action_types;
}
const std::vector<std::string>& Program::Fields() const { return expr_->fields; }
const std::string& Program::source() const { return expr_->source; }

CompileResult Compile(absl::string_view text) {
  CompileResult result;
  auto expr = std::make_unique<CompiledExpr>();
  expr->source = std::string(text);
  if (!internal::Parse(text, &expr->ast, &result.errors)) return result;
  internal::Check(expr.get(), &result.errors);
  if (!result.errors.empty()) {
    std::stable_sort(result.errors.begin(), result.errors.end(),
                     [](const Issue& a, const Issue& b) { return a.offset < b.offset; });
    return result;
  }
  internal::Analyze(expr.get(), &result.warnings);
  std::stable_sort(result.warnings.begin(), result.warnings.end(),
                   [](const Issue& a, const Issue& b) { return a.offset < b.offset; });
  result.program = std::unique_ptr<const Program>(new Program(std::move(expr)));
  return result;
}

}  // namespace agate::engine::expr
