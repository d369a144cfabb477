// WireRequest: an EvaluateRequest as it arrived, before it is parsed: its bytes, the three ids a
// replay needs (read straight from the bytes) and the digest of the bytes.
//
// A request sent again byte for byte within the idempotency window (a retry) is answered from
// these alone: the server authorizes the ids and the idempotency cache matches the digest of the
// bytes against the one it kept with the first answer (Service::Replay). Anything else is parsed
// and decided as usual. Scan accepts only what the parser would read the same way; the digest
// match makes a wrong scan a miss, never a wrong answer.
//
// Example:
//   WireRequest wire;
//   if (WireRequest::Scan(bytes, &wire)) { authorize(wire.tenant_id, wire.agent_id); ... }
#ifndef AGATE_SERVICE_WIRE_REQUEST_H_
#define AGATE_SERVICE_WIRE_REQUEST_H_

#include <array>

#include "absl/strings/string_view.h"

namespace agate::service {

struct WireRequest {
  // Scan reads request_id, tenant_id and agent_id (fields 1-3; the last of a repeated field, as
  // the parser keeps) from bytes and digests bytes into *out, which views bytes. false when bytes
  // are not a well-formed message of known wire types (the parser says what is wrong).
  static bool Scan(absl::string_view bytes, WireRequest* out);

  absl::string_view bytes;
  absl::string_view request_id;
  absl::string_view tenant_id;
  absl::string_view agent_id;
  std::array<unsigned char, 32> digest{};  // SHA-256 of bytes
};

}  // namespace agate::service

#endif  // AGATE_SERVICE_WIRE_REQUEST_H_
