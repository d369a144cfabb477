// GrpcService: the agate.v1.Agate service over gRPC's callback API; a thin adapter from the wire
// to server::Api (decode, authenticate, call, map the status). No decision logic here: what a
// method does is Api's, which the HTTP/JSON API calls too.
//
// Every method takes its request's bytes and parses them itself: gRPC answers bytes that do not
// parse UNIMPLEMENTED with no message; agate answers INVALID_ARGUMENT saying what is wrong (e.g.
// a string field that is not UTF-8, with the field's name).
//
// Overload (see Admit in server/api.h): Evaluate counts its calls in flight, from the handler's
// entry until gRPC is done with the call (its response written, or the call cancelled). A call that
// finds max_in_flight others in flight is answered RESOURCE_EXHAUSTED without being evaluated and
// counted (agate_shed_calls_total; clients fail closed); agate-server also sets HTTP/2's
// MAX_CONCURRENT_STREAMS to the same bound, so one connection's excess waits in its client. A call
// whose deadline already passed is answered DEADLINE_EXCEEDED without being evaluated: its client
// has given up and failed closed, so it must not open a case. Only Evaluate is bounded: operators
// must be able to acknowledge and read statistics during an overload.
//
// WatchCases streams are bounded apart (WatcherQuota: --max-watchers in all and
// --max-watchers-per-principal): a stream past either bound is refused RESOURCE_EXHAUSTED naming
// the bound and counted (agate_watchers_refused_total). Thread-safe.
#ifndef AGATE_SERVER_GRPC_SERVICE_H_
#define AGATE_SERVER_GRPC_SERVICE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "agate/v1/agate.grpc.pb.h"
#include "server/api.h"
#include "server/identity.h"

namespace agate::server {

// Every method raw (bytes in, bytes out): see the header comment. Every call is authenticated
// and authorized by Identity (server/identity.h) before the service sees it.
using RawAgateService =
    v1::Agate::WithRawCallbackMethod_Evaluate<v1::Agate::WithRawCallbackMethod_Acknowledge<
        v1::Agate::WithRawCallbackMethod_GetCase<v1::Agate::WithRawCallbackMethod_ListCases<
            v1::Agate::WithRawCallbackMethod_WatchCases<v1::Agate::WithRawCallbackMethod_GetStats<
                v1::Agate::WithRawCallbackMethod_SetKillSwitch<
                    v1::Agate::WithRawCallbackMethod_ListKillSwitches<
                        v1::Agate::WithRawCallbackMethod_GetShadowReport<
                            v1::Agate::CallbackService>>>>>>>>>;

class GrpcService final : public RawAgateService {
 public:
  // api must outlive this object.
  explicit GrpcService(Api& api) : api_(api) {}

  grpc::ServerUnaryReactor* Evaluate(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Acknowledge(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetCase(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListCases(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchCases(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* SetKillSwitch(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListKillSwitches(grpc::CallbackServerContext* context,
                                             const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetShadowReport(grpc::CallbackServerContext* context,
                                            const grpc::ByteBuffer* request,
                                            grpc::ByteBuffer* response) override;

  // in_flight returns the Evaluate calls in flight now.
  int64_t in_flight() const { return api_.in_flight(); }
  // watch_streams returns the WatchCases streams open now.
  int64_t watch_streams() const { return api_.watch_streams(); }

 private:
  // Authenticate returns the call's caller; a refusal is audited.
  absl::StatusOr<Caller> Authenticate(grpc::CallbackServerContext* context,
                                      absl::string_view method);

  Api& api_;
};

}  // namespace agate::server

#endif  // AGATE_SERVER_GRPC_SERVICE_H_
