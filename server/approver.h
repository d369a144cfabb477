// ApproverIdentity: who is acknowledging a case.
//
// One interface between the gRPC layer and the case lifecycle, so that authentication (mTLS peer
// identity, bearer tokens) can back it later without touching Acknowledge. Today's
// implementation reads the `x-agate-approver` call metadata, falling back to
// AcknowledgeRequest.approver. It authenticates nobody: deploy it only where the callers are
// trusted (a loopback sidecar, a Unix socket with file permissions, a private network).
#ifndef AGATE_SERVER_APPROVER_H_
#define AGATE_SERVER_APPROVER_H_

#include <string>

#include "absl/status/statusor.h"
#include "agate/v1/agate.pb.h"
#include "grpcpp/server_context.h"

namespace agate::server {

inline constexpr char kApproverMetadata[] = "x-agate-approver";

class ApproverIdentity {
 public:
  virtual ~ApproverIdentity() = default;
  // Identify returns the approver's identity, or an error status (UNAUTHENTICATED, ...).
  virtual absl::StatusOr<std::string> Identify(const grpc::CallbackServerContext& context,
                                               const v1::AcknowledgeRequest& request) const = 0;
};

// MetadataApproverIdentity trusts the x-agate-approver metadata, else the request's field.
// INVALID_ARGUMENT when both are set and differ.
class MetadataApproverIdentity : public ApproverIdentity {
 public:
  absl::StatusOr<std::string> Identify(const grpc::CallbackServerContext& context,
                                       const v1::AcknowledgeRequest& request) const override;
};

}  // namespace agate::server

#endif  // AGATE_SERVER_APPROVER_H_
