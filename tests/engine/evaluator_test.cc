#include "engine/evaluator.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "engine/matrix.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace agate::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const char kBundled[] = AGATE_SOURCE_DIR "/deploy/examples/escalation-matrix.yaml";

std::shared_ptr<const Matrix> LoadBundled() {
  absl::StatusOr<std::shared_ptr<const Matrix>> m = LoadMatrixFile(kBundled, nullptr);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : nullptr;
}

std::shared_ptr<const Matrix> Parse(const std::string& yaml) {
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Matrix>> m = ParseMatrix(yaml, "test.yaml", &diagnostics);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : nullptr;
}

// A request that fires nothing in the bundled matrix: a confident, friendly, customer-facing
// reply within the tenant.
Request AllowRequest() {
  Request r;
  r.set_request_id("req-1");
  r.set_tenant_id("t1");
  r.set_workflow_id("support");
  r.set_item_id("ticket-1");
  r.mutable_action()->set_type("send_reply");
  r.mutable_action()->set_customer_facing(true);
  r.mutable_action()->set_target_tenant_id("t1");
  r.mutable_model()->set_confidence(0.93);
  r.mutable_model()->set_sentiment("neutral");
  r.mutable_actor()->set_credential_id("cred-1");
  return r;
}

Request With(const std::string& text_format) {
  Request r = AllowRequest();
  EXPECT_TRUE(google::protobuf::TextFormat::MergeFromString(text_format, &r)) << text_format;
  return r;
}

std::vector<std::string> FiredIds(const Decision& d) {
  std::vector<std::string> ids;
  for (const FiredTrigger& f : d.fired) ids.push_back(d.matrix->triggers()[f.trigger].id);
  return ids;
}

std::string LaneName(const Decision& d) { return d.lane < 0 ? "" : d.matrix->lanes()[d.lane].name; }

class BundledMatrixTest : public ::testing::Test {
 protected:
  Decision Eval(const Request& r) { return Evaluate(matrix_, r, clock_.Now()); }

  FakeClock clock_;
  std::shared_ptr<const Matrix> matrix_ = LoadBundled();
};

TEST_F(BundledMatrixTest, AllowsWhenNothingFires) {
  Decision d = Eval(AllowRequest());
  EXPECT_EQ(d.verdict, v1::VERDICT_ALLOW);
  EXPECT_EQ(d.lane, -1);
  EXPECT_THAT(d.fired, IsEmpty());
  EXPECT_THAT(d.missing_evidence, IsEmpty());
  EXPECT_EQ(d.sla_deadline, absl::InfinitePast());
  EXPECT_EQ(d.decided_at, clock_.Now());
  EXPECT_EQ(d.matrix->version(), "1");
  EXPECT_EQ(d.id.view().size(), 26u);
}

struct VerdictCase {
  std::string name;
  std::string request;  // text format merged into AllowRequest()
  v1::Verdict want_verdict;
  std::string want_lane;
  std::vector<std::string> want_fired;
};

class BundledVerdictTest : public BundledMatrixTest,
                           public ::testing::WithParamInterface<VerdictCase> {};

TEST_P(BundledVerdictTest, DecidesTheExpectedVerdict) {
  const VerdictCase& c = GetParam();
  Decision d = Eval(With(c.request));
  EXPECT_EQ(d.verdict, c.want_verdict) << VerdictName(d.verdict);
  EXPECT_EQ(LaneName(d), c.want_lane);
  EXPECT_THAT(FiredIds(d), ElementsAreArray(c.want_fired));
}

