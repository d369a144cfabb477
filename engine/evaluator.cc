#include "engine/evaluator.h"

#include <utility>

namespace agate::engine {

Decision Evaluate(std::shared_ptr<const Matrix> matrix_ptr, const Request& request, absl::Time now,
                  const expr::EvalContext& context) {
  Decision decision;
  decision.matrix = std::move(matrix_ptr);
  const Matrix& matrix = *decision.matrix;
  decision.decided_at = now;
  decision.id = DecisionId::Next(now);

  const std::vector<Trigger>& triggers = matrix.triggers();
  // Only the triggers that can fire for this action type, merged with the unindexed ones in
  // matrix order (no allocation: two cursors).
  const std::vector<int>& typed = matrix.TriggersForActionType(request.action().type());
  const std::vector<int>& always = matrix.UnindexedTriggers();
  size_t t = 0, u = 0;
  while (t < typed.size() || u < always.size()) {
    size_t i;
    if (u == always.size() || (t < typed.size() && typed[t] < always[u])) {
      i = static_cast<size_t>(typed[t++]);
    } else {
      i = static_cast<size_t>(always[u++]);
    }
    const Trigger& trigger = triggers[i];
    const expr::Outcome outcome = trigger.condition->Evaluate(request, context);
    if (!outcome.fired()) continue;

    // Only fired triggers pay for their report: the ALLOW path allocates nothing.
    FiredTrigger& fired = decision.fired.emplace_back();
    fired.trigger = static_cast<int>(i);
    if (outcome.is_error()) fired.error = trigger.condition->DescribeError(outcome);
    trigger.condition->Observe(request, context, &fired.values);

    // Most restrictive verdict wins; among equals, the lane listed first.
    const Verdict verdict = matrix.lanes()[trigger.lane].verdict;
    if (decision.lane < 0 || MoreRestrictive(verdict, decision.verdict) ||
        (verdict == decision.verdict && trigger.lane < decision.lane)) {
      decision.lane = trigger.lane;
      decision.verdict = verdict;
    }
  }

  if (decision.lane >= 0) {
    const Lane& lane = matrix.lanes()[decision.lane];
    decision.sla_deadline = decision.decided_at + lane.sla;
    decision.missing_evidence = MissingEvidence(lane, request);
  }
  return decision;
}

}  // namespace agate::engine
