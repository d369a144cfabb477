// Api: what every agate.v1 method does once its transport has decoded the request and named the
// caller, the same for gRPC (server/grpc_service.h) and HTTP/JSON (server/http_api.h): authorize
// (a refusal is audited) -> call service::Service -> the answer or its status. The transports
// only decode, authenticate with their credentials (Authenticated audits a failure) and encode.
//
// It also holds what both transports share: the Evaluate calls in flight and their bound
// (--max-in-flight, Admit), and the WatchCases streams and theirs (WatcherQuota).
//
// Thread-safe. The service and identity must outlive the Api.
//
// Example:
//   Api api(service, identity, {.max_in_flight = 256});
//   ASSIGN_OR_RETURN(Caller caller,
//                    api.Authenticated("GetCase", identity.AuthenticateHeader(header), peer));
//   ASSIGN_OR_RETURN(v1::GetCaseResponse answer, api.GetCase(caller, request));
#ifndef AGATE_SERVER_API_H_
#define AGATE_SERVER_API_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agate/v1/agate.pb.h"
#include "server/identity.h"
#include "server/watcher_quota.h"
#include "service/service.h"
#include "service/wire_request.h"

namespace agate::server {

// Admit decides whether an Evaluate call that found others_in_flight calls in flight is
// evaluated: RESOURCE_EXHAUSTED ("server overloaded: N calls in flight (--max-in-flight M)") when
// max_in_flight > 0 and others_in_flight >= max_in_flight; DEADLINE_EXCEEDED when its deadline
// is not after now; otherwise OK.
absl::Status Admit(int64_t others_in_flight, int64_t max_in_flight,
                   std::chrono::system_clock::time_point deadline,
                   std::chrono::system_clock::time_point now);

struct ApiOptions {
  // Evaluate calls in flight past which new ones are shed; 0 means no bound.
  int64_t max_in_flight = 0;
  // WatchCases streams open at once, in all and per verified principal.
  WatcherQuota::Options watchers;
};

class Api {
 public:
  Api(service::Service& service, const Identity& identity, ApiOptions options = {})
      : service_(service), identity_(identity), options_(options), watchers_(options.watchers) {}
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  service::Service& service() { return service_; }
  const Identity& identity() const { return identity_; }

  // Authenticated returns caller, after auditing its failure as a refusal of method by peer (the
  // transport's description of the connection).
  absl::StatusOr<Caller> Authenticated(absl::string_view method, absl::StatusOr<Caller> caller,
                                       absl::string_view peer);

  // EnterEvaluate counts an Evaluate call in flight (the caller calls LeaveEvaluate when its
  // transport is done with it) and admits it (Admit; a shed call is counted and logged).
  absl::Status EnterEvaluate(std::chrono::system_clock::time_point deadline);
  void LeaveEvaluate() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  // Evaluate authorizes request for caller (Identity::MayEvaluate) and decides it
  // (service::Service::Evaluate: response_bytes and wire as there).
  absl::Status Evaluate(const Caller& caller, const v1::EvaluateRequest& request,
                        v1::EvaluateResponse* response, std::string* response_bytes = nullptr,
                        const service::WireRequest* wire = nullptr);
  // Acknowledge acts as Identity::Approver(caller, claimed_approver, request) says.
  absl::StatusOr<v1::AcknowledgeResponse> Acknowledge(const Caller& caller,
                                                      absl::string_view claimed_approver,
                                                      const v1::AcknowledgeRequest& request);
  absl::StatusOr<v1::GetCaseResponse> GetCase(const Caller& caller,
                                              const v1::GetCaseRequest& request) const;
  absl::StatusOr<v1::ListCasesResponse> ListCases(const Caller& caller,
                                                  const v1::ListCasesRequest& request) const;
  v1::GetStatsResponse GetStats(const Caller& caller) const;
  // WhoAmI says what caller may do, for a console to show only the actions it may take (the
  // methods still authorize each call): its principal, whether it administers, and the groups it
  // acknowledges cases for with their tenants ("*": every one), as Acknowledge checks them
  // against a case's owner, backup and fallback. In development mode the actor is whoever a call
  // claims (Identity::Approver): development is set and groups are empty. An agent has none.
  struct Permissions {
    v1::Principal principal;
    bool development = false;
    bool admin = false;
    std::vector<std::pair<std::string, std::vector<std::string>>> groups;  // sorted by name
  };
  Permissions WhoAmI(const Caller& caller) const;
  absl::StatusOr<v1::KillSwitch> SetKillSwitch(const Caller& caller,
                                               const v1::SetKillSwitchRequest& request);
  v1::ListKillSwitchesResponse ListKillSwitches(const Caller& caller) const;
  // GetShadowReport returns the shadow report (service::Service::GetShadowReport) to a caller
  // that sees every tenant (the report is not kept per tenant); PERMISSION_DENIED (audited)
  // otherwise.
  absl::StatusOr<v1::ShadowReport> GetShadowReport(const Caller& caller);
  // OpenWatch checks a WatchCases request's filter and takes the stream's place in the quota
  // (RESOURCE_EXHAUSTED naming the bound, counted in agate_watchers_refused_total). The stream
  // then subscribes with service().cases().Watch(request, identity().Sees(caller), ...).
  absl::StatusOr<WatcherQuota::Slot> OpenWatch(const Caller& caller,
                                               const v1::WatchCasesRequest& request);

  // in_flight returns the Evaluate calls in flight now.
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // watch_streams returns the WatchCases streams open now.
  int64_t watch_streams() const { return watchers_.open(); }

 private:
  // Audited returns status, after auditing it when it refuses the caller (PERMISSION_DENIED,
  // UNAUTHENTICATED).
  absl::Status Audited(absl::string_view method, absl::Status status,
                       const v1::Principal& principal);

  service::Service& service_;
  const Identity& identity_;
  const ApiOptions options_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> next_shed_log_ns_{0};
  WatcherQuota watchers_;
  std::atomic<int64_t> next_watcher_log_ns_{0};
};

}  // namespace agate::server

#endif  // AGATE_SERVER_API_H_
