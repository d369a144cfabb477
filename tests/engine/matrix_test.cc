#include "engine/matrix.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "engine/yaml_source.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace agate::engine {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

const char kTestData[] = AGATE_SOURCE_DIR "/tests/testdata/matrices";

// Strings of diagnostics of the given severity.
std::vector<std::string> Strings(const std::vector<Diagnostic>& diagnostics, Severity severity) {
  std::vector<std::string> out;
  for (const Diagnostic& d : diagnostics) {
    if (d.severity == severity) out.push_back(d.ToString());
  }
  return out;
}

// Errors returns every error ParseMatrix reports for yaml (as "m.yaml"), checking that the status
// carries the same errors.
std::vector<std::string> Errors(const std::string& yaml) {
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m = ParseMatrix(yaml, "m.yaml", &diagnostics);
  std::vector<std::string> errors = Strings(diagnostics, Severity::kError);
  if (errors.empty()) {
    EXPECT_TRUE(m.ok()) << m.status();
  } else {
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(m.status().message(), absl::StrJoin(errors, "\n"));
  }
  return errors;
}

// A lane that lint has nothing to say about, to build test matrices from.
constexpr char kGoodLane[] = R"(
    owner: support-lead
    backup: support-manager
    sla: 30m
    verdict: HOLD
    agent_action: hold
    operator_action: review
    evidence: [original_input]
    on_timeout: notify_backup
)";

struct ErrorCase {
  std::string name;
  std::string yaml;
  std::vector<std::string> want;
};

