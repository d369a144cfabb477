#include "engine/expr/schema.h"

#include <vector>

#include "absl/strings/str_join.h"

namespace agate::engine::expr::internal {
namespace {

constexpr FieldInfo kFields[] = {
    {Field::kRequestId, Field::kNone, "request_id", "request_id", Type::kString},
    {Field::kTenantId, Field::kNone, "tenant_id", "tenant_id", Type::kString},
    {Field::kAgentId, Field::kNone, "agent_id", "agent_id", Type::kString},
    {Field::kWorkflowId, Field::kNone, "workflow_id", "workflow_id", Type::kString},
    {Field::kItemId, Field::kNone, "item_id", "item_id", Type::kString},
    {Field::kAction, Field::kNone, "action", "action", Type::kMessage},
    {Field::kActor, Field::kNone, "actor", "actor", Type::kMessage},
    {Field::kModel, Field::kNone, "model", "model", Type::kMessage},
    {Field::kSignals, Field::kNone, "signals", "signals", Type::kMapInt},
    {Field::kAttributes, Field::kNone, "attributes", "attributes", Type::kMapDyn},
    {Field::kEvidence, Field::kNone, "evidence", "evidence", Type::kMapString},
    {Field::kApproval, Field::kNone, "approval", "approval", Type::kMessage},
    {Field::kActionType, Field::kAction, "type", "action.type", Type::kString},
    {Field::kActionTarget, Field::kAction, "target", "action.target", Type::kString},
    {Field::kActionCustomerFacing, Field::kAction, "customer_facing", "action.customer_facing",
     Type::kBool},
    {Field::kActionIrreversible, Field::kAction, "irreversible", "action.irreversible",
     Type::kBool},
    {Field::kActionCritical, Field::kAction, "critical", "action.critical", Type::kBool},
    {Field::kActionAmount, Field::kAction, "amount", "action.amount", Type::kDouble},
    {Field::kActionCurrency, Field::kAction, "currency", "action.currency", Type::kString},
    {Field::kActionTargetTenantId, Field::kAction, "target_tenant_id", "action.target_tenant_id",
     Type::kString},
    {Field::kActionRequestedScopes, Field::kAction, "requested_scopes", "action.requested_scopes",
     Type::kListString},
    {Field::kActorCredentialId, Field::kActor, "credential_id", "actor.credential_id",
     Type::kString},
    {Field::kActorRole, Field::kActor, "role", "actor.role", Type::kString},
    {Field::kActorScopes, Field::kActor, "scopes", "actor.scopes", Type::kListString},
    {Field::kActorOnBehalfOf, Field::kActor, "on_behalf_of", "actor.on_behalf_of", Type::kString},
    {Field::kModelConfidence, Field::kModel, "confidence", "model.confidence", Type::kDouble},
    {Field::kModelSentiment, Field::kModel, "sentiment", "model.sentiment", Type::kString},
    {Field::kModelLabels, Field::kModel, "labels", "model.labels", Type::kListString},
    {Field::kApprovalCaseId, Field::kApproval, "case_id", "approval.case_id", Type::kString},
};

}  // namespace

absl::string_view TypeName(Type type) {
  switch (type) {
    case Type::kBool:
      return "bool";
    case Type::kInt:
      return "int";
    case Type::kUint:
      return "uint";
    case Type::kDouble:
      return "double";
    case Type::kString:
      return "string";
    case Type::kNull:
      return "null";
    case Type::kDyn:
      return "dyn";
    case Type::kListString:
      return "list(string)";
    case Type::kListDyn:
      return "list(dyn)";
    case Type::kMapInt:
      return "map(string, int)";
    case Type::kMapString:
      return "map(string, string)";
    case Type::kMapDyn:
      return "map(string, dyn)";
    case Type::kMessage:
      return "message";
  }
  return "unknown";
}

absl::Span<const FieldInfo> AllFields() { return kFields; }

const FieldInfo* FindField(Field parent, absl::string_view name) {
  for (const FieldInfo& f : kFields) {
    if (f.parent == parent && f.name == name) return &f;
  }
  return nullptr;
}

std::string FieldNames(Field parent) {
  std::vector<absl::string_view> names;
  for (const FieldInfo& f : kFields) {
    if (f.parent == parent) names.push_back(f.name);
  }
  return absl::StrJoin(names, ", ");
}

}  // namespace agate::engine::expr::internal
