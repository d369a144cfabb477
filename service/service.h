// Service: agate's operations without gRPC. agate-server's gRPC adapter and the offline
// `agate eval --matrix` both call it, so the server and the CLI cannot disagree.
//
// Evaluate reads as a sentence: validate the request -> idempotency (a request_id already decided
// gets the same answer) -> Decide (cases/decider.h: the final decision, its cases durable) ->
// encode it once -> record it (the idempotency cache, the decision log, the durable store). The
// case operations go to the case store.
//
// Durability is optional: without a store and a decision log (the offline CLI, `--store memory`)
// everything lives in memory. With them, Create recovers what the store kept before the service
// serves: cases with their SLA timers, decisions within the idempotency window, count() windows.
//
// Thread-safe.
//
// Example:
//   ASSIGN_OR_RETURN(std::unique_ptr<Service> service, Service::Create(matrix));
//   v1::EvaluateResponse response;
//   RETURN_IF_ERROR(service->Evaluate(request, &response));
#ifndef AGATE_SERVICE_SERVICE_H_
#define AGATE_SERVICE_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agate/v1/agate.pb.h"
#include "cases/case_store.h"
#include "cases/decider.h"
#include "common/clock.h"
#include "engine/matrix.h"
#include "engine/request.h"
#include "service/audit_log.h"
#include "service/counters.h"
#include "service/idempotency.h"
#include "service/live_shadow.h"
#include "service/wire_request.h"
#include "store/decision_log.h"
#include "store/durable_store.h"
#include "store/request_capture.h"

namespace agate::service {

struct ServiceOptions {
  engine::RequestLimits limits;
  cases::DeciderOptions decider;
  IdempotencyOptions idempotency;
  // The durable store (cases, decisions, count() windows) and the decision log; null: memory
  // only. Both must outlive the Service.
  store::DurableStore* store = nullptr;
  store::DecisionLog* decision_log = nullptr;
};

// What Create recovered from the store.
struct Recovery {
  size_t cases = 0;
  size_t open_cases = 0;
  size_t decisions = 0;
  size_t signal_keys = 0;
};

class Service {
 public:
  // Create builds the service on matrix (not null) and recovers what options.store and
  // options.decision_log kept. RESOURCE_EXHAUSTED when the idempotency cache's memory cannot be
  // reserved; the store's errors when it cannot be read back (DATA_LOSS, ...). clock must
  // outlive the Service.
  static absl::StatusOr<std::unique_ptr<Service>> Create(
      std::shared_ptr<const engine::Matrix> matrix, const Clock& clock = RealClock(),
      ServiceOptions options = {});
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Evaluate decides request. INVALID_ARGUMENT naming the field for a malformed request;
  // ALREADY_EXISTS for a request_id already decided with other contents; RESOURCE_EXHAUSTED when
  // a case should open but the case store is full; UNAVAILABLE when the store cannot make the
  // decision's cases durable.
  // When response_bytes is not null the answer may come as bytes (a replay, or a response this
  // call serialized anyway): if *response_bytes is not empty on return it holds the serialized
  // response and *response may be unset; the caller sends the bytes.
  // caller is the verified agent's subject (empty in development mode): it is recorded in the
  // cases the decision opens or joins, and may never acknowledge them.
  // wire, when not null, is request as it arrived (WireRequest::Scan): the answer is kept with
  // its digest, for Replay.
  absl::Status Evaluate(const v1::EvaluateRequest& request, v1::EvaluateResponse* response,
                        std::string* response_bytes = nullptr, absl::string_view caller = {},
                        const WireRequest* wire = nullptr);

  // Replay answers a request sent again byte for byte: true, with the first answer's bytes
  // (marked replayed) in *response_bytes, when wire's ids were decided within the idempotency
  // window for exactly these bytes. false otherwise, and then Evaluate decides (the same request
  // may come in other bytes). The caller has authorized wire's ids.
  bool Replay(const WireRequest& wire, std::string* response_bytes);