// Every structural error, each at the node at fault. Positions are 1-based line:column.
std::vector<ErrorCase> StructuralCases() {
  return {
      {"YamlSyntaxError",
       "version: 1\nlanes: [a, b\ntriggers: []\n",
       {"m.yaml:3:9: error: invalid YAML: end of sequence flow not found"}},
      {"BadIndentation",
       "version: 1\n  lanes: x\n",
       {"m.yaml:2:8: error: invalid YAML: illegal map value"}},
      {"EmptyDocument",
       "",
       {"m.yaml:1:1: error: the matrix is empty; expected a mapping with "
        "version, lanes and triggers"}},
      {"OnlyComments",
       "# nothing here\n",
       {"m.yaml:1:1: error: the matrix is empty; expected a "
        "mapping with version, lanes and triggers"}},
      {"DocumentNotAMapping",
       "- version: 1\n",
       {"m.yaml:1:1: error: the matrix must be a mapping with version, lanes and triggers"}},
      {"ScalarDocument",
       "\n\n  hello\n",
       {"m.yaml:3:3: error: the matrix must be a mapping with version, lanes and triggers"}},
      {"SecondDocument",
       absl::StrCat("version: 1\nlanes:\n  a:", kGoodLane,
                    "triggers:\n  - {id: t, lane: a, when: action.critical}\n---\nversion: 2\n"),
       {"m.yaml:14:1: error: the matrix is one YAML document; this is a second one"}},
      {"MissingTopLevelKeys",
       "name: x\n",
       {"m.yaml:1:1: error: the matrix: missing required key 'version'",
        "m.yaml:1:1: error: the matrix: missing required key 'lanes'",
        "m.yaml:1:1: error: the matrix: missing required key 'triggers'"}},
      {"UnknownTopLevelKeyWithSuggestion",
       "version: 1\nlane: {}\nlanes: {}\ntriggers: []\ncolour: red\n",
       {"m.yaml:2:1: error: unknown key 'lane' in the matrix (did you mean 'lanes'?)",
        "m.yaml:3:8: error: lanes must define at least one lane",
        "m.yaml:4:11: error: triggers must list at least one trigger",
        "m.yaml:5:1: error: unknown key 'colour' in the matrix"}},
      {"WrongKindsAtTopLevel",
       "version: [1]\nname: {a: b}\nlanes: [customer]\ntriggers: {a: b}\n",
       {"m.yaml:1:10: error: version must be a scalar", "m.yaml:2:7: error: name must be a scalar",
        "m.yaml:3:8: error: lanes must be a mapping",
        "m.yaml:4:11: error: triggers must be a sequence"}},
      {"EmptyVersionAndEmptyLanes",
       "version:\nlanes:\ntriggers:\n",
       {"m.yaml:1:1: error: version must not be empty",
        "m.yaml:2:1: error: lanes must be a mapping",
        "m.yaml:3:1: error: triggers must be a sequence"}},
      {"LaneMissingRequiredKeys",
       "version: 1\nlanes:\n  ops:\n    backup: eng-lead\ntriggers:\n"
       "  - {id: t, lane: ops, when: action.critical}\n",
       {"m.yaml:4:5: error: lane 'ops': missing required key 'owner'",
        "m.yaml:4:5: error: lane 'ops': missing required key 'sla'",
        "m.yaml:4:5: error: lane 'ops': missing required key 'verdict'"}},
      {"FlowLaneMissingKeyPointsAtTheBrace",
       "version: 1\nlanes:\n  ops: {owner: a, sla: 1h}\ntriggers:\n"
       "  - {id: t, lane: ops, when: action.critical}\n",
       {"m.yaml:3:8: error: lane 'ops': missing required key 'verdict'"}},
      {"LaneUnknownKeyWithSuggestion",
       "version: 1\nlanes:\n  customer:\n    ownr: a\n    owner: a\n    sla: 1h\n"
       "    verdict: HOLD\n    colour: red\ntriggers:\n"
       "  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:4:5: error: unknown key 'ownr' in lane 'customer' (did you mean 'owner'?)",
        "m.yaml:8:5: error: unknown key 'colour' in lane 'customer'"}},
      {"DuplicateKeyInLane",
       "version: 1\nlanes:\n  customer:\n    owner: a\n    sla: 1h\n    verdict: HOLD\n"
       "    owner: b\ntriggers:\n  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:7:5: error: duplicate key 'owner' in lane 'customer' (first defined at 4:5)"}},
      {"DuplicateTopLevelKey",
       absl::StrCat("version: 1\nlanes:\n  a:", kGoodLane,
                    "triggers:\n  - {id: t, lane: a, when: action.critical}\nversion: 2\n"),
       {"m.yaml:14:1: error: duplicate key 'version' in the matrix (first defined at 1:1)"}},
      {"NonStringKey",
       "version: 1\n[a]: 1\nlanes:\n  x: {owner: a, sla: 1h, verdict: HOLD}\n"
       "triggers:\n  - {id: t, lane: x, when: action.critical}\n",
       {"m.yaml:2:1: error: keys of the matrix must be strings"}},
      {"LaneFieldsOfTheWrongKind",
       "version: 1\nlanes:\n  customer:\n    owner: [a]\n    sla: {m: 30}\n    verdict: HOLD\n"
       "    evidence: original_input\ntriggers:\n"
       "  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:4:12: error: owner must be a scalar", "m.yaml:5:10: error: sla must be a scalar",
        "m.yaml:7:15: error: evidence must be a sequence of strings"}},
      {"EmptyOwner",
       "version: 1\nlanes:\n  customer:\n    owner: ''\n    sla: 1h\n    verdict: HOLD\n"
       "triggers:\n  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:4:12: error: owner must not be empty"}},
      {"LaneIsNotAMapping",
       "version: 1\nlanes:\n  customer: HOLD\n  ops:\ntriggers:\n"
       "  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:3:13: error: lane 'customer' must be a mapping with owner, sla, verdict and more",
        "m.yaml:4:3: error: lane 'ops' must be a mapping with owner, sla, verdict and more"}},
      {"BadDuration",
       "version: 1\nlanes:\n  customer: {owner: a, sla: 30 minutes, verdict: HOLD}\n"
       "triggers:\n  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:3:29: error: invalid duration '30 minutes' (expected e.g. 30m, 2h, 1h30m, 90s, "
        "1d; units d h m s ms)"}},
      {"ZeroDuration",
       "version: 1\nlanes:\n  customer: {owner: a, sla: 0m, verdict: HOLD}\n"
       "triggers:\n  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:3:29: error: duration '0m' must be positive"}},
      {"UnknownVerdict",
       "version: 1\nlanes:\n  customer: {owner: a, sla: 1h, verdict: HOLDD}\n"
       "triggers:\n  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:3:42: error: unknown verdict 'HOLDD'; one of HOLD, PARK_ITEM, SAFE_MODE, BLOCK, "
        "DENY"}},
      {"AllowIsNotALaneVerdict",
       "version: 1\nlanes:\n  customer: {owner: a, sla: 1h, verdict: ALLOW}\n"
       "triggers:\n  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:3:42: error: a lane cannot ALLOW: it escalates; its verdict is one of HOLD, "
        "PARK_ITEM, SAFE_MODE, BLOCK, DENY"}},
      {"UnknownScopeAndTimeout",
       "version: 1\nlanes:\n  customer:\n    owner: a\n    sla: 1h\n    verdict: HOLD\n"
       "    scope: items\n    on_timeout: notify\ntriggers:\n"
       "  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:7:12: error: unknown scope 'items'; one of item, workflow, credential",
        "m.yaml:8:17: error: unknown on_timeout 'notify'; one of notify_backup, "
        "route_to_fallback, pause_workflow, disable_credential, expire"}},
      {"TimeoutBehaviorsNeedTheirOwners",
       "version: 1\nlanes:\n"
       "  policy: {owner: a, backup: b, sla: 2h, verdict: PARK_ITEM, on_timeout: "
       "route_to_fallback}\n"
       "  customer: {owner: a, sla: 1h, verdict: HOLD, on_timeout: notify_backup}\n"
       "triggers:\n  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:3:74: error: on_timeout route_to_fallback needs a fallback in lane 'policy'",
        "m.yaml:4:60: error: on_timeout notify_backup needs a backup in lane 'customer'"}},
      {"InvalidAndDuplicateLaneNames",
       "version: 1\nlanes:\n  Customer: {owner: a, sla: 1h, verdict: HOLD}\n"
       "  ops: {owner: a, sla: 1h, verdict: HOLD}\n  ops: {owner: b, sla: 1h, verdict: HOLD}\n"
       "triggers:\n  - {id: t, lane: ops, when: action.critical}\n",
       {"m.yaml:3:3: error: invalid lane name 'Customer': use lowercase letters, digits, '_' and "
        "'-'",
        "m.yaml:5:3: error: duplicate lane 'ops' (first defined at 4:3)"}},
      {"BadEvidence",
       "version: 1\nlanes:\n  customer:\n    owner: a\n    sla: 1h\n    verdict: HOLD\n"
       "    evidence: [log, '', [x], log]\ntriggers:\n"
       "  - {id: t, lane: customer, when: action.critical}\n",
       {"m.yaml:7:21: error: evidence items must not be empty",
        "m.yaml:7:25: error: evidence must be a sequence of strings",
        "m.yaml:7:30: error: duplicate evidence 'log' in lane 'customer' (first listed at 7:16)"}},
      {"TriggerNamesUnknownLane",
       "version: 1\nlanes:\n  customer: {owner: a, sla: 1h, verdict: HOLD}\n"
       "  ops: {owner: a, sla: 1h, verdict: SAFE_MODE}\n"
       "triggers:\n  - id: t\n    lane: custmer\n    when: action.critical\n",
       {"m.yaml:7:11: error: unknown lane 'custmer' in trigger 't' (did you mean 'customer'?); "
        "lanes are customer, ops"}},
      {"DuplicateTriggerId",
       "version: 1\nlanes:\n  customer: {owner: a, sla: 1h, verdict: HOLD}\ntriggers:\n"
       "  - id: x\n    lane: customer\n    when: action.critical\n"
       "  - id: x\n    lane: customer\n    when: action.irreversible\n",
       {"m.yaml:8:9: error: duplicate trigger id 'x' (first defined at 5:9)"}},
      {"TriggerMissingAndEmptyKeys",
       "version: 1\nlanes:\n  customer: {owner: a, sla: 1h, verdict: HOLD}\ntriggers:\n"
       "  - lane: customer\n  - id: ''\n    lane:\n    when: \"\"\n  - id: z\n    lane: customer\n"
       "    wen: action.critical\n",
       {"m.yaml:5:5: error: trigger #1: missing required key 'id'",
        "m.yaml:5:5: error: trigger #1: missing required key 'when'",
        "m.yaml:6:9: error: id must not be empty", "m.yaml:7:5: error: lane must not be empty",
        "m.yaml:8:11: error: when must not be empty",
        "m.yaml:9:5: error: trigger 'z': missing required key 'when'",
        "m.yaml:11:5: error: unknown key 'wen' in trigger 'z' (did you mean 'when'?)"}},
      {"TriggerIsNotAMapping",
       "version: 1\nlanes:\n  customer: {owner: a, sla: 1h, verdict: HOLD}\ntriggers:\n"
       "  - low-confidence\n  - [a]\n",
       {"m.yaml:5:5: error: trigger #1 must be a mapping with id, lane and when",
        "m.yaml:6:5: error: trigger #2 must be a mapping with id, lane and when"}},
  };
}

class MatrixStructuralErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(MatrixStructuralErrorTest, ReportsEveryErrorAtTheNodeAtFault) {
  EXPECT_THAT(Errors(GetParam().yaml), ElementsAreArray(GetParam().want)) << GetParam().yaml;
}

INSTANTIATE_TEST_SUITE_P(Cases, MatrixStructuralErrorTest, ::testing::ValuesIn(StructuralCases()),
                         [](const auto& info) { return info.param.name; });

TEST(MatrixTest, RejectsAnOwnerOrConditionThatIsNotUtf8) {
  // A lane whose owner is not UTF-8 could never be acknowledged: the loader refuses it.
  const std::string owner =
      "version: 1\nlanes:\n  l:\n    owner: lead\xff\n    sla: 1h\n"
      "    verdict: HOLD\ntriggers:\n  - {id: t, lane: l, when: \"true\"}\n";
  EXPECT_THAT(Errors(owner), ElementsAre("m.yaml:4:12: error: owner is not valid UTF-8"));
  const std::string when =
      "version: 1\nlanes:\n  l: {owner: a, sla: 1h, verdict: HOLD}\n"
      "triggers:\n  - id: t\n    lane: l\n    when: action.type == 'x\xc3'\n";
  EXPECT_THAT(Errors(when), ElementsAre("m.yaml:7:11: error: when is not valid UTF-8"));
}

TEST(MatrixTest, ReportsAllErrorsOfAFileSortedByPosition) {
  const std::string yaml = R"(version: 1
triggers:
  - id: a
    lane: nowhere
    when: action.critical
  - id: a
    lane: ops
    when: action.critical
lanes:
  ops:
    owner: ops-oncall
    sla: soon
    verdict: MAYBE
  Bad: {owner: x, sla: 1h, verdict: HOLD, scope: galaxy}
)";
  EXPECT_THAT(
      Errors(yaml),
      ElementsAre(
          "m.yaml:4:11: error: unknown lane 'nowhere' in trigger 'a'; lanes are ops, Bad",
          "m.yaml:6:9: error: duplicate trigger id 'a' (first defined at 3:9)",
          "m.yaml:12:10: error: invalid duration 'soon' (expected e.g. 30m, 2h, 1h30m, 90s, 1d; "
          "units d h m s ms)",
          "m.yaml:13:14: error: unknown verdict 'MAYBE'; one of HOLD, PARK_ITEM, SAFE_MODE, "
          "BLOCK, DENY",
          "m.yaml:14:3: error: invalid lane name 'Bad': use lowercase letters, digits, '_' and '-'",
          "m.yaml:14:50: error: unknown scope 'galaxy'; one of item, workflow, credential"));
}

