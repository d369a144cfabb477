#include "engine/redaction.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace agate::engine {
namespace {

constexpr absl::string_view kEvidence = "evidence";
constexpr absl::string_view kAttributes = "attributes";

// KeyOf returns KEY for "prefix.KEY" (empty when field is not one).
absl::string_view KeyOf(absl::string_view field, absl::string_view prefix) {
  if (field.size() <= prefix.size() + 1 || !absl::StartsWith(field, prefix) ||
      field[prefix.size()] != '.') {
    return {};
  }
  return field.substr(prefix.size() + 1);
}

// StringField returns the string field a fixed path names, or null.
std::string* StringField(absl::string_view field, Request* request) {
  if (field == "action.target") return request->mutable_action()->mutable_target();
  if (field == "actor.on_behalf_of") return request->mutable_actor()->mutable_on_behalf_of();
  if (field == "actor.credential_id") return request->mutable_actor()->mutable_credential_id();
  if (field == "model.sentiment") return request->mutable_model()->mutable_sentiment();
  return nullptr;
}

}  // namespace

absl::Status CheckRedactField(const std::string& field) {
  Request probe;
  if (field == kEvidence || field == kAttributes || !KeyOf(field, kEvidence).empty() ||
      !KeyOf(field, kAttributes).empty() || StringField(field, &probe) != nullptr) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown field '", field,
      "': redact may name evidence, evidence.KEY, attributes, attributes.KEY, action.target, "
      "actor.on_behalf_of, actor.credential_id, model.sentiment"));
}

void Redact(const std::vector<std::string>& fields, Request* request) {
  for (const std::string& field : fields) {
    if (field == kEvidence) {
      for (auto& [key, value] : *request->mutable_evidence()) value = kRedacted;
    } else if (field == kAttributes) {
      for (auto& [key, value] : *request->mutable_attributes()->mutable_fields()) {
        value.set_string_value(kRedacted);
      }
    } else if (absl::string_view key = KeyOf(field, kEvidence); !key.empty()) {
      auto it = request->mutable_evidence()->find(std::string(key));
      if (it != request->mutable_evidence()->end()) it->second = kRedacted;
    } else if (absl::string_view key = KeyOf(field, kAttributes); !key.empty()) {
      auto* attributes = request->mutable_attributes()->mutable_fields();
      auto it = attributes->find(std::string(key));
      if (it != attributes->end()) it->second.set_string_value(kRedacted);
    } else if (std::string* value = StringField(field, request);
               value != nullptr && !value->empty()) {
      *value = kRedacted;
    }
  }
}

}  // namespace agate::engine
