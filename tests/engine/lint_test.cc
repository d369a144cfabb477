#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/matrix.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agate::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

std::vector<std::string> Strings(const std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> out;
  for (const Diagnostic& d : diagnostics) out.push_back(d.ToString());
  return out;
}

// Every diagnostic ParseMatrix reports for yaml (as "m.yaml"); the matrix must be valid.
std::vector<std::string> Diagnose(const std::string& yaml) {
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m = ParseMatrix(yaml, "m.yaml", &diagnostics);
  EXPECT_TRUE(m.ok()) << m.status();
  return Strings(diagnostics);
}

// A lane lint has nothing to say about, in flow style; cases replace parts of it.
constexpr char kLane[] =
    "owner: o1, backup: b1, sla: 2h, verdict: HOLD, agent_action: hold, operator_action: review, "
    "evidence: [log], on_timeout: expire";
constexpr char kOtherLane[] =
    "owner: o2, backup: b2, sla: 15m, verdict: SAFE_MODE, agent_action: slow down, "
    "operator_action: open an incident, evidence: [error_log], on_timeout: pause_workflow";

// A two-lane matrix: lane a at 3:3, lane b at 4:3, trigger ta at 6:5 and tb at 7:5.
std::string TwoLanes(const std::string& a, const std::string& b,
                     const std::string& when_a = "action.critical",
                     const std::string& when_b = "action.irreversible") {
  return absl::StrCat("version: 1\nlanes:\n  a: {", a, "}\n  b: {", b, "}\ntriggers:\n",
                      "  - {id: ta, lane: a, when: '", when_a, "'}\n",
                      "  - {id: tb, lane: b, when: '", when_b, "'}\n");
}

struct LintCase {
  std::string name;
  std::string yaml;
  std::vector<std::string> want;
};

