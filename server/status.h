// The one mapping from absl::Status (what agate's libraries return) to grpc::Status; the client's
// inverse is client/grpc_status.h.
#ifndef AGATE_SERVER_STATUS_H_
#define AGATE_SERVER_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace agate::server {

// ToGrpcStatus keeps the code (the enums share their numbers) and the message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace agate::server

#endif  // AGATE_SERVER_STATUS_H_
