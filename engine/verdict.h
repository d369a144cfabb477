// Names of the matrix's enumerations (verdict, scope, timeout behaviour) as written in matrix
// files and printed to people, and their restrictiveness order.
//
// The enums are the wire enums (agate.v1.Verdict, ...): one definition for the API and the engine.
#ifndef AGATE_ENGINE_VERDICT_H_
#define AGATE_ENGINE_VERDICT_H_

#include <optional>

#include "absl/strings/string_view.h"
#include "agate/v1/agate.pb.h"

namespace agate::engine {

using Verdict = ::agate::v1::Verdict;
using Scope = ::agate::v1::Scope;
using TimeoutBehavior = ::agate::v1::TimeoutBehavior;

// MoreRestrictive returns true if a wins over b: DENY > BLOCK > SAFE_MODE > HOLD > PARK_ITEM >
// ALLOW. (The wire enum's numbers are in this order.)
constexpr bool MoreRestrictive(Verdict a, Verdict b) {
  return static_cast<int>(a) > static_cast<int>(b);
}

// VerdictName returns "ALLOW", "HOLD", ...; "UNSPECIFIED" for the zero value.
absl::string_view VerdictName(Verdict verdict);
// ParseVerdict accepts a matrix spelling: "HOLD", "hold", "VERDICT_HOLD" (case-insensitive).
std::optional<Verdict> ParseVerdict(absl::string_view text);

// ScopeName returns "item", "workflow", "credential".
absl::string_view ScopeName(Scope scope);
// ParseScope accepts "item", "workflow", "credential" (case-insensitive).
std::optional<Scope> ParseScope(absl::string_view text);

// TimeoutBehaviorName returns "notify_backup", "route_to_fallback", "pause_workflow",
// "disable_credential", "expire".
absl::string_view TimeoutBehaviorName(TimeoutBehavior behavior);
// ParseTimeoutBehavior accepts the names above (case-insensitive).
std::optional<TimeoutBehavior> ParseTimeoutBehavior(absl::string_view text);

}  // namespace agate::engine

#endif  // AGATE_ENGINE_VERDICT_H_
