#include "cases/decider.h"

#include <utility>

#include "common/status_macros.h"
#include "engine/evaluator.h"

namespace agate::cases {

absl::StatusOr<std::unique_ptr<Decider>> Decider::Create(
    std::shared_ptr<const engine::Matrix> matrix, const Clock& clock, DeciderOptions options,
    CaseJournal* journal, const JournalContents* restore) {
  ASSIGN_OR_RETURN(std::unique_ptr<CaseStore> cases,
                   CaseStore::Create(clock, options.cases, journal, restore));
  return std::unique_ptr<Decider>(
      new Decider(std::move(matrix), clock, options.signals, std::move(cases)));
}

Decider::Decider(std::shared_ptr<const engine::Matrix> matrix, const Clock& clock,
                 SignalCounterOptions signals, std::unique_ptr<CaseStore> cases)
    : clock_(clock),
      matrix_(std::move(matrix)),
      signals_(clock, signals),
      cases_(std::move(cases)) {}

absl::StatusOr<engine::Decision> Decider::Decide(const engine::Request& request,
                                                 DecisionSealer* sealer, absl::string_view caller) {
  signals_.Record(request);
  engine::Decision decision =
      engine::Evaluate(matrix(), request, clock_.Now(), {.counter = &signals_});
  RETURN_IF_ERROR(cases_->Apply(request, &decision, sealer, caller));
  return decision;
}

}  // namespace agate::cases
