// The analyses of a checked condition, for the matrix loader, lint and the evaluator's index:
// which request fields it reads (Program::Fields, Observe), whether it has the same value for
// every valid request (Program::ConstantValue: a trigger that never or always fires), which
// action types it can fire for (Program::RequiredActionTypes), and warnings for reads that can
// fail at run time (a map key read without a has() guard).
//
// Internal to engine/expr. Analyze is a pure function of its input and thread-safe; it never
// fails (warnings are not errors) and never throws.
#ifndef AGATE_ENGINE_EXPR_INTERNAL_ANALYSIS_H_
#define AGATE_ENGINE_EXPR_INTERNAL_ANALYSIS_H_

#include <vector>

#include "engine/expr/internal/compiled.h"
#include "engine/expr/program.h"

namespace agate::engine::expr::internal {

// Analyze fills expr->fields, expr->reads, expr->constant and expr->action_types of an
// expression that Check accepted without errors, and appends its warnings, with their byte
// offsets, to *warnings in the order found.
void Analyze(CompiledExpr* expr, std::vector<Issue>* warnings);

}  // namespace agate::engine::expr::internal

#endif  // AGATE_ENGINE_EXPR_INTERNAL_ANALYSIS_H_
