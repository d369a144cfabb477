// Decision: what the evaluator concluded about one request.
//
// A Decision refers to lanes and triggers of the matrix that produced it by index, and keeps that
// matrix alive through `matrix`. On the ALLOW path a Decision owns no heap memory.
#ifndef AGATE_ENGINE_DECISION_H_
#define AGATE_ENGINE_DECISION_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/expr/program.h"
#include "engine/verdict.h"

namespace agate::engine {

class Matrix;

// A unique, time-ordered decision id: 26 characters of Crockford base32 (a ULID: 48 bits of
// milliseconds, 32 random bits per process, a 48-bit process-wide counter). No allocation.
class DecisionId {
 public:
  // Next returns a new id for time now. Thread-safe.
  static DecisionId Next(absl::Time now);
  absl::string_view view() const { return absl::string_view(chars_.data(), chars_.size()); }

 private:
  std::array<char, 26> chars_{};
};

// A trigger that fired (its condition was true or failed at run time).
struct FiredTrigger {
  int trigger = -1;                       // index into matrix->triggers()
  std::vector<expr::Observation> values;  // what the condition read
  std::string error;                      // empty unless the condition failed (fail closed)
};

struct Decision {
  DecisionId id;
  Verdict verdict = v1::VERDICT_ALLOW;
  int lane = -1;  // index into matrix->lanes(); -1 for ALLOW
  absl::Time decided_at;
  absl::Time sla_deadline = absl::InfinitePast();  // decided_at + the lane's SLA; unset for ALLOW
  std::vector<FiredTrigger> fired;                 // matrix order
  std::vector<int> missing_evidence;               // indices into the winning lane's evidence list
  std::shared_ptr<const Matrix> matrix;
  std::string reason;  // set when the verdict needs an explanation beyond `fired`
};

}  // namespace agate::engine

#endif  // AGATE_ENGINE_DECISION_H_
