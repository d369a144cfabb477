// The type checker of agate's CEL subset: types every node of a parsed condition against the
// request schema (engine/expr/schema.h) and lowers it to the compiled form the interpreter runs
// (internal/compiled.h), resolving fields to indices, constant map keys, count() windows and
// matches() patterns (compiled once, with RE2) at compile time.
//
// Internal to engine/expr. Check is a pure function of its input and thread-safe. It reports
// errors, never throws.
#ifndef AGATE_ENGINE_EXPR_INTERNAL_CHECKER_H_
#define AGATE_ENGINE_EXPR_INTERNAL_CHECKER_H_

#include <vector>

#include "engine/expr/internal/compiled.h"
#include "engine/expr/program.h"

namespace agate::engine::expr::internal {

// Check types and lowers expr->ast, which Parse must have filled without errors: it fills
// expr->nodes and expr->texts (each node's canonical source text) and appends every type error,
// with the byte offset of its subexpression, to *errors, once each, in the order found. The
// condition as a whole must be bool (or dyn).
void Check(CompiledExpr* expr, std::vector<Issue>* errors);

}  // namespace agate::engine::expr::internal

#endif  // AGATE_ENGINE_EXPR_INTERNAL_CHECKER_H_
