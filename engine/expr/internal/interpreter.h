// The interpreter of agate's CEL subset: evaluates the nodes of a CompiledExpr against one
// request with CEL's semantics (commutative && and ||, strict lists, heterogeneous equality,
// checked integer arithmetic).
//
// Internal to engine/expr. Every function here is thread-safe (the map-key buffer is per thread)
// and never throws. A run-time error is a value: Eval returns a Val of kind VK::kError with the
// ErrorCode and the failing node, Evaluate an error Outcome with the node's offset. Vals point
// into expr and request, which must outlive them.
//
// Example:
//   const Outcome o = Evaluate(expr, request, context);  // what Program::Evaluate returns
//   const Val v = Eval(expr, request, context, n);       // the value of one subexpression
#ifndef AGATE_ENGINE_EXPR_INTERNAL_INTERPRETER_H_
#define AGATE_ENGINE_EXPR_INTERNAL_INTERPRETER_H_

#include "engine/expr/internal/compiled.h"
#include "engine/expr/internal/values.h"
#include "engine/expr/program.h"
#include "engine/expr/schema.h"
#include "engine/request.h"

namespace agate::engine::expr::internal {

// Evaluate runs the condition (expr.ast.root) against request: true, false, or an error (also
// when its value is not a bool). Program::Evaluate is this.
Outcome Evaluate(const CompiledExpr& expr, const Request& request, const EvalContext& context);

// Eval returns the value of node n of expr (expr.ast.root: the condition) against request, or an
// error Val naming the node that failed.
Val Eval(const CompiledExpr& expr, const Request& request, const EvalContext& context, int n);

// ReadField returns the value of request field f as a condition reads it; null for a message.
Val ReadField(const CompiledExpr& expr, const Request& request, const EvalContext& context,
              Field f);

}  // namespace agate::engine::expr::internal

#endif  // AGATE_ENGINE_EXPR_INTERNAL_INTERPRETER_H_