std::vector<LintCase> LintCases() {
  return {
      {"CleanMatrix", TwoLanes(kLane, kOtherLane), {}},
      {"OneOwnerForEveryLane",
       TwoLanes(kLane,
                "owner: o1, backup: b2, sla: 15m, verdict: SAFE_MODE, agent_action: slow down, "
                "operator_action: open an incident, evidence: [error_log], on_timeout: expire"),
       {"m.yaml:3:3: warning: every lane is owned by 'o1': one person owning everything is a "
        "bottleneck"}},
      {"BlockLaneWhoseFingerprintOmitsAmountAndTarget",
       TwoLanes("owner: o1, backup: b1, sla: 2h, verdict: BLOCK, agent_action: hold, "
                "operator_action: review, evidence: [log], on_timeout: expire, "
                "fingerprint: [action.type, attributes.invoice_id]",
                // Not a BLOCK lane, or a list with both: nothing to say.
                "owner: o2, backup: b2, sla: 15m, verdict: HOLD, agent_action: slow down, "
                "operator_action: open an incident, evidence: [error_log], on_timeout: expire, "
                "fingerprint: [action.type]"),
       {"m.yaml:3:3: warning: lane 'a' blocks until approved but its fingerprint omits "
        "action.amount: an approval would let the same action through with any amount",
        "m.yaml:3:3: warning: lane 'a' blocks until approved but its fingerprint omits "
        "action.target: an approval would let the same action through with any target"}},
      {"BlockLaneWithAFullFingerprint",
       TwoLanes("owner: o1, backup: b1, sla: 2h, verdict: BLOCK, agent_action: hold, "
                "operator_action: review, evidence: [log], on_timeout: expire, "
                "fingerprint: [action.type, action.target, action.amount]",
                kOtherLane),
       {}},
      {"UrgentLaneWithoutBackup",
       TwoLanes("owner: o1, sla: 1h, verdict: HOLD, agent_action: hold, operator_action: review, "
                "evidence: [log], on_timeout: expire",
                "owner: o2, sla: 61m, verdict: HOLD, agent_action: hold, operator_action: review, "
                "evidence: [log], on_timeout: expire"),
       {"m.yaml:3:3: warning: lane 'a' has a 1h SLA but no backup: nobody covers it when 'o1' is "
        "away"}},
      {"LaneWithoutEvidence",
       TwoLanes("owner: o1, backup: b1, sla: 2h, verdict: HOLD, agent_action: hold, "
                "operator_action: review, on_timeout: expire",
                "owner: o2, backup: b2, sla: 2h, verdict: HOLD, agent_action: hold, "
                "operator_action: review, evidence: [], on_timeout: expire"),
       {"m.yaml:3:3: warning: lane 'a' requires no evidence: list what the reviewer needs to "
        "decide (e.g. original_input, proposed_action)",
        "m.yaml:4:3: warning: lane 'b' requires no evidence: list what the reviewer needs to "
        "decide (e.g. original_input, proposed_action)"}},
      {"LaneWithoutOnTimeout",
       TwoLanes("owner: o1, backup: b1, sla: 2h, verdict: HOLD, agent_action: hold, "
                "operator_action: review, evidence: [log]",
                kOtherLane),
       {"m.yaml:3:3: warning: lane 'a' has no on_timeout: say what happens when nobody answers "
        "within 2h"}},
      {"LaneWithoutAgentOrOperatorAction",
       TwoLanes("owner: o1, backup: b1, sla: 2h, verdict: HOLD, operator_action: review, "
                "evidence: [log], on_timeout: expire",
                "owner: o2, backup: b2, sla: 2h, verdict: HOLD, agent_action: hold, "
                "evidence: [log], on_timeout: expire"),
       {"m.yaml:3:3: warning: lane 'a' has no agent_action: say what the agent does while it "
        "waits",
        "m.yaml:4:3: warning: lane 'b' has no operator_action: say what the owner does first"}},
      {"LaneNoTriggerUses",
       absl::StrCat("version: 1\nlanes:\n  a: {", kLane, "}\n  b: {", kOtherLane,
                    "}\ntriggers:\n  - {id: ta, lane: a, when: action.critical}\n"),
       {"m.yaml:4:3: warning: lane 'b' is used by no trigger: it can never escalate"}},
      {"TriggerThatCanNeverFire",
       TwoLanes(kLane, kOtherLane, "action.critical", "1 > 2"),
       {"m.yaml:7:5: warning: trigger 'tb' can never fire: its condition is false for every "
        "request"}},
      {"TriggerThatAlwaysFires",
       TwoLanes(kLane, kOtherLane, "true", "action.irreversible"),
       {"m.yaml:6:5: warning: trigger 'ta' always fires: its condition is true for every "
        "request"}},
      {"VagueTrigger",
       TwoLanes(kLane, kOtherLane, "model.confidence < 0.5", "action.critical"),
       {"m.yaml:6:5: warning: trigger 'ta' is vague: it reads model.confidence but no action "
        "field; qualify it with what the action is (e.g. action.customer_facing)"}},
      {"ConfidenceWithAnActionQualifierIsNotVague",
       TwoLanes(kLane, kOtherLane, "action.customer_facing && model.confidence < 0.5",
                "action.critical"),
       {}},
      {"SeveralMistakesSortedByPosition",
       absl::StrCat("version: 1\nlanes:\n  a: {owner: o1, sla: 10m, verdict: DENY}\n"
                    "  b: {owner: o1, sla: 4h, verdict: BLOCK}\n"
                    "triggers:\n  - {id: ta, lane: a, when: model.confidence > 0.9}\n"),
       {"m.yaml:3:3: warning: every lane is owned by 'o1': one person owning everything is a "
        "bottleneck",
        "m.yaml:3:3: warning: lane 'a' has a 10m SLA but no backup: nobody covers it when 'o1' is "
        "away",
        "m.yaml:3:3: warning: lane 'a' requires no evidence: list what the reviewer needs to "
        "decide (e.g. original_input, proposed_action)",
        "m.yaml:3:3: warning: lane 'a' has no on_timeout: say what happens when nobody answers "
        "within 10m",
        "m.yaml:3:3: warning: lane 'a' has no agent_action: say what the agent does while it "
        "waits",
        "m.yaml:3:3: warning: lane 'a' has no operator_action: say what the owner does first",
        "m.yaml:4:3: warning: lane 'b' requires no evidence: list what the reviewer needs to "
        "decide (e.g. original_input, proposed_action)",
        "m.yaml:4:3: warning: lane 'b' has no on_timeout: say what happens when nobody answers "
        "within 4h",
        "m.yaml:4:3: warning: lane 'b' has no agent_action: say what the agent does while it "
        "waits",
        "m.yaml:4:3: warning: lane 'b' has no operator_action: say what the owner does first",
        "m.yaml:4:3: warning: lane 'b' is used by no trigger: it can never escalate",
        "m.yaml:6:5: warning: trigger 'ta' is vague: it reads model.confidence but no action "
        "field; qualify it with what the action is (e.g. action.customer_facing)"}},
  };
}

class LintTest : public ::testing::TestWithParam<LintCase> {};

TEST_P(LintTest, WarnsAboutTheCommonMistakes) {
  EXPECT_THAT(Diagnose(GetParam().yaml), ElementsAreArray(GetParam().want)) << GetParam().yaml;
}

INSTANTIATE_TEST_SUITE_P(Cases, LintTest, ::testing::ValuesIn(LintCases()),
                         [](const auto& info) { return info.param.name; });

