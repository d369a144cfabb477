// EncodeDecision: an engine::Decision as the wire's EvaluateResponse.
//
// The one place a decision becomes a response, shared by the gRPC server and the offline
// `agate eval --matrix`, so they cannot disagree. Sets decision_id, verdict, and for a non-ALLOW
// verdict the winning lane's name, owner, backup, sla_deadline, agent_action, operator_action
// and missing_evidence names; fired[] (trigger_id, lane, verdict, values read, error);
// matrix_version; reason. Leaves the case fields to CaseStore::Apply.
#ifndef AGATE_ENGINE_DECISION_CODEC_H_
#define AGATE_ENGINE_DECISION_CODEC_H_

#include "agate/v1/agate.pb.h"
#include "engine/decision.h"

namespace agate::engine {

// EncodeDecision overwrites *response with decision.
void EncodeDecision(const Decision& decision, v1::EvaluateResponse* response);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_DECISION_CODEC_H_
