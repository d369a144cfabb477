#include "engine/decision_codec.h"

#include <string>

#include "engine/matrix.h"
#include "engine/proto_time.h"

namespace agate::engine {

void EncodeDecision(const Decision& decision, v1::EvaluateResponse* response) {
  response->Clear();
  const Matrix& matrix = *decision.matrix;
  response->set_decision_id(std::string(decision.id.view()));
  response->set_verdict(decision.verdict);
  response->set_matrix_version(matrix.version());
  response->set_reason(decision.reason);
  if (decision.lane >= 0) {
    const Lane& lane = matrix.lanes()[decision.lane];
    response->set_lane(lane.name);
    response->set_owner(lane.owner);
    response->set_backup(lane.backup);
    *response->mutable_sla_deadline() = ToTimestamp(decision.sla_deadline);
    response->set_agent_action(lane.agent_action);
    response->set_operator_action(lane.operator_action);
    for (int e : decision.missing_evidence) response->add_missing_evidence(lane.evidence[e]);
  }
  for (const FiredTrigger& f : decision.fired) {
    const Trigger& trigger = matrix.triggers()[f.trigger];
    const Lane& lane = matrix.lanes()[trigger.lane];
    v1::FiredTrigger& out = *response->add_fired();
    out.set_trigger_id(trigger.id);
    out.set_lane(lane.name);
    out.set_verdict(lane.verdict);
    out.set_error(f.error);
    for (const expr::Observation& o : f.values) {
      v1::ObservedValue& value = *out.add_values();
      value.set_field(o.field);
      *value.mutable_value() = o.value;
    }
  }
}

}  // namespace agate::engine
