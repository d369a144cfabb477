// Decision: the PDP's final answer to one request, in engine types.
//
// The evaluator fills what the matrix says (verdict, winning lane, fired triggers, missing
// evidence); the case lifecycle (cases/) then amends it where cases change the answer: the ids of
// the cases the decision opened, joined or redeemed, a redemption's ALLOW, or a verdict that a
// scope in force imposes, with the reason. What leaves Decide is final; EncodeDecision
// (decision_codec.h) turns it into the wire's EvaluateResponse once.
//
// A Decision refers to lanes and triggers of the matrix that produced it by index, and keeps that
// matrix alive through `matrix`. On the ALLOW path a Decision owns no heap memory.
#ifndef AGATE_ENGINE_DECISION_H_
#define AGATE_ENGINE_DECISION_H_

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/expr/program.h"
#include "engine/matrix.h"
#include "engine/request.h"
#include "engine/verdict.h"

namespace agate::engine {

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

// A verdict imposed by a scope in force (a workflow in safe mode or paused, a disabled
// credential): the answer reports the imposing case's lane as that case keeps it (it may come
// from an earlier matrix), its current owner and its deadline.
struct Imposition {
  std::shared_ptr<const Lane> lane;
  std::string owner;
  absl::Time sla_deadline;
};

struct Decision {
  DecisionId id;
  Verdict verdict = v1::VERDICT_ALLOW;
  absl::Time decided_at;
  std::shared_ptr<const Matrix> matrix;
  std::vector<FiredTrigger> fired;  // matrix order

  // The lane the answer reports: matrix->lanes()[lane], or imposed->lane when a scope in force
  // imposed the verdict; none for ALLOW (lane -1, no imposition).
  int lane = -1;
  std::optional<Imposition> imposed;
  absl::Time sla_deadline = absl::InfinitePast();  // unset for ALLOW
  std::vector<int> missing_evidence;               // indices into the reported lane's evidence list

  // Set by the case lifecycle: the case of the reported lane (opened, joined, redeemed or
  // imposing), every case the decision touched, and why the verdict is what it is when `fired`
  // does not say it (a redemption, a refused redemption, a scope in force).
  std::string case_id;
  std::vector<std::string> case_ids;
  std::string reason;
  bool redeemed = false;  // an approval was redeemed: the verdict is its ALLOW

  // reported_lane returns the lane the answer reports, or null for ALLOW.
  const Lane* reported_lane() const {
    if (imposed.has_value()) return imposed->lane.get();
    return lane >= 0 ? &matrix->lanes()[lane] : nullptr;
  }
};

// MissingEvidence returns the indices of lane.evidence that request lacks (absent or empty).
std::vector<int> MissingEvidence(const Lane& lane, const Request& request);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_DECISION_H_
