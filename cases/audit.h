// AuditSink: where the case lifecycle sends what must be in the audit trail — every transition
// of a case but the joins (opened, acknowledged, each vote, redeemed, timeouts) and every kill
// switch change, each with the verified principal. service/ writes them to the hash-chained
// decision log (store/decision_log.h), so `agate verify-log` covers the whole story of a case.
//
// Calls come under the case store's lock, in the order things happened, before the operation
// returns: an implementation must not call the case store, and should be quick (a synchronous
// append of one line). Implementations must be thread-safe.
#ifndef AGATE_CASES_AUDIT_H_
#define AGATE_CASES_AUDIT_H_

#include "agate/v1/agate.pb.h"

namespace agate::cases {

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Transition records transition of c (c as it is after it).
  virtual void Transition(const v1::Case& c, const v1::Transition& transition) = 0;
  // KillSwitch records a kill switch engaged or lifted.
  virtual void KillSwitch(const v1::KillSwitch& change) = 0;
};

}  // namespace agate::cases

#endif  // AGATE_CASES_AUDIT_H_