TEST(MatrixTest, AppendsToExistingDiagnostics) {
  std::vector<Diagnostic> diagnostics = {Diagnostic{"other.yaml", {1, 1}, Severity::kWarning, "x"}};
  EXPECT_FALSE(ParseMatrix("", "m.yaml", &diagnostics).ok());
  ASSERT_THAT(diagnostics, SizeIs(2));
  EXPECT_EQ(diagnostics[0].file, "other.yaml");
  EXPECT_EQ(diagnostics[1].file, "m.yaml");
}

TEST(MatrixTest, AcceptsNullDiagnostics) {
  absl::StatusOr<std::shared_ptr<const Matrix>> m = ParseMatrix("version: 1\n", "m.yaml", nullptr);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()),
              HasSubstr("m.yaml:1:1: error: the matrix: missing required key 'lanes'"));
}

// Loading the file in tests/testdata/matrices reads every field back.
TEST(MatrixTest, ReadsEveryFieldOfAValidMatrix) {
  const std::string path = absl::StrCat(kTestData, "/two-lanes.yaml");
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> loaded = LoadMatrixFile(path, &diagnostics);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(diagnostics, IsEmpty());
  const Matrix& m = **loaded;
  EXPECT_EQ(m.file(), path);
  EXPECT_EQ(m.version(), "2024-06");
  EXPECT_EQ(m.name(), "test-matrix");

  ASSERT_THAT(m.lanes(), SizeIs(2));
  const Lane& customer = m.lanes()[0];
  EXPECT_EQ(customer.name, "customer");
  EXPECT_EQ(customer.owner, "support-lead");
  EXPECT_EQ(customer.backup, "support-manager");
  EXPECT_EQ(customer.fallback, "");
  EXPECT_EQ(customer.sla, absl::Minutes(90));
  EXPECT_EQ(customer.verdict, v1::VERDICT_HOLD);
  EXPECT_EQ(customer.scope, v1::SCOPE_ITEM);  // the default for HOLD
  EXPECT_EQ(customer.agent_action, "hold the reply");
  EXPECT_EQ(customer.operator_action, "review the draft");
  EXPECT_THAT(customer.evidence, ElementsAre("original_input", "proposed_action"));
  EXPECT_EQ(customer.on_timeout, v1::TIMEOUT_BEHAVIOR_NOTIFY_BACKUP);
  EXPECT_EQ(customer.location, (SourceLocation{5, 3}));

  const Lane& security = m.lanes()[1];
  EXPECT_EQ(security.name, "security");
  EXPECT_EQ(security.owner, "security-oncall");
  EXPECT_EQ(security.backup, "security-lead");
  EXPECT_EQ(security.fallback, "ciso");
  EXPECT_EQ(security.sla, absl::Minutes(15));
  EXPECT_EQ(security.verdict, v1::VERDICT_DENY);
  EXPECT_EQ(security.scope, v1::SCOPE_CREDENTIAL);  // the default for DENY
  EXPECT_EQ(security.agent_action, "stop");
  EXPECT_EQ(security.operator_action, "inspect");
  EXPECT_THAT(security.evidence, ElementsAre("access_log"));
  EXPECT_EQ(security.on_timeout, v1::TIMEOUT_BEHAVIOR_ROUTE_TO_FALLBACK);
  EXPECT_EQ(security.location, (SourceLocation{14, 3}));

  EXPECT_EQ(m.FindLane("customer"), 0);
  EXPECT_EQ(m.FindLane("security"), 1);
  EXPECT_EQ(m.FindLane("ops"), -1);

  ASSERT_THAT(m.triggers(), SizeIs(3));
  const Trigger& low = m.triggers()[0];
  EXPECT_EQ(low.id, "low-confidence");
  EXPECT_EQ(low.lane, 0);
  ASSERT_NE(low.condition, nullptr);
  EXPECT_EQ(low.condition->source(), "action.customer_facing && model.confidence < 0.72");
  EXPECT_EQ(low.location, (SourceLocation{18, 5}));
  EXPECT_EQ(low.when_location, (SourceLocation{20, 11}));

  const Trigger& admin = m.triggers()[1];
  EXPECT_EQ(admin.id, "admin-scope");
  EXPECT_EQ(admin.lane, 1);
  ASSERT_NE(admin.condition, nullptr);
  EXPECT_EQ(admin.condition->source(), "\"admin\" in action.requested_scopes");
  EXPECT_EQ(admin.when_location, (SourceLocation{23, 12}));  // inside the quotes

  const Trigger& refund = m.triggers()[2];
  EXPECT_EQ(refund.id, "big-refund");
  EXPECT_EQ(refund.lane, 0);
  ASSERT_NE(refund.condition, nullptr);
  EXPECT_EQ(refund.condition->source(), "action.type == \"refund\" && action.amount > 250.0");
  EXPECT_EQ(refund.when_location, (SourceLocation{27, 7}));  // the first line of the block
}

