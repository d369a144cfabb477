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

// ActionFingerprint returns 16 lowercase hex digits of a stable 64-bit hash (FNV-1a) of
// CanonicalAction: the same on every machine and version. For display and search; an approval
// is matched on CanonicalAction itself.
std::string ActionFingerprint(const Request& request);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_FINGERPRINT_H_