TEST(LintMatrixTest, AnUnknownFingerprintFieldIsAnErrorListingTheKnownOnes) {
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m = ParseMatrix(
      TwoLanes(absl::StrCat(kLane, ", fingerprint: [action.type, action.colour]"), kOtherLane),
      "m.yaml", &diagnostics);
  EXPECT_FALSE(m.ok());
  EXPECT_THAT(Strings(diagnostics),
              ::testing::Contains(::testing::StartsWith(
                  "m.yaml:3:149: error: fingerprint: unknown field 'action.colour'; one of "
                  "action.type, action.target, action.amount")));
}

TEST(LintMatrixTest, MaxOpenPerOwnerIsAPositiveBoundOfALaneWithABackup) {
  struct Case {
    std::string lane;
    std::string want;
  };
  const Case cases[] = {
      {absl::StrCat(kLane, ", max_open_per_owner: 0"),
       "error: max_open_per_owner must be a whole number from 1 to 1000000, got '0'"},
      {absl::StrCat(kLane, ", max_open_per_owner: lots"),
       "error: max_open_per_owner must be a whole number from 1 to 1000000, got 'lots'"},
      {"owner: o1, sla: 2h, verdict: HOLD, agent_action: hold, operator_action: review, "
       "evidence: [log], on_timeout: expire, max_open_per_owner: 5",
       "error: max_open_per_owner: the lane has no backup to route new cases to"},
  };
  for (const Case& c : cases) {
    std::vector<Diagnostic> diagnostics;
    EXPECT_FALSE(ParseMatrix(TwoLanes(c.lane, kOtherLane), "m.yaml", &diagnostics).ok()) << c.lane;
    EXPECT_THAT(Strings(diagnostics),
                ::testing::Contains(::testing::AllOf(::testing::StartsWith("m.yaml:3:"),
                                                     ::testing::HasSubstr(c.want))))
        << c.lane;
  }
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m =
      ParseMatrix(TwoLanes(absl::StrCat(kLane, ", max_open_per_owner: 25"), kOtherLane), "m.yaml",
                  &diagnostics);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->lanes()[0].max_open_per_owner, 25);
  EXPECT_EQ((*m)->lanes()[1].max_open_per_owner, 0);
}

TEST(LintMatrixTest, TheBundledMatrixHasNoDiagnostics) {
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m =
      LoadMatrixFile(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml", &diagnostics);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(Strings(diagnostics), IsEmpty());
  EXPECT_THAT(Strings(LintMatrix(**m)), IsEmpty());
}

TEST(LintMatrixTest, ReturnsWhatParseMatrixReports) {
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m = ParseMatrix(
      "version: 1\nlanes:\n  a: {owner: o1, sla: 2h, verdict: HOLD}\n"
      "triggers:\n  - {id: ta, lane: a, when: action.critical}\n",
      "m.yaml", &diagnostics);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(Strings(LintMatrix(**m)), ElementsAreArray(Strings(diagnostics)));
  EXPECT_THAT(diagnostics, ::testing::SizeIs(4));  // evidence, on_timeout, two actions
}

// LintMatrix works on any Matrix, including one built in code without conditions.
TEST(LintMatrixTest, LintsAMatrixBuiltInCode) {
  Lane a;
  a.name = "a";
  a.owner = "solo";
  a.backup = "b";
  a.sla = absl::Hours(2);
  a.verdict = v1::VERDICT_HOLD;
  a.agent_action = "wait";
  a.operator_action = "look";
  a.evidence = {"log"};
  a.on_timeout = v1::TIMEOUT_BEHAVIOR_EXPIRE;
  a.location = {2, 3};
  Lane b = a;
  b.name = "b";
  b.location = {9, 3};
  Trigger t;
  t.id = "t";
  t.lane = 0;
  t.location = {20, 5};
  Matrix m("code.yaml", "1", "", {a, b}, {t});
  EXPECT_THAT(Strings(LintMatrix(m)),
              ElementsAre("code.yaml:2:3: warning: every lane is owned by 'solo': one person "
                          "owning everything is a bottleneck",
                          "code.yaml:9:3: warning: lane 'b' is used by no trigger: it can never "
                          "escalate"));
}

TEST(LintMatrixTest, OneLaneIsNotABottleneck) {
  EXPECT_THAT(
      Diagnose(absl::StrCat("version: 1\nlanes:\n  a: {", kLane,
                            "}\ntriggers:\n  - {id: ta, lane: a, when: action.critical}\n")),
      IsEmpty());
}

}  // namespace
}  // namespace agate::engine
