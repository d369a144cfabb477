// The one mapping from absl::Status (what agate's libraries return) to grpc::Status and to HTTP
// statuses; the client's inverse is client/grpc_status.h.
#ifndef AGATE_SERVER_STATUS_H_
#define AGATE_SERVER_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace agate::server {

// ToGrpcStatus keeps the code (the enums share their numbers) and the message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// HttpStatusOf is the HTTP status the HTTP API answers a code with, as google.api's HttpRule
// maps them: INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE 400; UNAUTHENTICATED 401;
// PERMISSION_DENIED 403; NOT_FOUND 404; ALREADY_EXISTS, ABORTED 409; RESOURCE_EXHAUSTED 429;
// CANCELLED 499; UNIMPLEMENTED 501; UNAVAILABLE 503; DEADLINE_EXCEEDED 504; OK 200; others 500.
int HttpStatusOf(absl::StatusCode code);

}  // namespace agate::server

#endif  // AGATE_SERVER_STATUS_H_