INSTANTIATE_TEST_SUITE_P(
    SeedScenarios, BundledVerdictTest,
    ::testing::Values(
        // customer: confidence below 0.72 on customer-facing output; 0.72 itself does not fire.
        VerdictCase{"LowConfidence",
                    "model { confidence: 0.6 }",
                    v1::VERDICT_HOLD,
                    "customer",
                    {"low-confidence-customer-facing"}},
        VerdictCase{"ConfidenceJustBelow",
                    "model { confidence: 0.7199999 }",
                    v1::VERDICT_HOLD,
                    "customer",
                    {"low-confidence-customer-facing"}},
        VerdictCase{
            "ConfidenceAtThreshold", "model { confidence: 0.72 }", v1::VERDICT_ALLOW, "", {}},
        VerdictCase{
            "ConfidenceJustAbove", "model { confidence: 0.7200001 }", v1::VERDICT_ALLOW, "", {}},
        VerdictCase{"LowConfidenceInternal",
                    "model { confidence: 0.1 } action { customer_facing: false }",
                    v1::VERDICT_ALLOW,
                    "",
                    {}},
        VerdictCase{"UnsetConfidenceEscalates",
                    "model { confidence: 0 }",
                    v1::VERDICT_HOLD,
                    "customer",
                    {"low-confidence-customer-facing"}},
        VerdictCase{"Hostile",
                    "model { sentiment: 'hostile' } action { customer_facing: false }",
                    v1::VERDICT_HOLD,
                    "customer",
                    {"hostile-or-legal-risk"}},
        VerdictCase{"LegalRiskLabel",
                    "model { labels: 'legal_risk' }",
                    v1::VERDICT_HOLD,
                    "customer",
                    {"hostile-or-legal-risk"}},
        // policy: discount over 20%.
        VerdictCase{"Discount35",
                    "action { type: 'discount' } attributes { fields { key: 'discount_pct' "
                    "value { number_value: 35 } } }",
                    v1::VERDICT_PARK_ITEM,
                    "policy",
                    {"discount-over-threshold"}},
        VerdictCase{"DiscountAtThreshold",
                    "action { type: 'discount' } attributes { fields { key: 'discount_pct' "
                    "value { number_value: 20 } } }",
                    v1::VERDICT_ALLOW,
                    "",
                    {}},
        VerdictCase{
            "DiscountWithoutPercentage", "action { type: 'discount' }", v1::VERDICT_ALLOW, "", {}},
        // ops: more than 3 retries in 10 minutes.
        VerdictCase{"RetryStorm",
                    "signals { key: 'retry' value: 4 }",
                    v1::VERDICT_SAFE_MODE,
                    "ops",
                    {"retry-storm"}},
        VerdictCase{"ThreeRetries", "signals { key: 'retry' value: 3 }", v1::VERDICT_ALLOW, "", {}},
        // security: tenant mismatch, admin scope.
        VerdictCase{"TenantMismatch",
                    "action { target_tenant_id: 't2' }",
                    v1::VERDICT_DENY,
                    "security",
                    {"tenant-mismatch"}},
        VerdictCase{"AdminScope",
                    "action { requested_scopes: ['read', 'admin'] }",
                    v1::VERDICT_DENY,
                    "security",
                    {"admin-scope"}},
        // financial: refund over $250; 250 itself does not fire.
        VerdictCase{"Refund300",
                    "action { type: 'refund' amount: 300 }",
                    v1::VERDICT_BLOCK,
                    "financial",
                    {"refund-over-limit"}},
        VerdictCase{"RefundJustOver",
                    "action { type: 'refund' amount: 250.01 }",
                    v1::VERDICT_BLOCK,
                    "financial",
                    {"refund-over-limit"}},
        VerdictCase{
            "RefundAtLimit", "action { type: 'refund' amount: 250.0 }", v1::VERDICT_ALLOW, "", {}},
        VerdictCase{"IrreversibleWire",
                    "action { type: 'wire_transfer' amount: 900 irreversible: true }",
                    v1::VERDICT_BLOCK,
                    "financial",
                    {"irreversible-over-limit"}},
        VerdictCase{"IrreversibleAtLimit",
                    "action { type: 'wire_transfer' amount: 250 irreversible: true }",
                    v1::VERDICT_ALLOW,
                    "",
                    {}},
        VerdictCase{"IssueCredit",
                    "action { type: 'issue_credit' amount: 251 }",
                    v1::VERDICT_BLOCK,
                    "financial",
                    {"refund-over-limit"}},
        // several lanes: the most restrictive wins, every fired trigger is reported in order.
        VerdictCase{"SecurityAndCustomer",
                    "action { target_tenant_id: 't2' } model { confidence: 0.5 }",
                    v1::VERDICT_DENY,
                    "security",
                    {"low-confidence-customer-facing", "tenant-mismatch"}},
        VerdictCase{"EveryLane",
                    "action { type: 'discount' irreversible: true amount: 300 requested_scopes: "
                    "'admin' } model { confidence: 0.1 } signals { key: 'retry' value: 9 } "
                    "attributes { fields { key: 'discount_pct' value { number_value: 50 } } }",
                    v1::VERDICT_DENY,
                    "security",
                    {"low-confidence-customer-facing", "discount-over-threshold", "retry-storm",
                     "admin-scope", "irreversible-over-limit"}}),
    [](const auto& info) { return info.param.name; });

