// Evaluator: applies the escalation matrix to one request and returns the Decision.
//
// Every trigger is evaluated; every one that fires (true, or failed at run time: fail closed) is
// reported in matrix order with the values its condition read. The verdict is the most
// restrictive fired lane's (DENY > BLOCK > SAFE_MODE > HOLD > PARK_ITEM > ALLOW), ties going to
// the lane listed first; missing_evidence is what that lane requires and the request lacks.
//
// Thread-safe: Evaluate may run on many threads at once; it takes no lock and, when nothing
// fires, allocates nothing. The matrix snapshot can be swapped atomically with SetMatrix while
// requests run; each request finishes on the snapshot it started with.
//
// Example:
//   Evaluator evaluator(matrix);
//   Decision d = evaluator.Evaluate(request);   // request already passed ValidateRequest
#ifndef AGATE_ENGINE_EVALUATOR_H_
#define AGATE_ENGINE_EVALUATOR_H_

#include <atomic>
#include <memory>

#include "engine/clock.h"
#include "engine/decision.h"
#include "engine/expr/program.h"
#include "engine/matrix.h"
#include "engine/request.h"

namespace agate::engine {

class Evaluator {
 public:
  // matrix must not be null. clock and counter must outlive the Evaluator; a null counter makes
  // count(signal, window) read the request's own signals only.
  explicit Evaluator(std::shared_ptr<const Matrix> matrix, const Clock& clock = RealClock(),
                     const expr::SignalCounter* counter = nullptr);

  // Evaluate decides request (which must have passed ValidateRequest) at the clock's now.
  Decision Evaluate(const Request& request) const;

  // matrix returns the current snapshot.
  std::shared_ptr<const Matrix> matrix() const { return matrix_.load(std::memory_order_acquire); }

  // SetMatrix swaps the snapshot atomically; requests in flight finish on the old one.
  void SetMatrix(std::shared_ptr<const Matrix> matrix) {
    matrix_.store(std::move(matrix), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const Matrix>> matrix_;
  const Clock& clock_;
  const expr::SignalCounter* counter_;
};

}  // namespace agate::engine

#endif  // AGATE_ENGINE_EVALUATOR_H_
