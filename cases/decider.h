// Decider: the one decision path. Decide(request) -> Decision, final, in engine types.
//
//   1. the request's signals are counted (count() windows, cases/signal_counter.h);
//   2. the matrix decides (engine::Evaluate, on the snapshot current when the call started);
//   3. the cases settle it (CaseStore::Apply): cases opened or joined, a redemption's ALLOW, a
//      verdict a scope in force imposes; the decision's cases are durable before Decide returns.
// What comes out is the answer; EncodeDecision (engine/decision_codec.h) turns it into the wire
// response once, and service/ records it.
//
// Thread-safe. The matrix can be swapped atomically with SetMatrix (hot reload) while requests
// run; each request finishes on the snapshot it started with, and open cases keep the lane they
// were opened with. On the ALLOW path Decide takes no lock and allocates nothing.
//
// Example:
//   ASSIGN_OR_RETURN(std::unique_ptr<Decider> decider, Decider::Create(matrix, RealClock()));
//   ASSIGN_OR_RETURN(engine::Decision d, decider->Decide(request));  // request is valid
//   engine::EncodeDecision(d, &response);
#ifndef AGATE_CASES_DECIDER_H_
#define AGATE_CASES_DECIDER_H_

#include <atomic>
#include <memory>

#include "absl/status/statusor.h"
#include "cases/case_journal.h"
#include "cases/case_store.h"
#include "cases/signal_counter.h"
#include "common/clock.h"
#include "engine/decision.h"
#include "engine/matrix.h"
#include "engine/request.h"

namespace agate::cases {

struct DeciderOptions {
  CaseStoreOptions cases;
  SignalCounterOptions signals;
};

class Decider {
 public:
  // Create returns a Decider on matrix (not null) whose cases commit to journal (null: memory
  // only; it must outlive the Decider) and start from restore (null: empty), see
  // CaseStore::Create for its errors. clock must outlive the Decider.
  static absl::StatusOr<std::unique_ptr<Decider>> Create(
      std::shared_ptr<const engine::Matrix> matrix, const Clock& clock, DeciderOptions options = {},
      CaseJournal* journal = nullptr, const JournalContents* restore = nullptr);

  // Decide decides request, which must have passed engine::ValidateRequest, for caller (the
  // verified agent's subject; empty in development mode). When the decision changes a case,
  // sealer (if not null) is asked for the decision's row, committed with the cases. Errors are
  // CaseStore::Apply's: RESOURCE_EXHAUSTED (too many open cases), the journal's UNAVAILABLE.
  absl::StatusOr<engine::Decision> Decide(const engine::Request& request,
                                          DecisionSealer* sealer = nullptr,
                                          absl::string_view caller = {});

  // matrix returns the current snapshot.
  std::shared_ptr<const engine::Matrix> matrix() const {
    return matrix_.load(std::memory_order_acquire);
  }
  // SetMatrix swaps the snapshot atomically.
  void SetMatrix(std::shared_ptr<const engine::Matrix> matrix) {
    matrix_.store(std::move(matrix), std::memory_order_release);
  }

  CaseStore& cases() { return *cases_; }
  const CaseStore& cases() const { return *cases_; }
  SlidingWindowCounter& signals() { return signals_; }

 private:
  Decider(std::shared_ptr<const engine::Matrix> matrix, const Clock& clock,
          SignalCounterOptions signals, std::unique_ptr<CaseStore> cases);

  const Clock& clock_;
  std::atomic<std::shared_ptr<const engine::Matrix>> matrix_;
  SlidingWindowCounter signals_;
  std::unique_ptr<CaseStore> cases_;
};

}  // namespace agate::cases

#endif  // AGATE_CASES_DECIDER_H_
