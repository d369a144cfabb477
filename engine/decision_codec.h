// EncodeDecision: an engine::Decision as the wire's EvaluateResponse.
//
// The one place a decision becomes a response, shared by the gRPC server and the offline
// `agate eval --matrix`, so they cannot disagree. It runs once per decision, after Decide: the
// decision is final. Sets decision_id, verdict, for a non-ALLOW verdict the reported lane's name,
// owner (an imposing case's current owner), backup, sla_deadline, agent_action, operator_action
// and missing_evidence names; fired[] (trigger_id, lane, verdict, values read, error); case_id,
// case_ids; matrix_version; reason.
#ifndef AGATE_ENGINE_DECISION_CODEC_H_
#define AGATE_ENGINE_DECISION_CODEC_H_

#include "agate/v1/agate.pb.h"
#include "engine/decision.h"

namespace agate::engine {

// EncodeDecision overwrites *response with decision.
void EncodeDecision(const Decision& decision, v1::EvaluateResponse* response);

// EncodeFiredTrigger overwrites *out with one fired trigger of matrix (a case keeps them too).
void EncodeFiredTrigger(const Matrix& matrix, const FiredTrigger& fired, v1::FiredTrigger* out);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_DECISION_CODEC_H_