TEST(MatrixTest, DefaultsTheScopeFromTheVerdict) {
  const std::string yaml = R"(version: 7
lanes:
  a: {owner: o1, sla: 1h, verdict: HOLD}
  b: {owner: o2, sla: 1h, verdict: PARK_ITEM}
  c: {owner: o3, sla: 1h, verdict: BLOCK}
  d: {owner: o4, sla: 1h, verdict: SAFE_MODE}
  e: {owner: o5, sla: 1h, verdict: DENY}
  f: {owner: o6, sla: 1h, verdict: SAFE_MODE, scope: item}
triggers:
  - {id: t, lane: a, when: action.critical}
)";
  absl::StatusOr<std::shared_ptr<const Matrix>> m = ParseMatrix(yaml, "m.yaml", nullptr);
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<std::pair<Verdict, Scope>> got;
  for (const Lane& lane : (*m)->lanes()) got.emplace_back(lane.verdict, lane.scope);
  EXPECT_THAT(got, ElementsAre(std::pair(v1::VERDICT_HOLD, v1::SCOPE_ITEM),
                               std::pair(v1::VERDICT_PARK_ITEM, v1::SCOPE_ITEM),
                               std::pair(v1::VERDICT_BLOCK, v1::SCOPE_ITEM),
                               std::pair(v1::VERDICT_SAFE_MODE, v1::SCOPE_WORKFLOW),
                               std::pair(v1::VERDICT_DENY, v1::SCOPE_CREDENTIAL),
                               std::pair(v1::VERDICT_SAFE_MODE, v1::SCOPE_ITEM)));
  EXPECT_EQ((*m)->version(), "7");
  EXPECT_EQ((*m)->name(), "");
}

TEST(MatrixTest, KeepsLaneAndTriggerOrder) {
  const std::string yaml = R"(version: 1
lanes:
  zeta: {owner: a, sla: 1h, verdict: HOLD}
  alpha: {owner: b, sla: 1h, verdict: DENY}
  mid: {owner: c, sla: 1h, verdict: BLOCK}
triggers:
  - {id: t3, lane: mid, when: action.critical}
  - {id: t1, lane: zeta, when: action.critical}
  - {id: t2, lane: alpha, when: action.critical}
)";
  absl::StatusOr<std::shared_ptr<const Matrix>> m = ParseMatrix(yaml, "m.yaml", nullptr);
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<std::string> lanes;
  for (const Lane& lane : (*m)->lanes()) lanes.push_back(lane.name);
  std::vector<std::pair<std::string, int>> triggers;
  for (const Trigger& t : (*m)->triggers()) triggers.emplace_back(t.id, t.lane);
  EXPECT_THAT(lanes, ElementsAre("zeta", "alpha", "mid"));
  EXPECT_THAT(triggers, ElementsAre(std::pair("t3", 2), std::pair("t1", 0), std::pair("t2", 1)));
}

