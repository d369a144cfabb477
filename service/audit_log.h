// AuditLog: the audit trail in the hash-chained decision log (store/decision_log.h). It is the
// case lifecycle's AuditSink (every case transition but joins, every kill switch change) and
// takes the calls the server refused for want of identity or permission. Each record carries the
// verified principal; `agate verify-log` checks them with the decisions.
//
// Transitions and kill switch changes are written synchronously (before the operation returns:
// they are rare and what they record happened). Refusals are written in the background and
// limited to refusals_per_second (an unauthenticated flood must not fill the disk); past it they
// are counted, not written (agate_refusals_unaudited_total). A failing log never fails the
// operation: DecisionLog counts, logs and retries.
//
// Thread-safe.
#ifndef AGATE_SERVICE_AUDIT_LOG_H_
#define AGATE_SERVICE_AUDIT_LOG_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agate/v1/agate.pb.h"
#include "cases/audit.h"
#include "common/clock.h"
#include "store/decision_log.h"

namespace agate::service {

class AuditLog final : public cases::AuditSink {
 public:
  // log (may be null: nothing is written, refusals are still counted) and clock must outlive
  // the AuditLog.
  AuditLog(store::DecisionLog* log, const Clock& clock, int refusals_per_second = 100)
      : log_(log), clock_(clock), refusals_per_second_(refusals_per_second) {}

  void Transition(const v1::Case& c, const v1::Transition& transition) override;
  void KillSwitch(const v1::KillSwitch& change) override;
  // Refusal records a call refused with status (UNAUTHENTICATED, PERMISSION_DENIED) for
  // principal (as far as it was known).
  void Refusal(absl::string_view method, const absl::Status& status,
               const v1::Principal& principal);

  uint64_t refusals() const { return refusals_.load(std::memory_order_relaxed); }
  uint64_t refusals_unaudited() const { return unaudited_.load(std::memory_order_relaxed); }

 private:
  void Append(const std::string& body, bool sync);

  store::DecisionLog* const log_;
  const Clock& clock_;
  const int refusals_per_second_;
  std::atomic<int64_t> window_second_{0};
  std::atomic<int> window_count_{0};
  std::atomic<uint64_t> refusals_{0};
  std::atomic<uint64_t> unaudited_{0};
};

}  // namespace agate::service

#endif  // AGATE_SERVICE_AUDIT_LOG_H_