// One request per bundled lane that fires only that lane; the pairs test combines them.
struct LaneRequest {
  const char* lane;
  v1::Verdict verdict;
  const char* text;
};
constexpr LaneRequest kLaneRequests[] = {
    {"customer", v1::VERDICT_HOLD, "model { sentiment: 'hostile' }"},
    {"policy", v1::VERDICT_PARK_ITEM,
     "action { type: 'discount' } attributes { fields { key: 'discount_pct' value { "
     "number_value: 30 } } }"},
    {"ops", v1::VERDICT_SAFE_MODE, "signals { key: 'retry' value: 5 }"},
    {"security", v1::VERDICT_DENY, "action { requested_scopes: 'admin' }"},
    {"financial", v1::VERDICT_BLOCK, "action { irreversible: true amount: 1000 }"},
};

TEST_F(BundledMatrixTest, PrecedenceHoldsBetweenEveryPairOfLanes) {
  for (const LaneRequest& a : kLaneRequests) {
    for (const LaneRequest& b : kLaneRequests) {
      Decision d = Eval(With(absl::StrCat(a.text, " ", b.text)));
      const LaneRequest& want = MoreRestrictive(b.verdict, a.verdict) ? b : a;
      EXPECT_EQ(d.verdict, want.verdict) << a.lane << " + " << b.lane;
      EXPECT_EQ(LaneName(d), want.lane) << a.lane << " + " << b.lane;
      EXPECT_EQ(d.fired.size(), std::string(a.lane) == b.lane ? 1u : 2u)
          << a.lane << " + " << b.lane;
    }
  }
}

TEST_F(BundledMatrixTest, WinningLaneSuppliesOwnersSlaActionsAndMissingEvidence) {
  Request r = With("action { type: 'refund' amount: 400 }");
  (*r.mutable_evidence())["proposed_action"] = "refund 400 to order 17";
  (*r.mutable_evidence())["justification"] = "";  // empty counts as missing
  Decision d = Eval(r);
  ASSERT_EQ(LaneName(d), "financial");
  const Lane& lane = d.matrix->lanes()[d.lane];
  EXPECT_EQ(lane.owner, "finance-approver");
  EXPECT_EQ(lane.backup, "controller");
  EXPECT_EQ(d.sla_deadline, clock_.Now() + absl::Hours(4));
  std::vector<std::string> missing;
  for (int i : d.missing_evidence) missing.push_back(lane.evidence[i]);
  EXPECT_THAT(missing, ElementsAre("customer_record", "justification"));
}

TEST_F(BundledMatrixTest, ReportsTheValuesEachFiredTriggerRead) {
  Decision d = Eval(With("model { confidence: 0.5 }"));
  ASSERT_EQ(d.fired.size(), 1u);
  const std::vector<expr::Observation>& values = d.fired[0].values;
  ASSERT_EQ(values.size(), 2u);
  EXPECT_EQ(values[0].field, "action.customer_facing");
  EXPECT_TRUE(values[0].value.bool_value());
  EXPECT_EQ(values[1].field, "model.confidence");
  EXPECT_DOUBLE_EQ(values[1].value.number_value(), 0.5);
  EXPECT_EQ(d.fired[0].error, "");
}

TEST_F(BundledMatrixTest, CountReadsTheRequestsOwnSignalsWithoutACounter) {
  Decision d = Eval(With("signals { key: 'retry' value: 7 }"));
  ASSERT_EQ(d.fired.size(), 1u);
  ASSERT_EQ(d.fired[0].values.size(), 1u);
  EXPECT_EQ(d.fired[0].values[0].field, "count(\"retry\", \"10m\")");
  EXPECT_EQ(d.fired[0].values[0].value.number_value(), 7);
}

TEST_F(BundledMatrixTest, DecisionIdsAreUnique) {
  Decision a = Eval(AllowRequest());
  Decision b = Eval(AllowRequest());
  EXPECT_NE(a.id.view(), b.id.view());
}

const char kTieMatrix[] = R"yaml(
version: tie-1
lanes:
  first:  {owner: a, backup: b, sla: 10m, verdict: HOLD, scope: item, on_timeout: notify_backup,
           evidence: [x], agent_action: hold, operator_action: look}
  second: {owner: c, backup: d, sla: 20m, verdict: HOLD, scope: item, on_timeout: notify_backup,
           evidence: [y], agent_action: hold, operator_action: look}
  errors: {owner: e, backup: f, sla: 5m, verdict: PARK_ITEM, scope: item, on_timeout: notify_backup,
           evidence: [z], agent_action: park, operator_action: look}
triggers:
  - id: second-fires
    lane: second
    when: action.type == "x"
  - id: first-fires
    lane: first
    when: action.type == "x" && action.target == "t"
  - id: tier-is-gold
    lane: errors
    when: attributes.tier == "gold"
)yaml";

