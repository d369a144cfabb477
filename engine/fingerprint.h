// The action fingerprint: what an approval is bound to.
//
// An approved case lets "the same action" through once. By default "the same" means the same
// tenant and the same action fields (type, target, amount, currency, target_tenant_id,
// customer_facing, irreversible, critical, requested_scopes); ids of the request, agent, workflow
// and item, the model's opinion, signals, attributes and evidence may differ. A lane may declare
// its own list (`fingerprint: [action.type, action.amount, attributes.invoice_id]`): then the
// tenant and exactly those fields, so an approval is neither too loose (another invoice) nor too
// strict (a retry with a new trace id).
//
// Fields a list may name: action.type, action.target, action.amount, action.currency,
// action.target_tenant_id, action.customer_facing, action.irreversible, action.critical,
// action.requested_scopes, workflow_id, item_id, agent_id, and attributes.KEY (a top-level key of
// EvaluateRequest.attributes; an absent key is a value of its own, distinct from null).
#ifndef AGATE_ENGINE_FINGERPRINT_H_
#define AGATE_ENGINE_FINGERPRINT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/request.h"

namespace agate::engine {

// CheckFingerprintField: INVALID_ARGUMENT saying which fields exist when field is not one a
// fingerprint list may name.
absl::Status CheckFingerprintField(const std::string& field);

// CanonicalAction returns an unambiguous encoding of the tenant and the fingerprinted fields
// (fields, each passed CheckFingerprintField; empty: the default set): two requests have equal
// encodings if and only if those fields are equal (amounts compare by value, so 250 and 250.0 are
// the same; -0.0 and 0.0 too).
std::string CanonicalAction(const Request& request, const std::vector<std::string>& fields = {});

// ActionFingerprint returns the SHA-256 of CanonicalAction as 64 lowercase hex digits: the same on
// every machine and version, and infeasible to collide on purpose. For display, search and
// audit; an approval is matched on CanonicalAction itself.
std::string ActionFingerprint(const Request& request, const std::vector<std::string>& fields = {});

}  // namespace agate::engine

#endif  // AGATE_ENGINE_FINGERPRINT_H_
