// FromGrpcStatus: a gRPC call's status as an absl::Status (the codes share their numbers), for the
// client side. The server's direction of the mapping is server/status.h.
#ifndef AGATE_CLIENT_GRPC_STATUS_H_
#define AGATE_CLIENT_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace agate::client {

// FromGrpcStatus keeps the code and the message.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace agate::client

#endif  // AGATE_CLIENT_GRPC_STATUS_H_
