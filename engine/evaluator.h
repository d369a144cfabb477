// Evaluate: applies the escalation matrix to one request.
//
// Every trigger is evaluated; every one that fires (true, or failed at run time: fail closed) is
// reported in matrix order with the values its condition read. The verdict is the most
// restrictive fired lane's (DENY > BLOCK > SAFE_MODE > HOLD > PARK_ITEM > ALLOW), ties going to
// the lane listed first; missing_evidence is what that lane requires and the request lacks; the
// SLA deadline is `now` plus the lane's SLA.
//
// Pure and thread-safe: no lock, no clock (the caller says when), and when nothing fires no heap
// allocation. What cases change about the answer (redemption, scopes in force) is the case
// lifecycle's, after this (cases/decider.h).
//
// Example:
//   Decision d = Evaluate(matrix, request, absl::Now());  // request passed ValidateRequest
#ifndef AGATE_ENGINE_EVALUATOR_H_
#define AGATE_ENGINE_EVALUATOR_H_

#include <memory>

#include "absl/time/time.h"
#include "engine/decision.h"
#include "engine/expr/program.h"
#include "engine/matrix.h"
#include "engine/request.h"

namespace agate::engine {

// Evaluate decides request (which must have passed ValidateRequest) against matrix (not null) at
// time now. context.counter answers count(signal, window); without one count() reads the
// request's own signals.
Decision Evaluate(std::shared_ptr<const Matrix> matrix, const Request& request, absl::Time now,
                  const expr::EvalContext& context = {});

}  // namespace agate::engine

#endif  // AGATE_ENGINE_EVALUATOR_H_