TEST(MatrixTest, LoadsTheBundledMatrix) {
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m =
      LoadMatrixFile(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml", &diagnostics);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(Strings(diagnostics, Severity::kError), IsEmpty());
  std::vector<std::string> lanes;
  for (const Lane& lane : (*m)->lanes()) lanes.push_back(lane.name);
  EXPECT_THAT(lanes, ElementsAre("customer", "policy", "ops", "security", "financial"));
  EXPECT_THAT((*m)->triggers(), SizeIs(10));
  EXPECT_EQ((*m)->version(), "1");
  EXPECT_EQ((*m)->name(), "support-agent");
}

// --- Positions inside conditions -----------------------------------------------------------

// A matrix around one trigger whose `when:` is written as given (the rest of its line and any
// following lines), starting at line 7.
std::string WithWhen(const std::string& when) {
  return absl::StrCat(
      "version: 1\n"
      "lanes:\n"
      "  customer: {owner: a, sla: 1h, verdict: HOLD}\n"
      "triggers:\n"
      "  - id: t\n"
      "    lane: customer\n"
      "    when: ",
      when, "\n");
}

struct PositionCase {
  std::string name;
  std::string when;         // as written after `when: `
  std::string want_prefix;  // "m.yaml:LINE:COL: error: " of the unknown field
};

// `action.nope` is an unknown field wherever it appears: the compiler's error points at it.
std::vector<PositionCase> PositionCases() {
  return {
      {"Plain", "action.critical && action.nope", "m.yaml:7:30: error: "},
      {"PlainFoldedOverLines", "action.critical &&\n      action.nope", "m.yaml:8:7: error: "},
      {"SingleQuoted", "'action.critical && action.nope'", "m.yaml:7:31: error: "},
      {"SingleQuotedWithEscapedQuote", "'''its'' != action.type || action.nope'",
       "m.yaml:7:38: error: "},
      {"DoubleQuoted", "\"action.critical && action.nope\"", "m.yaml:7:31: error: "},
      {"DoubleQuotedWithEscapes", "\"\\\"a\\\" != action.type || action.nope\"",
       "m.yaml:7:36: error: "},
      {"DoubleQuotedWithUnicodeEscape", "\"'\\u00e9' != action.type || action.nope\"",
       "m.yaml:7:39: error: "},
      {"DoubleQuotedOverLines", "\"action.critical &&\n        action.nope\"",
       "m.yaml:8:9: error: "},
      {"DoubleQuotedEscapedLineBreak", "\"action.critical && act\\\n      ion.nope\"",
       "m.yaml:7:31: error: "},
      {"Literal", "|\n      action.critical &&\n      action.nope", "m.yaml:9:7: error: "},
      {"LiteralWithChompingAndComment",
       "|- # the condition\n\n        action.critical ||\n"
       "          action.nope",
       "m.yaml:10:11: error: "},
      {"Folded", ">\n      action.critical &&\n      action.irreversible &&\n      action.nope",
       "m.yaml:10:7: error: "},
      {"TaggedAndAnchored", "!!str &w action.critical && action.nope", "m.yaml:7:39: error: "},
  };
}

class MatrixConditionPositionTest : public ::testing::TestWithParam<PositionCase> {};

TEST_P(MatrixConditionPositionTest, MapsCompilerOffsetsToTheFile) {
  std::vector<std::string> errors = Errors(WithWhen(GetParam().when));
  ASSERT_THAT(errors, SizeIs(1)) << WithWhen(GetParam().when);
  EXPECT_THAT(errors[0], AllOf(StartsWith(GetParam().want_prefix), HasSubstr("nope")));
}

INSTANTIATE_TEST_SUITE_P(Cases, MatrixConditionPositionTest, ::testing::ValuesIn(PositionCases()),
                         [](const auto& info) { return info.param.name; });

TEST(MatrixTest, ReportsEveryConditionErrorOfEveryTrigger) {
  const std::string yaml = R"(version: 1
lanes:
  customer: {owner: a, sla: 1h, verdict: HOLD}
triggers:
  - {id: a, lane: customer, when: action.nope1}
  - {id: b, lane: customer, when: 'action.critical && action.nope2'}
  - id: c
    lane: customer
    when: >
      action.critical &&
      action.nope3
)";
  std::vector<std::string> errors = Errors(yaml);
  ASSERT_THAT(errors, SizeIs(3));
  EXPECT_THAT(errors[0], AllOf(StartsWith("m.yaml:5:35: error: "), HasSubstr("nope1")));
  EXPECT_THAT(errors[1], AllOf(StartsWith("m.yaml:6:55: error: "), HasSubstr("nope2")));
  EXPECT_THAT(errors[2], AllOf(StartsWith("m.yaml:11:7: error: "), HasSubstr("nope3")));
}

TEST(MatrixTest, WhenLocationPointsAtTheFirstCharacterOfTheCondition) {
  absl::StatusOr<std::shared_ptr<const Matrix>> m =
      ParseMatrix(WithWhen("|\n      action.critical"), "m.yaml", nullptr);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->triggers()[0].when_location, (SourceLocation{8, 7}));
  EXPECT_EQ((*m)->triggers()[0].location, (SourceLocation{5, 5}));
}

// --- YamlSource: the position mapping itself ----------------------------------------------

// Where each byte of the scalar after "k: " on the first line comes from, as "line:col".
std::vector<std::string> MappedLocations(const std::string& text, absl::string_view value) {
  YamlSource source(text);
  std::vector<std::string> out;
  for (size_t offset : source.MapScalar(3, value)) {
    SourceLocation l = source.LocationOf(offset);
    out.push_back(absl::StrCat(l.line, ":", l.column));
  }
  return out;
}

TEST(MatrixYamlSourceTest, MapsPlainScalarsByteForByte) {
  EXPECT_THAT(MappedLocations("k: a b\n", "a b"), ElementsAre("1:4", "1:5", "1:6"));
  // A line break folds into a space at the break; trailing blanks are dropped.
  EXPECT_THAT(MappedLocations("k: a  \n  b\n", "a b"), ElementsAre("1:4", "1:7", "2:3"));
  // An empty line is a newline.
  EXPECT_THAT(MappedLocations("k: a\n\n  b\n", "a\nb"), ElementsAre("1:4", "1:5", "3:3"));
}

TEST(MatrixYamlSourceTest, MapsQuotedScalarsInsideTheQuotes) {
  EXPECT_THAT(MappedLocations("k: 'a''b'\n", "a'b"), ElementsAre("1:5", "1:6", "1:8"));
  EXPECT_THAT(MappedLocations("k: \"a\\tb\"\n", "a\tb"), ElementsAre("1:5", "1:6", "1:8"));
  // Every byte of an escape maps to its backslash.
  EXPECT_THAT(MappedLocations("k: \"\\u00e9x\"\n", "\xC3\xA9x"), ElementsAre("1:5", "1:5", "1:11"));
  EXPECT_THAT(MappedLocations("k: \"a\\\n   b\"\n", "ab"), ElementsAre("1:5", "2:4"));
}

