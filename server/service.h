// Service: agate's operations, independent of gRPC. The gRPC adapter (grpc_service.h) and the
// offline `agate eval --matrix` both call it, so the server and the CLI cannot disagree.
//
// Evaluate = ValidateRequest -> idempotency (a request_id already decided gets the same answer)
// -> record signals -> Evaluator::Evaluate -> EncodeDecision -> CaseStore::Apply (cases, made
// durable by the journal before the answer) -> decision log. The case operations go to the
// CaseStore. Thread-safe.
//
// Durability is optional: without a journal and a decision log (the offline CLI, `--store
// memory`) everything lives in memory. With them, Recover loads what the store kept before the
// server starts serving.
//
// Example:
//   Service service(matrix);
//   v1::EvaluateResponse response;
//   absl::Status status = service.Evaluate(request, &response);
#ifndef AGATE_SERVER_SERVICE_H_
#define AGATE_SERVER_SERVICE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agate/v1/agate.pb.h"
#include "engine/case_store.h"
#include "engine/clock.h"
#include "engine/evaluator.h"
#include "engine/idempotency.h"
#include "engine/matrix.h"
#include "engine/request.h"
#include "engine/signal_counter.h"
#include "store/decision_log.h"
#include "store/sqlite_store.h"

namespace agate::server {

struct ServiceOptions {
  engine::RequestLimits limits;
  engine::CaseStoreOptions cases;
  engine::SignalCounterOptions signals;
  engine::IdempotencyOptions idempotency;
  // The durable store (cases, decisions, count() windows) and the decision log; null: memory
  // only. Both must outlive the Service.
  store::SqliteStore* store = nullptr;
  store::DecisionLog* decision_log = nullptr;
};

// What Recover found in the store.
struct Recovery {
  size_t cases = 0;
  size_t open_cases = 0;
  size_t decisions = 0;
  size_t signal_keys = 0;
};

class Service {
 public:
  // matrix must not be null; clock must outlive the Service.
  explicit Service(std::shared_ptr<const engine::Matrix> matrix,
                   const engine::Clock& clock = engine::RealClock(), ServiceOptions options = {});

  // Recover loads the store's cases (with their SLA timers: deadlines that passed while the
  // server was down run at the next CaseStore::RunDueTimers), idempotency rows and count()
  // windows. Call it once, before serving. OK (nothing to do) without a store.
  absl::StatusOr<Recovery> Recover();

  // Evaluate decides request. INVALID_ARGUMENT naming the field for a malformed request;
  // ALREADY_EXISTS for a request_id already decided with other contents; RESOURCE_EXHAUSTED when
  // a case should open but the case store is full; UNAVAILABLE when the store cannot make the
  // decision's cases durable. When response_bytes is given and Evaluate serialized *response
  // itself (to remember it for replays), it receives those bytes, so that the caller need not
  // serialize the response again; otherwise it is left empty.
  absl::Status Evaluate(const v1::EvaluateRequest& request, v1::EvaluateResponse* response,
                        std::string* response_bytes = nullptr);

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
  // Stats reports the case statistics of the current matrix's triggers and its version.
  v1::GetStatsResponse Stats() const {
    const std::shared_ptr<const engine::Matrix> matrix = evaluator_.matrix();
    v1::GetStatsResponse stats = cases_.Stats(matrix.get());
    stats.set_matrix_version(matrix->version());
    return stats;
  }

  // SaveSignals snapshots the count() windows into the store (the server calls it periodically
  // and at shutdown; a kill -9 loses at most the events since the last snapshot). OK without a
  // store.
  absl::Status SaveSignals();

  engine::CaseStore& cases() { return cases_; }
  std::shared_ptr<const engine::Matrix> matrix() const { return evaluator_.matrix(); }

  // SetMatrix swaps the matrix atomically (hot reload): requests in flight finish on the snapshot
  // they started with; open cases keep the lane definitions they were opened with.
  void SetMatrix(std::shared_ptr<const engine::Matrix> matrix) {
    evaluator_.SetMatrix(std::move(matrix));
  }

 private:
  const ServiceOptions options_;
  const engine::Clock& clock_;
  engine::SlidingWindowCounter counter_;
  engine::Evaluator evaluator_;
  engine::CaseStore cases_;
  engine::IdempotencyCache idempotency_;
};

}  // namespace agate::server

#endif  // AGATE_SERVER_SERVICE_H_
