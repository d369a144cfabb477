#include "engine/request.h"

#include <cmath>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "google/protobuf/struct.pb.h"

namespace agate::engine {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status CheckString(absl::string_view field, const std::string& value, size_t max_bytes) {
  if (value.size() > max_bytes) {
    return Invalid(field, absl::StrCat("longer than ", max_bytes, " bytes (", value.size(), ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckRequired(absl::string_view field, const std::string& value, size_t max_bytes) {
  if (value.empty()) return Invalid(field, "required");
  return CheckString(field, value, max_bytes);
}

absl::Status CheckList(absl::string_view field,
                       const google::protobuf::RepeatedPtrField<std::string>& items,
                       const RequestLimits& limits) {
  if (static_cast<size_t>(items.size()) > limits.max_list_items) {
    return Invalid(field,
                   absl::StrCat("at most ", limits.max_list_items, " items, got ", items.size()));
  }
  for (int i = 0; i < items.size(); ++i) {
    RETURN_IF_ERROR(
        CheckString(absl::StrCat(field, "[", i, "]"), items.Get(i), limits.max_string_bytes));
  }
  return absl::OkStatus();
}

// Walks attributes, counting values over every level.
class AttributeChecker {
 public:
  explicit AttributeChecker(const RequestLimits& limits) : limits_(limits) {}

  absl::Status CheckStruct(const std::string& path, const google::protobuf::Struct& s,
                           size_t depth) {
    if (depth > limits_.max_attribute_depth) {
      return Invalid(path,
                     absl::StrCat("nested deeper than ", limits_.max_attribute_depth, " levels"));
    }
    for (const auto& [key, value] : s.fields()) {
      std::string child = absl::StrCat(path, ".", key);
      if (key.empty()) return Invalid(path, "empty key");
      if (key.size() > limits_.max_key_bytes) {
        return Invalid(child, absl::StrCat("key longer than ", limits_.max_key_bytes, " bytes"));
      }
      RETURN_IF_ERROR(CheckValue(child, value, depth));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status CheckValue(const std::string& path, const google::protobuf::Value& value,
                          size_t depth) {
    if (++count_ > limits_.max_attribute_values) {
      return Invalid("attributes",
                     absl::StrCat("more than ", limits_.max_attribute_values, " values"));
    }
    switch (value.kind_case()) {
      case google::protobuf::Value::kNumberValue:
        if (!std::isfinite(value.number_value())) return Invalid(path, "must be a finite number");
        return absl::OkStatus();
      case google::protobuf::Value::kStringValue:
        return CheckString(path, value.string_value(), limits_.max_attribute_string_bytes);
      case google::protobuf::Value::kStructValue:
        return CheckStruct(path, value.struct_value(), depth + 1);
      case google::protobuf::Value::kListValue: {
        if (depth + 1 > limits_.max_attribute_depth) {
          return Invalid(
              path, absl::StrCat("nested deeper than ", limits_.max_attribute_depth, " levels"));
        }
        const auto& items = value.list_value().values();
        for (int i = 0; i < items.size(); ++i) {
          RETURN_IF_ERROR(CheckValue(absl::StrCat(path, "[", i, "]"), items.Get(i), depth + 1));
        }
        return absl::OkStatus();
      }
      case google::protobuf::Value::kNullValue:
      case google::protobuf::Value::kBoolValue:
        return absl::OkStatus();
      case google::protobuf::Value::KIND_NOT_SET:
        return Invalid(path, "value has no kind");
    }
    return absl::OkStatus();
  }

  const RequestLimits& limits_;
  size_t count_ = 0;
};

}  // namespace

absl::Status ValidateRequest(const Request& request, const RequestLimits& limits) {
  RETURN_IF_ERROR(CheckRequired("request_id", request.request_id(), limits.max_id_bytes));
  RETURN_IF_ERROR(CheckRequired("tenant_id", request.tenant_id(), limits.max_id_bytes));
  RETURN_IF_ERROR(CheckString("agent_id", request.agent_id(), limits.max_id_bytes));
  RETURN_IF_ERROR(CheckString("workflow_id", request.workflow_id(), limits.max_id_bytes));
  RETURN_IF_ERROR(CheckString("item_id", request.item_id(), limits.max_id_bytes));

  const v1::Action& action = request.action();
  RETURN_IF_ERROR(CheckString("action.type", action.type(), limits.max_string_bytes));
  RETURN_IF_ERROR(CheckString("action.target", action.target(), limits.max_string_bytes));
  RETURN_IF_ERROR(CheckString("action.currency", action.currency(), limits.max_string_bytes));
  RETURN_IF_ERROR(
      CheckString("action.target_tenant_id", action.target_tenant_id(), limits.max_id_bytes));
  if (!std::isfinite(action.amount()) || action.amount() < 0) {
    return Invalid("action.amount",
                   absl::StrCat("must be a finite number >= 0, got ", action.amount()));
  }
  RETURN_IF_ERROR(CheckList("action.requested_scopes", action.requested_scopes(), limits));

  const v1::Actor& actor = request.actor();
  RETURN_IF_ERROR(CheckString("actor.credential_id", actor.credential_id(), limits.max_id_bytes));
  RETURN_IF_ERROR(CheckString("actor.role", actor.role(), limits.max_string_bytes));
  RETURN_IF_ERROR(CheckList("actor.scopes", actor.scopes(), limits));

  const v1::Model& model = request.model();
  // Written so that NaN fails too.
  if (!(model.confidence() >= 0.0 && model.confidence() <= 1.0)) {
    return Invalid("model.confidence", absl::StrCat("must be in [0, 1], got ", model.confidence()));
  }
  RETURN_IF_ERROR(CheckString("model.sentiment", model.sentiment(), limits.max_string_bytes));
  RETURN_IF_ERROR(CheckList("model.labels", model.labels(), limits));

  if (static_cast<size_t>(request.signals_size()) > limits.max_signals) {
    return Invalid("signals", absl::StrCat("at most ", limits.max_signals, " entries, got ",
                                           request.signals_size()));
  }
  for (const auto& [name, count] : request.signals()) {
    if (name.empty()) return Invalid("signals", "empty signal name");
    if (name.size() > limits.max_key_bytes) {
      return Invalid(absl::StrCat("signals.", name.substr(0, 32), "..."),
                     absl::StrCat("name longer than ", limits.max_key_bytes, " bytes"));
    }
    if (count < 0) {
      return Invalid(absl::StrCat("signals.", name), absl::StrCat("must be >= 0, got ", count));
    }
  }

  RETURN_IF_ERROR(AttributeChecker(limits).CheckStruct("attributes", request.attributes(), 1));

  if (static_cast<size_t>(request.evidence_size()) > limits.max_evidence) {
    return Invalid("evidence", absl::StrCat("at most ", limits.max_evidence, " entries, got ",
                                            request.evidence_size()));
  }
  for (const auto& [name, content] : request.evidence()) {
    if (name.empty()) return Invalid("evidence", "empty evidence name");
    if (name.size() > limits.max_key_bytes) {
      return Invalid(absl::StrCat("evidence.", name.substr(0, 32), "..."),
                     absl::StrCat("name longer than ", limits.max_key_bytes, " bytes"));
    }
    RETURN_IF_ERROR(
        CheckString(absl::StrCat("evidence.", name), content, limits.max_evidence_bytes));
  }

  RETURN_IF_ERROR(
      CheckString("approval.case_id", request.approval().case_id(), limits.max_id_bytes));
  return absl::OkStatus();
}

}  // namespace agate::engine
