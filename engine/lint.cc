// LintMatrix: warnings for a valid matrix that repeats the common mistakes of escalation design.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "engine/matrix.h"

namespace agate::engine {
namespace {

// An SLA this short needs a second person who can answer when the owner cannot.
constexpr absl::Duration kUrgentSla = absl::Hours(1);

std::string Quote(absl::string_view s) { return absl::StrCat("'", s, "'"); }

bool ReadsActionField(const std::vector<std::string>& fields) {
  return std::any_of(fields.begin(), fields.end(),
                     [](const std::string& f) { return absl::StartsWith(f, "action."); });
}

}  // namespace

std::vector<Diagnostic> LintMatrix(const Matrix& matrix) {
  std::vector<Diagnostic> warnings;
  auto warn = [&](SourceLocation at, std::string message) {
    warnings.push_back(Diagnostic{matrix.file(), at, Severity::kWarning, std::move(message)});
  };
  const std::vector<Lane>& lanes = matrix.lanes();
  const std::vector<Trigger>& triggers = matrix.triggers();

  if (lanes.size() >= 2 && std::all_of(lanes.begin(), lanes.end(), [&](const Lane& lane) {
        return lane.owner == lanes[0].owner;
      })) {
    warn(lanes[0].location, absl::StrCat("every lane is owned by ", Quote(lanes[0].owner),
                                         ": one person owning everything is a bottleneck"));
  }

  std::vector<bool> used(lanes.size(), false);
  for (const Trigger& trigger : triggers) {
    if (trigger.lane >= 0 && static_cast<size_t>(trigger.lane) < lanes.size()) {
      used[trigger.lane] = true;
    }
  }

  for (size_t i = 0; i < lanes.size(); ++i) {
    const Lane& lane = lanes[i];
    const std::string name = absl::StrCat("lane ", Quote(lane.name));
    if (lane.sla <= kUrgentSla && lane.backup.empty()) {
      warn(lane.location, absl::StrCat(name, " has a ", absl::FormatDuration(lane.sla),
                                       " SLA but no backup: nobody covers it when ",
                                       Quote(lane.owner), " is away"));
    }
    if (lane.evidence.empty()) {
      warn(lane.location, absl::StrCat(name,
                                       " requires no evidence: list what the reviewer needs to "
                                       "decide (e.g. original_input, proposed_action)"));
    }
    if (lane.on_timeout == v1::TIMEOUT_BEHAVIOR_UNSPECIFIED) {
      warn(lane.location,
           absl::StrCat(name, " has no on_timeout: say what happens when nobody answers within ",
                        absl::FormatDuration(lane.sla)));
    }
    if (lane.agent_action.empty()) {
      warn(lane.location,
           absl::StrCat(name, " has no agent_action: say what the agent does while it waits"));
    }
    if (lane.operator_action.empty()) {
      warn(lane.location, absl::StrCat(name,
                                       " has no operator_action: say what the owner does "
                                       "first"));
    }
    if (lane.verdict == v1::VERDICT_BLOCK && !lane.fingerprint.empty()) {
      for (const char* field : {"action.amount", "action.target"}) {
        if (std::find(lane.fingerprint.begin(), lane.fingerprint.end(), field) ==
            lane.fingerprint.end()) {
          warn(lane.location,
               absl::StrCat(name, " blocks until approved but its fingerprint omits ", field,
                            ": an approval would let the same action through with any ",
                            absl::StripPrefix(field, "action.")));
        }
      }
    }
    if (!used[i]) {
      warn(lane.location, absl::StrCat(name, " is used by no trigger: it can never escalate"));
    }
  }

  for (const Trigger& trigger : triggers) {
    if (trigger.condition == nullptr) continue;
    const std::string name = absl::StrCat("trigger ", Quote(trigger.id));
    if (std::optional<bool> constant = trigger.condition->ConstantValue()) {
      warn(trigger.location,
           *constant ? absl::StrCat(name, " always fires: its condition is true for every request")
                     : absl::StrCat(name,
                                    " can never fire: its condition is false for every "
                                    "request"));
    }
    const std::vector<std::string>& fields = trigger.condition->Fields();
    if (std::find(fields.begin(), fields.end(), "model.confidence") != fields.end() &&
        !ReadsActionField(fields)) {
      warn(trigger.location,
           absl::StrCat(name,
                        " is vague: it reads model.confidence but no action field; qualify it "
                        "with what the action is (e.g. action.customer_facing)"));
    }
  }

  SortByLocation(warnings);
  return warnings;
}

}  // namespace agate::engine
