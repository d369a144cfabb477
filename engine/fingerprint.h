// The action fingerprint: what an approval is bound to.
//
// An approved case lets "the same action" through once. "The same" means the same tenant and the
// same action fields (type, target, amount, currency, target_tenant_id, customer_facing,
// irreversible, critical, requested_scopes); ids of the request, agent, workflow and item, the
// model's opinion, signals, attributes and evidence may differ.
#ifndef AGATE_ENGINE_FINGERPRINT_H_
#define AGATE_ENGINE_FINGERPRINT_H_

#include <string>

#include "engine/request.h"

namespace agate::engine {

// CanonicalAction returns an unambiguous encoding of the tenant and action fields: two requests
// have equal encodings if and only if their fingerprinted fields are equal (amounts compare by
// value, so 250 and 250.0 are the same; -0.0 and 0.0 too).
std::string CanonicalAction(const Request& request);

// ActionFingerprint returns the SHA-256 of CanonicalAction as 64 lowercase hex digits: the same on
// every machine and version, and infeasible to collide on purpose. For display, search and
// audit; an approval is matched on CanonicalAction itself.
std::string ActionFingerprint(const Request& request);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_FINGERPRINT_H_
