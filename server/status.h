// The one mapping between absl::Status (the engine's errors) and grpc::Status.
#ifndef AGATE_SERVER_STATUS_H_
#define AGATE_SERVER_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace agate::server {

// ToGrpcStatus keeps the code (the enums share their numbers) and the message.
grpc::Status ToGrpcStatus(const absl::Status& status);
// FromGrpcStatus is the inverse, for clients.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace agate::server

#endif  // AGATE_SERVER_STATUS_H_
