#include "engine/fingerprint.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/sha256.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace agate::engine {
namespace {

constexpr absl::string_view kAttributesPrefix = "attributes.";
constexpr absl::string_view kFields[] = {"action.type",
                                         "action.target",
                                         "action.amount",
                                         "action.currency",
                                         "action.target_tenant_id",
                                         "action.customer_facing",
                                         "action.irreversible",
                                         "action.critical",
                                         "action.requested_scopes",
                                         "workflow_id",
                                         "item_id",
                                         "agent_id"};

// Appends a length-prefixed field: no separator can be forged by the field's contents.
void AppendField(std::string& out, absl::string_view value) {
  absl::StrAppend(&out, value.size(), ":", value, ";");
}

// %.17g round-trips every double; adding 0.0 turns -0.0 into 0.0.
std::string Number(double d) { return absl::StrFormat("%.17g", d + 0.0); }

std::string Flag(bool b) { return b ? "1" : "0"; }

void AppendScopes(std::string& out, const v1::Action& action) {
  absl::StrAppend(&out, action.requested_scopes_size(), "[");
  for (const std::string& scope : action.requested_scopes()) AppendField(out, scope);
  out.push_back(']');
}

// AppendAttribute appends attributes[key], typed: an absent key, null, a number by value, a
// string, a bool, or a list or struct as its deterministic serialization.
void AppendAttribute(std::string& out, const Request& request, const std::string& key) {
  const auto& fields = request.attributes().fields();
  auto it = fields.find(key);
  if (it == fields.end()) {
    AppendField(out, "absent");
    return;
  }
  const google::protobuf::Value& v = it->second;
  switch (v.kind_case()) {
    case google::protobuf::Value::kNumberValue:
      AppendField(out, absl::StrCat("n", Number(v.number_value())));
      return;
    case google::protobuf::Value::kStringValue:
      AppendField(out, absl::StrCat("s", v.string_value()));
      return;
    case google::protobuf::Value::kBoolValue:
      AppendField(out, absl::StrCat("b", Flag(v.bool_value())));
      return;
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      AppendField(out, "null");
      return;
    default: {
      std::string bytes;
      google::protobuf::io::StringOutputStream stream(&bytes);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.SetSerializationDeterministic(true);
      v.SerializeToCodedStream(&coded);
      coded.Trim();
      AppendField(out, absl::StrCat("v", bytes));
    }
  }
}

void AppendNamed(std::string& out, const Request& request, const std::string& field) {
  const v1::Action& action = request.action();
  AppendField(out, field);
  if (absl::StartsWith(field, kAttributesPrefix)) {
    AppendAttribute(out, request, field.substr(kAttributesPrefix.size()));
  } else if (field == "action.type") {
    AppendField(out, action.type());
  } else if (field == "action.target") {
    AppendField(out, action.target());
  } else if (field == "action.amount") {
    AppendField(out, Number(action.amount()));
  } else if (field == "action.currency") {
    AppendField(out, action.currency());
  } else if (field == "action.target_tenant_id") {
    AppendField(out, action.target_tenant_id());
  } else if (field == "action.customer_facing") {
    AppendField(out, Flag(action.customer_facing()));
  } else if (field == "action.irreversible") {
    AppendField(out, Flag(action.irreversible()));
  } else if (field == "action.critical") {
    AppendField(out, Flag(action.critical()));
  } else if (field == "action.requested_scopes") {
    AppendScopes(out, action);
  } else if (field == "workflow_id") {
    AppendField(out, request.workflow_id());
  } else if (field == "item_id") {
    AppendField(out, request.item_id());
  } else if (field == "agent_id") {
    AppendField(out, request.agent_id());
  }
}

}  // namespace

absl::Status CheckFingerprintField(const std::string& field) {
  if (absl::StartsWith(field, kAttributesPrefix) && field.size() > kAttributesPrefix.size()) {
    return absl::OkStatus();
  }
  for (absl::string_view known : kFields) {
    if (field == known) return absl::OkStatus();
  }
  std::string known_list;
  for (absl::string_view known : kFields) absl::StrAppend(&known_list, known, ", ");
  return absl::InvalidArgumentError(
      absl::StrCat("unknown field '", field, "'; one of ", known_list, "attributes.KEY"));
}

std::string CanonicalAction(const Request& request, const std::vector<std::string>& fields) {
  const v1::Action& action = request.action();
  std::string out;
  AppendField(out, request.tenant_id());
  if (!fields.empty()) {
    // A declared list: marked so that it can never equal a default encoding.
    out.push_back('#');
    for (const std::string& field : fields) AppendNamed(out, request, field);
    return out;
  }
  AppendField(out, action.type());
  AppendField(out, action.target());
  AppendField(out, Number(action.amount()));
  AppendField(out, action.currency());
  AppendField(out, action.target_tenant_id());
  AppendField(out, absl::StrCat(Flag(action.customer_facing()), Flag(action.irreversible()),
                                Flag(action.critical())));
  AppendScopes(out, action);
  return out;
}

std::string ActionFingerprint(const Request& request, const std::vector<std::string>& fields) {
  std::string hex;
  ThreadSha256().HexAppend(CanonicalAction(request, fields), &hex);
  return hex;
}

}  // namespace agate::engine
