#include "engine/verdict.h"

#include <array>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace agate::engine {
namespace {

template <typename Enum, size_t N>
absl::string_view NameOf(const std::array<std::pair<Enum, absl::string_view>, N>& table, Enum value,
                         absl::string_view unknown) {
  for (const auto& [e, name] : table) {
    if (e == value) return name;
  }
  return unknown;
}

template <typename Enum, size_t N>
std::optional<Enum> Parse(const std::array<std::pair<Enum, absl::string_view>, N>& table,
                          absl::string_view text) {
  for (const auto& [e, name] : table) {
    if (absl::EqualsIgnoreCase(name, text)) return e;
  }
  return std::nullopt;
}

constexpr std::array<std::pair<Verdict, absl::string_view>, 6> kVerdicts = {{
    {v1::VERDICT_ALLOW, "ALLOW"},
    {v1::VERDICT_PARK_ITEM, "PARK_ITEM"},
    {v1::VERDICT_HOLD, "HOLD"},
    {v1::VERDICT_SAFE_MODE, "SAFE_MODE"},
    {v1::VERDICT_BLOCK, "BLOCK"},
    {v1::VERDICT_DENY, "DENY"},
}};

constexpr std::array<std::pair<Scope, absl::string_view>, 3> kScopes = {{
    {v1::SCOPE_ITEM, "item"},
    {v1::SCOPE_WORKFLOW, "workflow"},
    {v1::SCOPE_CREDENTIAL, "credential"},
}};

constexpr std::array<std::pair<TimeoutBehavior, absl::string_view>, 5> kTimeouts = {{
    {v1::TIMEOUT_BEHAVIOR_NOTIFY_BACKUP, "notify_backup"},
    {v1::TIMEOUT_BEHAVIOR_ROUTE_TO_FALLBACK, "route_to_fallback"},
    {v1::TIMEOUT_BEHAVIOR_PAUSE_WORKFLOW, "pause_workflow"},
    {v1::TIMEOUT_BEHAVIOR_DISABLE_CREDENTIAL, "disable_credential"},
    {v1::TIMEOUT_BEHAVIOR_EXPIRE, "expire"},
}};

}  // namespace

absl::string_view VerdictName(Verdict verdict) { return NameOf(kVerdicts, verdict, "UNSPECIFIED"); }

std::optional<Verdict> ParseVerdict(absl::string_view text) {
  if (absl::StartsWithIgnoreCase(text, "VERDICT_")) text.remove_prefix(8);
  return Parse(kVerdicts, text);
}

absl::string_view ScopeName(Scope scope) { return NameOf(kScopes, scope, "unspecified"); }

std::optional<Scope> ParseScope(absl::string_view text) { return Parse(kScopes, text); }

absl::string_view TimeoutBehaviorName(TimeoutBehavior behavior) {
  return NameOf(kTimeouts, behavior, "unspecified");
}

std::optional<TimeoutBehavior> ParseTimeoutBehavior(absl::string_view text) {
  return Parse(kTimeouts, text);
}

}  // namespace agate::engine
