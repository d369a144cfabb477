// The request the engine decides on, and its validation at the edge.
//
// The engine's data model is the wire message itself (agate.v1.EvaluateRequest, protobuf only,
// no gRPC): triggers read its fields by the names the API uses, and no copy is made between the
// server's decoding and the evaluator. ValidateRequest is the one check every entry point (the
// gRPC server, the offline `agate eval`) runs before evaluation; inside the engine a Request is
// assumed valid.
#ifndef AGATE_ENGINE_REQUEST_H_
#define AGATE_ENGINE_REQUEST_H_

#include <cstddef>

#include "absl/status/status.h"
#include "agate/v1/agate.pb.h"

namespace agate::engine {

using Request = ::agate::v1::EvaluateRequest;

// Limits on a request's contents. Defaults are documented in docs/operations.md ("Request limits").
struct RequestLimits {
  // request_id, tenant_id, agent_id, workflow_id, item_id, action.target_tenant_id,
  // actor.credential_id, approval.case_id.
  size_t max_id_bytes = 256;
  // Every other string field and every list item (action.type, model.sentiment, scopes, ...).
  size_t max_string_bytes = 1024;
  // action.requested_scopes, actor.scopes, model.labels.
  size_t max_list_items = 64;
  // Entries of signals.
  size_t max_signals = 64;
  // Keys of signals, attributes (at any depth) and evidence.
  size_t max_key_bytes = 128;
  // Values in attributes, counted over every nesting level (a list counts its items).
  size_t max_attribute_values = 256;
  // Nesting depth of attributes (the top-level struct is depth 1).
  size_t max_attribute_depth = 8;
  // String values inside attributes.
  size_t max_attribute_string_bytes = 4096;
  // Entries of evidence.
  size_t max_evidence = 32;
  // One evidence value.
  size_t max_evidence_bytes = 64 * 1024;
};

// ValidateRequest returns OK or INVALID_ARGUMENT whose message starts with the offending field's
// path, e.g. "model.confidence: must be in [0, 1], got 1.5" or "request_id: required".
// It checks: request_id and tenant_id present; model.confidence in [0, 1] (not NaN);
// action.amount finite and >= 0; signal counts >= 0; attribute numbers finite; every size and
// count limit above.
absl::Status ValidateRequest(const Request& request, const RequestLimits& limits = {});

}  // namespace agate::engine

#endif  // AGATE_ENGINE_REQUEST_H_