TEST(MatrixYamlSourceTest, MapsBlockScalarsLineByLine) {
  EXPECT_THAT(MappedLocations("k: |\n  a\n   b\n", "a\n b\n"),
              ElementsAre("2:3", "2:4", "3:3", "3:4", "3:5"));
  EXPECT_THAT(MappedLocations("k: >-\n  a\n  b\n", "a b"), ElementsAre("2:3", "2:4", "3:3"));
  EXPECT_THAT(MappedLocations("k: >\n  a\n\n  b\n", "a\nb\n"),
              ElementsAre("2:3", "3:1", "4:3", "4:4"));
}

TEST(MatrixYamlSourceTest, GivesUpOnLayoutsItDoesNotUnderstand) {
  // The value does not match the text at the mark: no mapping rather than a wrong one.
  EXPECT_THAT(MappedLocations("k: abc\n", "abd"), IsEmpty());
  EXPECT_THAT(MappedLocations("k: 'ab'\n", "abc"), IsEmpty());
  EXPECT_THAT(MappedLocations("k: |\nab\n", "ab\n"), IsEmpty());
  EXPECT_THAT(MappedLocations("k: \"\\q\"\n", "q"), IsEmpty());
  EXPECT_THAT(MappedLocations("k: ", "a"), IsEmpty());
  EXPECT_THAT(YamlSource("k: a").MapScalar(100, "a"), IsEmpty());
}

TEST(MatrixYamlSourceTest, ConvertsMarksAndOffsetsAroundAByteOrderMark) {
  YamlSource source("\xEF\xBB\xBFk: v\nx: y\n");
  EXPECT_EQ(source.OffsetOfMark(0, 3), 6u);
  EXPECT_EQ(source.OffsetOfMark(1, 0), 8u);
  EXPECT_EQ(source.OffsetOfMark(5, 0), std::nullopt);
  EXPECT_EQ(source.OffsetOfMark(0, 100), std::nullopt);
  EXPECT_EQ(source.LocationOf(6), (SourceLocation{1, 4}));
  EXPECT_EQ(source.LocationOf(8), (SourceLocation{2, 1}));
}

TEST(MatrixTest, ReportsConditionErrorsInAFileWithAByteOrderMark) {
  std::vector<std::string> errors = Errors("\xEF\xBB\xBF" + WithWhen("action.nope"));
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0], StartsWith("m.yaml:7:11: error: "));
}

TEST(MatrixTest, ReadsCrLfFiles) {
  const std::string yaml =
      absl::StrReplaceAll(WithWhen("\"action.critical &&\n      action.nope\""), {{"\n", "\r\n"}});
  std::vector<std::string> errors = Errors(yaml);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0], StartsWith("m.yaml:8:7: error: "));
}

// --- Files ------------------------------------------------------------------------------

std::string TempPath(absl::string_view name) {
  return absl::StrCat(::testing::TempDir(), "/matrix_test_", getpid(), "_", name);
}

TEST(MatrixTest, ReportsAMissingFileAsNotFound) {
  const std::string path = TempPath("does-not-exist.yaml");
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m = LoadMatrixFile(path, &diagnostics);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  const std::string want = absl::StrCat(path, ": error: cannot read: No such file or directory");
  EXPECT_EQ(m.status().message(), want);
  EXPECT_THAT(Strings(diagnostics, Severity::kError), ElementsAre(want));
}

TEST(MatrixTest, ReportsADirectoryAsUnreadable) {
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m = LoadMatrixFile(kTestData, &diagnostics);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Strings(diagnostics, Severity::kError),
              ElementsAre(absl::StrCat(kTestData, ": error: cannot read: Is a directory")));
}

TEST(MatrixTest, ReportsErrorsInAFileWithItsPath) {
  const std::string path = TempPath("bad.yaml");
  std::ofstream(path) << "version: 1\nlanes: []\n";
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m = LoadMatrixFile(path, &diagnostics);
  std::remove(path.c_str());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Strings(diagnostics, Severity::kError),
              ElementsAre(absl::StrCat(path,
                                       ":1:1: error: the matrix: missing required key "
                                       "'triggers'"),
                          absl::StrCat(path, ":2:8: error: lanes must be a mapping")));
}

// --- Hostile input --------------------------------------------------------------------------

TEST(MatrixTest, RejectsAFileLargerThanFourMebibytes) {
  const std::string path = TempPath("huge.yaml");
  const std::string huge = "# " + std::string(5 << 20, 'x') + "\n";
  std::ofstream(path) << huge;
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m = LoadMatrixFile(path, &diagnostics);
  std::remove(path.c_str());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Strings(diagnostics, Severity::kError),
              ElementsAre(absl::StrCat(path,
                                       ": error: the matrix is larger than 4 MiB (5242883 "
                                       "bytes)")));

  EXPECT_THAT(Errors(huge),
              ElementsAre("m.yaml: error: the matrix is larger than 4 MiB (5242883 bytes)"));
}

TEST(MatrixTest, RejectsDeepFlowNestingBeforeParsing) {
  EXPECT_THAT(Errors("version: " + std::string(100000, '[')),
              ElementsAre("m.yaml:1:73: error: the document is nested deeper than 64 levels"));
  EXPECT_THAT(Errors("a: " + std::string(10000, '{') + "\n"),
              ElementsAre("m.yaml:1:67: error: the document is nested deeper than 64 levels"));
}

