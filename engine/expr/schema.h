// The request schema as triggers see it: agate.v1.EvaluateRequest's fields, their CEL types,
// and a hand-coded reader per field (no protobuf reflection on the hot path).
//
// Internal to engine/expr. tests/engine/expr_test.cc walks the proto descriptors and fails
// if a field exists that this table does not know, so the two cannot drift.
#ifndef AGATE_ENGINE_EXPR_SCHEMA_H_
#define AGATE_ENGINE_EXPR_SCHEMA_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace agate::engine::expr::internal {

// Static (compile-time) types.
enum class Type : uint8_t {
  kBool,
  kInt,
  kUint,
  kDouble,
  kString,
  kNull,
  kDyn,         // known only at run time (attributes values)
  kListString,  // repeated string
  kListDyn,     // a list inside attributes, or a list literal
  kMapInt,      // signals
  kMapString,   // evidence
  kMapDyn,      // attributes
  kMessage,     // action, actor, model, approval: only selectable
};

absl::string_view TypeName(Type type);

enum class Field : uint8_t {
  kNone,
  kRequestId,
  kTenantId,
  kAgentId,
  kWorkflowId,
  kItemId,
  kAction,
  kActor,
  kModel,
  kApproval,
  kSignals,
  kAttributes,
  kEvidence,
  kActionType,
  kActionTarget,
  kActionCustomerFacing,
  kActionIrreversible,
  kActionCritical,
  kActionAmount,
  kActionCurrency,
  kActionTargetTenantId,
  kActionRequestedScopes,
  kActorCredentialId,
  kActorRole,
  kActorScopes,
  kActorOnBehalfOf,
  kModelConfidence,
  kModelSentiment,
  kModelLabels,
  kApprovalCaseId,
};

struct FieldInfo {
  Field field;
  Field parent;            // kNone for top-level fields
  absl::string_view name;  // the proto field name
  absl::string_view path;  // dotted path from the request
  Type type;
};

// Fields returns every field of the schema.
absl::Span<const FieldInfo> AllFields();
// FindField returns the field called name inside parent (kNone: top level), or null.
const FieldInfo* FindField(Field parent, absl::string_view name);
// FieldNames lists the names of parent's fields, comma-separated, for error messages.
std::string FieldNames(Field parent);

}  // namespace agate::engine::expr::internal

#endif  // AGATE_ENGINE_EXPR_SCHEMA_H_