TEST(EvaluatorTest, TiesGoToTheLaneListedFirstInTheMatrix) {
  FakeClock clock;
  const std::shared_ptr<const Matrix> matrix = Parse(kTieMatrix);
  Request r = With(
      "action { type: 'x' target: 't' } attributes { fields { key: 'tier' value { "
      "string_value: 'silver' } } }");
  Decision d = Evaluate(matrix, r, clock.Now());
  EXPECT_EQ(d.verdict, v1::VERDICT_HOLD);
  EXPECT_EQ(LaneName(d), "first");  // listed first among lanes, although its trigger is second
  EXPECT_THAT(FiredIds(d), ElementsAre("second-fires", "first-fires"));
  EXPECT_EQ(d.sla_deadline, clock.Now() + absl::Minutes(10));
  EXPECT_EQ(d.matrix->version(), "tie-1");
}

TEST(EvaluatorTest, RunTimeErrorsFailClosedAndAreReported) {
  FakeClock clock;
  const std::shared_ptr<const Matrix> matrix = Parse(kTieMatrix);
  Decision d = Evaluate(matrix, AllowRequest(), clock.Now());  // no attributes.tier: the read fails
  EXPECT_EQ(d.verdict, v1::VERDICT_PARK_ITEM);
  EXPECT_EQ(LaneName(d), "errors");
  ASSERT_EQ(d.fired.size(), 1u);
  EXPECT_THAT(d.fired[0].error, HasSubstr("no such key 'tier'"));
  ASSERT_EQ(d.fired[0].values.size(), 1u);
  EXPECT_EQ(d.fired[0].values[0].field, "attributes.tier");
  EXPECT_TRUE(d.fired[0].values[0].value.has_null_value());

  // CEL's heterogeneous equality: a number is simply not equal to "gold" (no error).
  d = Evaluate(matrix, With("attributes { fields { key: 'tier' value { number_value: 3 } } }"),
               clock.Now());
  EXPECT_EQ(d.verdict, v1::VERDICT_ALLOW);
  EXPECT_TRUE(d.fired.empty());
}

}  // namespace
}  // namespace agate::engine

namespace agate::engine {
namespace {

// Triggers pinned to an action type are only evaluated for that type; the others always, and
// `fired` stays in matrix order across both.
TEST(EvaluatorTest, TheActionTypeIndexKeepsMatrixOrderAndSemantics) {
  std::shared_ptr<const Matrix> m = Parse(R"yaml(
version: idx
lanes:
  a: {owner: o1, backup: b1, sla: 1h, verdict: HOLD, on_timeout: notify_backup,
      evidence: [x], agent_action: hold, operator_action: look}
  b: {owner: o2, backup: b2, sla: 1h, verdict: BLOCK, on_timeout: expire,
      evidence: [x], agent_action: block, operator_action: look}
triggers:
  - {id: any-critical, lane: a, when: action.critical}
  - {id: refund-big, lane: b, when: 'action.type == "refund" && action.amount > 10.0'}
  - {id: any-irreversible, lane: a, when: action.irreversible}
  - {id: credit-or-refund, lane: a, when: 'action.type in ["credit", "refund"] && action.critical'}
  - {id: refund-missing-attr, lane: a, when: 'action.type == "refund" && attributes.x > 1.0'}
)yaml");
  ASSERT_EQ(m->UnindexedTriggers(), (std::vector<int>{0, 2}));
  EXPECT_EQ(m->TriggersForActionType("refund"), (std::vector<int>{1, 3, 4}));
  EXPECT_EQ(m->TriggersForActionType("credit"), (std::vector<int>{3}));
  EXPECT_TRUE(m->TriggersForActionType("send_reply").empty());
  FakeClock clock;
  const std::shared_ptr<const Matrix> matrix = m;
  Decision d = Evaluate(
      matrix, With("action { type: 'refund' amount: 20 critical: true irreversible: true }"),
      clock.Now());
  // refund-missing-attr fails at run time (no attributes.x) and fires: fail closed.
  EXPECT_THAT(FiredIds(d), ElementsAre("any-critical", "refund-big", "any-irreversible",
                                       "credit-or-refund", "refund-missing-attr"));
  // Another type: the indexed triggers cannot fire, not even by failing.
  d = Evaluate(matrix, With("action { type: 'send_reply' amount: 20 critical: true }"),
               clock.Now());
  EXPECT_THAT(FiredIds(d), ElementsAre("any-critical"));
}

}  // namespace
}  // namespace agate::engine
