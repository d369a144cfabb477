#include "engine/decision_codec.h"

#include <string>

#include "common/proto_time.h"
#include "engine/matrix.h"

namespace agate::engine {

void EncodeDecision(const Decision& decision, v1::EvaluateResponse* response) {
  response->Clear();
  const Matrix& matrix = *decision.matrix;
  response->set_decision_id(std::string(decision.id.view()));
  response->set_verdict(decision.verdict);
  response->set_matrix_version(matrix.version());
  response->set_reason(decision.reason);
  if (const Lane* lane = decision.reported_lane(); lane != nullptr) {
    response->set_lane(lane->name);
    response->set_owner(decision.imposed.has_value() ? decision.imposed->owner : lane->owner);
    response->set_backup(lane->backup);
    *response->mutable_sla_deadline() = ToTimestamp(decision.sla_deadline);
    response->set_agent_action(lane->agent_action);
    response->set_operator_action(lane->operator_action);
    for (int e : decision.missing_evidence) response->add_missing_evidence(lane->evidence[e]);
  }
  response->set_case_id(decision.case_id);
  for (const std::string& id : decision.case_ids) response->add_case_ids(id);
  for (const FiredTrigger& f : decision.fired) {
    EncodeFiredTrigger(matrix, f, response->add_fired());
  }
}

void EncodeFiredTrigger(const Matrix& matrix, const FiredTrigger& fired, v1::FiredTrigger* out) {
  out->Clear();
  const Trigger& trigger = matrix.triggers()[fired.trigger];
  const Lane& lane = matrix.lanes()[trigger.lane];
  out->set_trigger_id(trigger.id);
  out->set_lane(lane.name);
  out->set_verdict(lane.verdict);
  out->set_error(fired.error);
  for (const expr::Observation& o : fired.values) {
    v1::ObservedValue& value = *out->add_values();
    value.set_field(o.field);
    *value.mutable_value() = o.value;
  }
}

}  // namespace agate::engine
