// Service: agate's operations, independent of gRPC. The gRPC adapter (grpc_service.h) and the
// offline `agate eval --matrix` both call it, so the server and the CLI cannot disagree.
//
// Evaluate = ValidateRequest -> record signals -> Evaluator::Evaluate -> EncodeDecision ->
// CaseStore::Apply. The case operations go to the CaseStore. Thread-safe.
//
// Example:
//   Service service(matrix);
//   v1::EvaluateResponse response;
//   absl::Status status = service.Evaluate(request, &response);
#ifndef AGATE_SERVER_SERVICE_H_
#define AGATE_SERVER_SERVICE_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agate/v1/agate.pb.h"
#include "engine/case_store.h"
#include "engine/clock.h"
#include "engine/evaluator.h"
#include "engine/matrix.h"
#include "engine/request.h"
#include "engine/signal_counter.h"

namespace agate::server {

struct ServiceOptions {
  engine::RequestLimits limits;
  engine::CaseStoreOptions cases;
  engine::SignalCounterOptions signals;
};

class Service {
 public:
  // matrix must not be null; clock must outlive the Service.
  explicit Service(std::shared_ptr<const engine::Matrix> matrix,
                   const engine::Clock& clock = engine::RealClock(), ServiceOptions options = {});

  // Evaluate decides request. INVALID_ARGUMENT naming the field for a malformed request;
  // RESOURCE_EXHAUSTED when a case should open but the case store is full.
  absl::Status Evaluate(const v1::EvaluateRequest& request, v1::EvaluateResponse* response);

  // The case lifecycle (see engine/case_store.h for the statuses).
  absl::StatusOr<v1::Case> Acknowledge(const engine::Acknowledgement& ack) {
    return cases_.Acknowledge(ack);
  }
  absl::StatusOr<v1::Case> GetCase(const v1::GetCaseRequest& request) const {
    return cases_.Get(request.case_id());
  }
  absl::StatusOr<v1::ListCasesResponse> ListCases(const v1::ListCasesRequest& request) const {
    return cases_.List(request);
  }
  v1::GetStatsResponse Stats() const { return cases_.Stats(evaluator_.matrix().get()); }

  engine::CaseStore& cases() { return cases_; }
  std::shared_ptr<const engine::Matrix> matrix() const { return evaluator_.matrix(); }

  // SetMatrix swaps the matrix atomically (hot reload): requests in flight finish on the snapshot
  // they started with; open cases keep the lane definitions they were opened with.
  void SetMatrix(std::shared_ptr<const engine::Matrix> matrix) {
    evaluator_.SetMatrix(std::move(matrix));
  }

 private:
  const ServiceOptions options_;
  engine::SlidingWindowCounter counter_;
  engine::Evaluator evaluator_;
  engine::CaseStore cases_;
};

}  // namespace agate::server

#endif  // AGATE_SERVER_SERVICE_H_
