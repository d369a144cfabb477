#include "server/service.h"

#include <utility>

#include "engine/decision_codec.h"
#include "engine/status_macros.h"

namespace agate::server {

Service::Service(std::shared_ptr<const engine::Matrix> matrix, const engine::Clock& clock,
                 ServiceOptions options)
    : options_(options),
      counter_(clock, options.signals),
      evaluator_(std::move(matrix), clock, &counter_),
      cases_(clock, options.cases) {}

absl::Status Service::Evaluate(const v1::EvaluateRequest& request, v1::EvaluateResponse* response) {
  RETURN_IF_ERROR(engine::ValidateRequest(request, options_.limits));
  counter_.Record(request);
  const engine::Decision decision = evaluator_.Evaluate(request);
  engine::EncodeDecision(decision, response);
  return cases_.Apply(request, decision, response);
}

}  // namespace agate::server