TEST(MatrixTest, RejectsDeepBlockNestingBeforeParsing) {
  std::string indented;
  for (int i = 0; i < 1000; ++i) absl::StrAppend(&indented, std::string(i, ' '), "k:\n");
  EXPECT_THAT(Errors(indented),
              ElementsAre("m.yaml:65:65: error: the document is nested deeper than 64 levels"));
  std::string dashes;
  for (int i = 0; i < 1000; ++i) dashes += "- ";
  EXPECT_THAT(Errors(dashes + "x\n"),
              ElementsAre("m.yaml:1:129: error: the document is nested deeper than 64 levels"));
}

TEST(MatrixTest, AcceptsNestingUpToTheLimit) {
  // 64 levels in all: the top-level mapping and 63 flow sequences.
  std::vector<std::string> errors = Errors(absl::StrCat(
      "version: 1\nlanes: {}\ntriggers: [", std::string(62, '['), std::string(62, ']'), "]\n"));
  EXPECT_THAT(errors, Not(Contains(HasSubstr("nested deeper"))));
  EXPECT_THAT(errors, Contains(HasSubstr("lanes must define at least one lane")));
}

// Billion laughs: each level refers nine times to the one before. yaml-cpp shares aliased nodes
// and the loader never walks a value it does not expect, so this is quick.
std::string AliasBomb(absl::string_view use) {
  std::string yaml = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 30; ++i) {
    std::vector<std::string> refs(9, absl::StrCat("*a", i - 1));
    absl::StrAppend(&yaml, "a", i, ": &a", i, " [", absl::StrJoin(refs, ", "), "]\n");
  }
  return absl::StrCat(yaml, use);
}

TEST(MatrixTest, SurvivesAnAliasBomb) {
  std::vector<std::string> errors =
      Errors(AliasBomb("version: 1\nlanes:\n  a:\n    owner: x\n    sla: 1h\n    verdict: HOLD\n"
                       "    evidence: *a29\ntriggers: *a29\n"));
  // 30 unknown keys, 9 evidence items that are lists, 9 triggers that are not mappings.
  EXPECT_THAT(errors, SizeIs(30 + 9 + 9));
  EXPECT_THAT(errors, Contains("m.yaml:1:1: error: unknown key 'a0' in the matrix"));
  EXPECT_THAT(errors, Contains(HasSubstr("error: trigger #9 must be a mapping with id, lane "
                                         "and when")));
}

TEST(MatrixTest, SurvivesARecursiveAlias) {
  std::vector<std::string> errors = Errors(
      "version: 1\nlanes:\n  a: {owner: x, sla: 1h, verdict: HOLD, evidence: &e [*e]}\n"
      "triggers: [{id: t, lane: a, when: action.critical}]\n");
  EXPECT_THAT(errors, ElementsAre("m.yaml:3:51: error: evidence must be a sequence of strings"));
}

TEST(MatrixTest, CapsTheNumberOfErrorsReported) {
  std::string yaml = "version: 1\n";
  for (int i = 0; i < 150; ++i) absl::StrAppend(&yaml, "unknown", i, ": x\n");
  std::vector<std::string> errors = Errors(yaml);
  ASSERT_THAT(errors, SizeIs(101));
  EXPECT_EQ(errors[0], "m.yaml:1:1: error: the matrix: missing required key 'lanes'");
  EXPECT_EQ(errors[100], "m.yaml: error: too many errors; 52 more not shown");
}

TEST(MatrixTest, RejectsBinaryJunkWithoutCrashing) {
  std::mt19937 random(20240611);  // fixed seed: the same inputs on every run
  for (int i = 0; i < 300; ++i) {
    std::string junk(1 + random() % 2000, '\0');
    for (char& c : junk) c = static_cast<char>(random() % 256);
    std::vector<Diagnostic> diagnostics;
    absl::StatusOr<std::shared_ptr<const Matrix>> m = ParseMatrix(junk, "junk.yaml", &diagnostics);
    EXPECT_FALSE(m.ok());
    ASSERT_THAT(Strings(diagnostics, Severity::kError), Not(IsEmpty()));
    EXPECT_THAT(Strings(diagnostics, Severity::kError)[0], StartsWith("junk.yaml"));
  }
}

TEST(MatrixTest, SurvivesMutationsOfTheBundledMatrix) {
  std::ifstream in(AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml");
  const std::string bundled((std::istreambuf_iterator<char>(in)), {});
  ASSERT_THAT(bundled, Not(IsEmpty()));
  std::mt19937 random(7);
  int rejected = 0;
  for (int i = 0; i < 500; ++i) {
    std::string mutated = bundled;
    testing::Mutate(&mutated, 1 + i % 4, random);
    std::vector<Diagnostic> diagnostics;
    absl::StatusOr<std::shared_ptr<const Matrix>> m =
        ParseMatrix(mutated, "mutated.yaml", &diagnostics);
    if (!m.ok()) {
      ++rejected;
      EXPECT_THAT(std::string(m.status().message()), StartsWith("mutated.yaml")) << mutated;
    }
  }
  EXPECT_GT(rejected, 0);  // the mutations do break things
}

}  // namespace
}  // namespace agate::engine
