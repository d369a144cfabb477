#include "engine/fingerprint.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/sha256.h"

namespace agate::engine {
namespace {

// Appends a length-prefixed field: no separator can be forged by the field's contents.
void AppendField(std::string& out, absl::string_view value) {
  absl::StrAppend(&out, value.size(), ":", value, ";");
}

}  // namespace

std::string CanonicalAction(const Request& request) {
  const v1::Action& action = request.action();
  std::string out;
  AppendField(out, request.tenant_id());
  AppendField(out, action.type());
  AppendField(out, action.target());
  // %.17g round-trips every double; adding 0.0 turns -0.0 into 0.0.
  AppendField(out, absl::StrFormat("%.17g", action.amount() + 0.0));
  AppendField(out, action.currency());
  AppendField(out, action.target_tenant_id());
  AppendField(out, absl::StrCat(action.customer_facing() ? "1" : "0",
                                action.irreversible() ? "1" : "0", action.critical() ? "1" : "0"));
  absl::StrAppend(&out, action.requested_scopes_size(), "[");
  for (const std::string& scope : action.requested_scopes()) AppendField(out, scope);
  out.push_back(']');
  return out;
}

std::string ActionFingerprint(const Request& request) {
  std::string hex;
  ThreadSha256().HexAppend(CanonicalAction(request), &hex);
  return hex;
}

}  // namespace agate::engine
