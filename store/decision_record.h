// DecisionRecordBody: what the decision log keeps about one Evaluate decision, as the body that
// DecisionLog::Append takes (decision_log.h puts seq, prev and hash around it).
//
// Fields, in this order (strings JSON-escaped as common/json_string.h says):
//   "time"            decided_at, RFC 3339 UTC with milliseconds: "2026-11-24T10:00:00.123Z"
//   "request_id"      request.request_id
//   "tenant_id"       request.tenant_id
//   "request_digest"  as given (the caller's digest of the request)
//   "decision_id"     response.decision_id
//   "verdict"         "ALLOW", "PARK_ITEM", "HOLD", "SAFE_MODE", "BLOCK", "DENY"
//   "lane"            response.lane ("" for ALLOW)
//   "case_ids"        response.case_ids, an array of strings
//   "fired"           response.fired: [{"trigger_id","lane","values":[{"field","value"}],"error"}],
//                     each value as JSON (null, number, string, bool, object with sorted keys,
//                     array; NaN and infinities as the strings "NaN", "Infinity", "-Infinity")
//   "matrix_version"  response.matrix_version
//   "reason"          response.reason, only when not empty
//
// It runs once per decision, ALLOW included: hand-written JSON appended to one string, no
// protobuf JSON printer. Thread-safe (pure functions).
//
// Example:
//   log->Append(DecisionRecordBody(request, response, digest, absl::Now()), /*sync=*/false);
//   // "time":"2026-11-24T10:00:00.123Z","request_id":"r1","tenant_id":"acme",
//   // "request_digest":"9f2c...","decision_id":"01M8...","verdict":"ALLOW","lane":"",
//   // "case_ids":[],"fired":[],"matrix_version":"1"
#ifndef AGATE_STORE_DECISION_RECORD_H_
#define AGATE_STORE_DECISION_RECORD_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agate/v1/agate.pb.h"

namespace agate::store {

// AppendDecisionRecordBody appends the record body (a JSON object's members, without braces) to
// *out. A caller that reuses *out (clearing it) allocates nothing once it has grown.
void AppendDecisionRecordBody(const agate::v1::EvaluateRequest& request,
                              const agate::v1::EvaluateResponse& response,
                              absl::string_view request_digest, absl::Time decided_at,
                              std::string* out);

// DecisionRecordBody returns the record body.
std::string DecisionRecordBody(const agate::v1::EvaluateRequest& request,
                               const agate::v1::EvaluateResponse& response,
                               absl::string_view request_digest, absl::Time decided_at);

// A recorded ALLOW decision read back from the log: everything an ALLOW answer holds is in its
// record, so the server rebuilds its idempotency entries for ALLOW from the log at start-up
// instead of writing each ALLOW a second time.
struct RecordedAllow {
  std::string key;     // tenant_id '\0' request_id (engine/idempotency.h IdempotencyKey)
  std::string digest;  // the request digest's bytes
  absl::Time decided_at;
  agate::v1::EvaluateResponse response;  // decision_id, verdict, case_ids, matrix_version, reason
};

// ParseAllowRecord reads one log line (as DecisionLog wrote it). nullopt for a line that is not
// a well-formed record of an ALLOW decision.
std::optional<RecordedAllow> ParseAllowRecord(absl::string_view line);

// Audit records: what else the log keeps beside decisions, each with "event" naming its kind and
// the verified principal as {"subject","issuer","token_id","certificate_sha256","kind"}:
//   "event":"case"         a case transition (opened, vote:approve, approved, rejected, resolved,
//                          redeemed, timeout:..., ...): "case_id","tenant_id","lane","state",
//                          "transition","comment"
//   "event":"kill_switch"  "scope","tenant_id","value","engaged","reason"
//   "event":"refused"      a call refused for want of identity or permission: "method","code",
//                          "message"
// Each starts with "time" like a decision record.
void AppendCaseEventBody(const agate::v1::Case& c, const agate::v1::Transition& transition,
                         std::string* out);
void AppendKillSwitchBody(const agate::v1::KillSwitch& change, std::string* out);
void AppendRefusalBody(absl::Time time, absl::string_view method, absl::string_view code,
                       absl::string_view message, const agate::v1::Principal& principal,
                       std::string* out);

// AppendRfc3339Millis appends t as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC; milliseconds rounded down;
// clamped to years 0001..9999).
void AppendRfc3339Millis(absl::Time t, std::string* out);

}  // namespace agate::store

#endif  // AGATE_STORE_DECISION_RECORD_H_
