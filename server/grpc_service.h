// GrpcService: the agate.v1.Agate service over gRPC's callback API; a thin adapter from the wire
// to service::Service (decode, call, map the status). No decision logic here.
//
// Every method takes its request's bytes and parses them itself: gRPC answers bytes that do not
// parse UNIMPLEMENTED with no message; agate answers INVALID_ARGUMENT saying what is wrong (e.g.
// a string field that is not UTF-8, with the field's name).
//
// Overload (see Admit): Evaluate counts its calls in flight, from the handler's entry until gRPC
// is done with the call (its response written, or the call cancelled). A call that finds
// max_in_flight others in flight is answered RESOURCE_EXHAUSTED without being evaluated and
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

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "agate/v1/agate.grpc.pb.h"
#include "server/identity.h"
#include "server/watcher_quota.h"
#include "service/service.h"

namespace agate::server {

// Admit decides whether an Evaluate call that found others_in_flight calls in flight is
// evaluated: RESOURCE_EXHAUSTED ("server overloaded: N calls in flight (--max-in-flight M)") when
// max_in_flight > 0 and others_in_flight >= max_in_flight; DEADLINE_EXCEEDED when its deadline
// is not after now; otherwise OK.
absl::Status Admit(int64_t others_in_flight, int64_t max_in_flight,
                   std::chrono::system_clock::time_point deadline,
                   std::chrono::system_clock::time_point now);

struct GrpcServiceOptions {
  // Evaluate calls in flight past which new ones are shed; 0 means no bound.
  int64_t max_in_flight = 0;
  // WatchCases streams open at once, in all and per verified principal.
  WatcherQuota::Options watchers;
};

// Every method raw (bytes in, bytes out): see the header comment. Every call is authenticated
// and authorized by Identity (server/identity.h) before the service sees it.
using RawAgateService =
    v1::Agate::WithRawCallbackMethod_Evaluate<v1::Agate::WithRawCallbackMethod_Acknowledge<
        v1::Agate::WithRawCallbackMethod_GetCase<v1::Agate::WithRawCallbackMethod_ListCases<
            v1::Agate::WithRawCallbackMethod_WatchCases<v1::Agate::WithRawCallbackMethod_GetStats<
                v1::Agate::WithRawCallbackMethod_SetKillSwitch<
                    v1::Agate::WithRawCallbackMethod_ListKillSwitches<
                        v1::Agate::CallbackService>>>>>>>>;

class GrpcService final : public RawAgateService {
 public:
  // service and identity must outlive this object.
  GrpcService(service::Service& service, const Identity& identity, GrpcServiceOptions options = {})
      : service_(service), identity_(identity), options_(options), watchers_(options.watchers) {}

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

  // in_flight returns the Evaluate calls in flight now.
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // watch_streams returns the WatchCases streams open now.
  int64_t watch_streams() const { return watchers_.open(); }

 private:
  void CountShed();
  // Authenticate returns the call's caller; a refusal is audited.
  absl::StatusOr<Caller> Authenticate(grpc::CallbackServerContext* context,
                                      absl::string_view method);
  // Audited returns status, after auditing it when it refuses the caller (PERMISSION_DENIED,
  // UNAUTHENTICATED).
  absl::Status Audited(absl::string_view method, absl::Status status,
                       const v1::Principal& principal);

  service::Service& service_;
  const Identity& identity_;
  const GrpcServiceOptions options_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> next_shed_log_ns_{0};
  WatcherQuota watchers_;
  std::atomic<int64_t> next_watcher_log_ns_{0};
};

}  // namespace agate::server

#endif  // AGATE_SERVER_GRPC_SERVICE_H_
