// Redaction: what a request capture (agate-server --capture-requests) leaves out, as the matrix
// declares it (`capture: {redact: [attributes.email, evidence]}`, docs/matrix.md).
//
// A redacted value is replaced by the string "[redacted]", not removed, so that a captured
// request still has the keys it had (a lane's evidence requirement, `has(attributes.x)`) when
// the offline `agate shadow` replays it; conditions that read the value itself see the marker.
//
// Fields a redact list may name: evidence (every entry), evidence.KEY, attributes (every
// top-level key), attributes.KEY, action.target, actor.on_behalf_of, actor.credential_id,
// model.sentiment.
//
// Thread-safe: pure functions.
//
// Example:
//   RETURN_IF_ERROR(CheckRedactField("attributes.email"));   // at load time
//   Redact(matrix->capture_redact(), &request);               // before writing request
#ifndef AGATE_ENGINE_REDACTION_H_
#define AGATE_ENGINE_REDACTION_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/request.h"

namespace agate::engine {

// The string a redacted value becomes.
inline constexpr char kRedacted[] = "[redacted]";

// CheckRedactField: INVALID_ARGUMENT saying which fields a redact list may name when field is
// not one.
absl::Status CheckRedactField(const std::string& field);

// Redact replaces the values fields name (each passed CheckRedactField) in *request.
void Redact(const std::vector<std::string>& fields, Request* request);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_REDACTION_H_
