#include "server/approver.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace agate::server {

absl::StatusOr<std::string> MetadataApproverIdentity::Identify(
    const grpc::CallbackServerContext& context, const v1::AcknowledgeRequest& request) const {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kApproverMetadata);
  if (it == metadata.end()) return request.approver();
  std::string from_metadata(it->second.data(), it->second.size());
  if (!request.approver().empty() && request.approver() != from_metadata) {
    return absl::InvalidArgumentError(absl::StrCat("approver: '", request.approver(),
                                                   "' differs from the ", kApproverMetadata,
                                                   " metadata '", from_metadata, "'"));
  }
  return from_metadata;
}

}  // namespace agate::server