  // The case lifecycle (see cases/case_store.h for the statuses); reads see scope's tenants.
  absl::StatusOr<v1::Case> Acknowledge(const cases::Acknowledgement& ack) {
    absl::StatusOr<v1::Case> c = cases().Acknowledge(ack);
    if (c.ok()) counters_.CountAck(ack.decision);
    return c;
  }
  absl::StatusOr<v1::Case> GetCase(
      const v1::GetCaseRequest& request,
      const cases::TenantScope& scope = cases::TenantScope::All()) const {
    return cases().Get(request.case_id(), scope);
  }
  absl::StatusOr<v1::ListCasesResponse> ListCases(
      const v1::ListCasesRequest& request,
      const cases::TenantScope& scope = cases::TenantScope::All()) const {
    return cases().List(request, scope);
  }
  // Stats reports the case statistics of the current matrix's triggers for scope's tenants and
  // the matrix version; for every tenant (admins, development mode) also the decisions by verdict
  // and every metric, which are not kept per tenant.
  v1::GetStatsResponse Stats(const cases::TenantScope& scope = cases::TenantScope::All()) const;
  // Kill switches (cases/case_store.h); the caller checked that by is an admin.
  absl::StatusOr<v1::KillSwitch> SetKillSwitch(const v1::SetKillSwitchRequest& request,
                                               const v1::Principal& by) {
    return cases().SetKillSwitch(request, by);
  }
  v1::ListKillSwitchesResponse KillSwitches(const cases::TenantScope& scope) const;
  // Metrics returns every counter and gauge (service/counters.h), in a fixed order.
  std::vector<MetricSample> Metrics() const;

  // SaveSignals snapshots the count() windows into the store (the server calls it periodically
  // and at shutdown; a kill -9 loses at most the events since the last snapshot). OK without a
  // store. With a shared store it then reads the other replicas' windows, which count() sums
  // with this replica's own (docs/scale.md: a count lags the other replicas by at most the
  // snapshot interval).
  absl::Status SaveSignals();

  cases::CaseStore& cases() { return decider_->cases(); }
  const cases::CaseStore& cases() const { return decider_->cases(); }
  Counters& counters() { return counters_; }
  AuditLog& audit() { return *audit_; }
  const Recovery& recovery() const { return recovery_; }
  std::shared_ptr<const engine::Matrix> matrix() const { return decider_->matrix(); }

  // SetMatrix swaps the matrix atomically (hot reload): requests in flight finish on the snapshot
  // they started with; open cases keep the lane definitions they were opened with. A shadow report
  // starts anew.
  void SetMatrix(std::shared_ptr<const engine::Matrix> matrix) {
    if (shadow_ != nullptr) shadow_->SetLive(matrix);
    decider_->SetMatrix(std::move(matrix));
  }

  // EnableShadow evaluates every request against candidate too (service/live_shadow.h), from now
  // on; call it once, before serving. shadow returns it, or null without a candidate.
  void EnableShadow(std::shared_ptr<const engine::Matrix> candidate);
  LiveShadow* shadow() { return shadow_.get(); }
  // EnableCapture writes every request decided from now on to capture, redacted as the live
  // matrix says (store/request_capture.h); call it once, before serving.
  void EnableCapture(std::unique_ptr<store::RequestCapture> capture) {
    capture_ = std::move(capture);
  }
  // AfterAnswer shows request, answered with response (Evaluate's OK answer), to the shadow and
  // the capture, if any: the transport calls it once the answer is on its way. A replayed answer
  // (no decision_id) was shown when it was first decided.
  void AfterAnswer(const v1::EvaluateRequest& request, const v1::EvaluateResponse& response) {
    if (response.decision_id().empty() || response.replayed()) return;
    if (shadow_ != nullptr) shadow_->Observe(request, response);
    if (capture_ != nullptr) capture_->Write(request, decider_->matrix()->capture_redact());
  }
  // GetShadowReport returns the shadow report with the lanes' measured median times to decision and
  // the owners' open cases; FAILED_PRECONDITION without a candidate.
  absl::StatusOr<v1::ShadowReport> GetShadowReport() const;

 private:
  Service(const Clock& clock, ServiceOptions options, std::unique_ptr<AuditLog> audit,
          std::unique_ptr<cases::Decider> decider, std::unique_ptr<IdempotencyCache> idempotency);
  // CountDecision counts a decision made (by verdict, by lane, its latency since started_ns).
  void CountDecision(const engine::Decision& decision, int64_t started_ns);
  // RecoverDecisions loads the decisions within the idempotency window into the cache.
  absl::Status RecoverDecisions();
  // Record writes the decision's record to the decision log (an escalation before the answer,
  // an ALLOW in the background).
  void Record(const v1::EvaluateRequest& request, const v1::EvaluateResponse& response,
              absl::string_view digest, absl::Time decided_at, bool sync);

  const Clock& clock_;
  const ServiceOptions options_;
  std::unique_ptr<AuditLog> audit_;  // before decider_: the case store reports to it
  std::unique_ptr<cases::Decider> decider_;
  std::unique_ptr<IdempotencyCache> idempotency_;  // null when options.idempotency is off
  Counters counters_;
  Recovery recovery_;
  std::unique_ptr<LiveShadow> shadow_;              // null without --shadow-matrix
  std::unique_ptr<store::RequestCapture> capture_;  // null without --capture-requests
};

}  // namespace agate::service

#endif  // AGATE_SERVICE_SERVICE_H_
