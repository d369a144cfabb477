// The escalation lifecycle in virtual time: cases, acknowledgement, redemption, scopes in force,
// SLA timeouts, watchers, listing and statistics, on the bundled matrix.
#include "cases/case_store.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cases/decider.h"
#include "common/clock.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fixtures.h"

namespace agate::cases {
namespace {

using engine::Request;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::kAllow;
using testing::kBlock;
using testing::kDeny;
using testing::kHold;
using testing::kRetries;
using ::testing::SizeIs;

Request Make(absl::string_view id, absl::string_view fields) {
  return testing::MakeRequest(id, fields);
}

class CaseStoreTest : public ::testing::Test {
 protected:
  CaseStoreTest() : CaseStoreTest(CaseStoreOptions{}) {}
  explicit CaseStoreTest(CaseStoreOptions options)
      : matrix_(testing::BundledMatrix()),
        decider_(*Decider::Create(matrix_, clock_, {.cases = options})),
        store_(decider_->cases()) {}

  absl::StatusOr<v1::EvaluateResponse> TryDecide(const Request& request) {
    return testing::DecideAndEncode(*decider_, request);
  }
  v1::EvaluateResponse Decide(const Request& request) {
    absl::StatusOr<v1::EvaluateResponse> r = TryDecide(request);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(v1::EvaluateResponse());
  }
  absl::StatusOr<v1::Case> Ack(const std::string& id, v1::Decision decision,
                               const std::string& approver) {
    return store_.Acknowledge(
        {.case_id = id, .decision = decision, .actor = Actor::Unverified(approver)});
  }
  v1::Case Get(const std::string& id) {
    absl::StatusOr<v1::Case> c = store_.Get(id);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.value_or(v1::Case());
  }

  FakeClock clock_;
  std::shared_ptr<const engine::Matrix> matrix_;
  std::unique_ptr<Decider> decider_;
  CaseStore& store_;
};

TEST_F(CaseStoreTest, AllowOpensNoCase) {
  const v1::EvaluateResponse r = Decide(Make("r1", kAllow));
  EXPECT_EQ(r.verdict(), v1::VERDICT_ALLOW);
  EXPECT_THAT(r.case_id(), IsEmpty());
  EXPECT_EQ(store_.open_cases(), 0u);
}

TEST_F(CaseStoreTest, HoldOpensAnOwnedTimedCase) {
  const v1::EvaluateResponse r = Decide(Make("r1", kHold));
  ASSERT_EQ(r.verdict(), v1::VERDICT_HOLD);
  ASSERT_THAT(r.case_id(), HasSubstr("case_"));
  EXPECT_THAT(r.case_ids(), ElementsAre(r.case_id()));
  const v1::Case c = Get(r.case_id());
  EXPECT_EQ(c.lane(), "customer");
  EXPECT_EQ(c.verdict(), v1::VERDICT_HOLD);
  EXPECT_EQ(c.state(), v1::CASE_STATE_OPEN);
  EXPECT_EQ(c.scope(), v1::SCOPE_ITEM);
  EXPECT_EQ(c.scope_key(), "t1/refunds/i1");
  EXPECT_EQ(c.owner(), "support-lead");
  EXPECT_EQ(c.backup(), "support-manager");
  EXPECT_EQ(c.current_owner(), "support-lead");
  EXPECT_EQ(c.sla_deadline().seconds() - c.opened_at().seconds(), 30 * 60);
  EXPECT_EQ(c.on_timeout(), v1::TIMEOUT_BEHAVIOR_NOTIFY_BACKUP);
  EXPECT_EQ(c.matrix_version(), "1");
  EXPECT_THAT(c.action_fingerprint(), SizeIs(64));
  EXPECT_THAT(c.request_ids(), ElementsAre("r1"));
  ASSERT_THAT(c.fired(), SizeIs(1));
  EXPECT_EQ(c.fired(0).trigger_id(), "low-confidence-customer-facing");
  EXPECT_THAT(c.evidence().rules(), ElementsAre(HasSubstr("model.confidence < 0.72")));
  EXPECT_THAT(c.evidence().proposed_action(), HasSubstr("send_reply"));
  ASSERT_THAT(c.history(), SizeIs(1));
  EXPECT_EQ(c.history(0).event(), "opened");
  EXPECT_EQ(store_.open_cases(), 1u);
}

TEST_F(CaseStoreTest, SameLaneAndScopeKeyJoinsTheOpenCase) {
  const std::string first = Decide(Make("r1", kHold)).case_id();
  Request again = Make("r2", kHold);
  (*again.mutable_evidence())["original_input"] = "where is my refund?";
  (*again.mutable_evidence())["log"] = "https://logs.example/r2";
  const v1::EvaluateResponse joined = Decide(again);
  EXPECT_EQ(joined.case_id(), first);
  const v1::Case c = Get(first);
  EXPECT_THAT(c.request_ids(), ElementsAre("r1", "r2"));
  EXPECT_THAT(c.fired(), SizeIs(2));
  EXPECT_EQ(c.evidence().original_input(), "where is my refund?");
  EXPECT_THAT(c.evidence().links(), ElementsAre("https://logs.example/r2"));
  EXPECT_THAT(c.evidence().recent_history(), ElementsAre(HasSubstr("r2"), HasSubstr("r1")));
  EXPECT_EQ(c.history(1).event(), "joined");
  EXPECT_EQ(store_.open_cases(), 1u);

  // Another item is another case.
  Request other = Make("r3", kHold);
  other.set_item_id("i2");
  EXPECT_NE(Decide(other).case_id(), first);
  EXPECT_EQ(store_.open_cases(), 2u);
}

TEST_F(CaseStoreTest, EveryFiredLaneOpensItsCaseAndTheWinnerIsReported) {
  const v1::EvaluateResponse r = Decide(
      Make("r1",
           "action { type: 'refund' amount: 300 customer_facing: true target_tenant_id: 't2' } "
           "actor { credential_id: 'key-1' } model { confidence: 0.5 }"));
  ASSERT_EQ(r.verdict(), v1::VERDICT_DENY);
  ASSERT_THAT(r.case_ids(), SizeIs(3));  // customer, security, financial
  EXPECT_EQ(Get(r.case_id()).lane(), "security");
  EXPECT_EQ(Get(r.case_id()).scope_key(), "t1/key-1");
  std::vector<std::string> lanes;
  for (const std::string& id : r.case_ids()) lanes.push_back(Get(id).lane());
  EXPECT_THAT(lanes, ElementsAre("customer", "security", "financial"));
}

TEST_F(CaseStoreTest, GetListAndWatchRefuseBadIdsAndFiltersNamingTheField) {
  const std::string huge(900'000, 'x');
  absl::Status get = store_.Get(huge).status();
  EXPECT_EQ(get.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(get.message(), "case_id: longer than 256 bytes (900000)");  // not echoed
  EXPECT_EQ(store_.Get("").status().message(), "case_id: required");

  struct Case {
    v1::ListCasesRequest request;
    std::string message;
  } cases[5];
  cases[0].request.set_state(static_cast<v1::CaseState>(99));
  cases[0].message = "state: unknown case state 99";
  cases[1].request.set_lane(huge);
  cases[1].message = "lane: longer than 256 bytes";
  cases[2].request.set_tenant_id(huge);
  cases[2].message = "tenant_id: longer than 256 bytes";
  cases[3].request.set_owner(huge);
  cases[3].message = "owner: longer than 256 bytes";
  cases[4].request.set_page_token(huge);
  cases[4].message = "page_token: longer than 256 bytes";
  for (const Case& c : cases) {
    absl::Status status = store_.List(c.request).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(status.message(), HasSubstr(c.message));
    EXPECT_LT(status.message().size(), 100u);
  }
  v1::ListCasesRequest open;
  open.set_state(v1::CASE_STATE_OPEN);
  EXPECT_TRUE(store_.List(open).ok());

  v1::WatchCasesRequest watch;
  EXPECT_TRUE(CaseStore::CheckWatchFilter(watch).ok());
  watch.set_tenant_id(huge);
  EXPECT_THAT(CaseStore::CheckWatchFilter(watch).message(),
              HasSubstr("tenant_id: longer than 256 bytes"));
  watch.clear_tenant_id();
  for (const auto& [seconds, nanos] : std::vector<std::pair<int64_t, int32_t>>{
           {-1, 0}, {0, -5}, {10, 1}, {11, 0}, {0, 1'000'000'000}}) {
    watch.mutable_batch_window()->set_seconds(seconds);
    watch.mutable_batch_window()->set_nanos(nanos);
    EXPECT_THAT(CaseStore::CheckWatchFilter(watch).message(),
                HasSubstr("batch_window: must be between 0 and 10s"))
        << seconds << "s " << nanos << "ns";
  }
  watch.mutable_batch_window()->set_seconds(10);
  watch.mutable_batch_window()->set_nanos(0);
  EXPECT_TRUE(CaseStore::CheckWatchFilter(watch).ok());
  watch.set_view(static_cast<v1::CaseView>(7));
  EXPECT_THAT(CaseStore::CheckWatchFilter(watch).message(), HasSubstr("view: 7 is not a CaseView"));
  watch.set_view(v1::CASE_VIEW_SUMMARY);
  EXPECT_TRUE(CaseStore::CheckWatchFilter(watch).ok());
}

TEST_F(CaseStoreTest, AcknowledgeRejectsBadInputWithTheField) {
  const std::string id = Decide(Make("r1", kHold)).case_id();
  struct Case {
    Acknowledgement ack;
    absl::StatusCode code;
    std::string message;
  } cases[] = {
      {{"", v1::DECISION_APPROVE, Actor::Unverified("support-lead"), ""},
       absl::StatusCode::kInvalidArgument,
       "case_id: required"},
      {{id, v1::DECISION_UNSPECIFIED, Actor::Unverified("support-lead"), ""},
       absl::StatusCode::kInvalidArgument,
       "decision: required"},
      {{id, v1::DECISION_APPROVE, Actor::Unverified(""), ""},
       absl::StatusCode::kInvalidArgument,
       "approver: required"},
      {{id, v1::DECISION_APPROVE, Actor::Unverified(std::string(300, 'a')), ""},
       absl::StatusCode::kInvalidArgument,
       "approver: longer than 256 bytes"},
      {{id, v1::DECISION_APPROVE, Actor::Unverified("support-lead"), std::string(5000, 'c')},
       absl::StatusCode::kInvalidArgument,
       "comment: longer than 4096 bytes"},
      {{"case_nope", v1::DECISION_APPROVE, Actor::Unverified("support-lead"), ""},
       absl::StatusCode::kNotFound,
       "case case_nope not found"},
      {{std::string(900'000, 'x'), v1::DECISION_APPROVE, Actor::Unverified("support-lead"), ""},
       absl::StatusCode::kInvalidArgument,
       "case_id: longer than 256 bytes (900000)"},
      {{id, v1::DECISION_APPROVE, Actor::Unverified("mallory"), ""},
       absl::StatusCode::kPermissionDenied,
       "only support-lead, support-manager may"},
      // The fallback may act only on route_to_fallback lanes (customer is notify_backup).
      {{id, v1::DECISION_APPROVE, Actor::Unverified("business-owner"), ""},
       absl::StatusCode::kPermissionDenied,
       "approver business-owner may not act"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<v1::Case> result = store_.Acknowledge(c.ack);
    EXPECT_EQ(result.status().code(), c.code) << c.message << ": " << result.status();
    EXPECT_THAT(result.status().message(), HasSubstr(c.message));
  }
  EXPECT_EQ(Get(id).state(), v1::CASE_STATE_OPEN);  // nothing changed
}

TEST_F(CaseStoreTest, OwnerOrBackupAcknowledgesOnceAndTheCaseCloses) {
  const std::string a = Decide(Make("r1", kHold)).case_id();
  absl::StatusOr<v1::Case> approved =
      store_.Acknowledge({.case_id = a,
                          .decision = v1::DECISION_APPROVE,
                          .actor = Actor::Unverified("support-lead"),
                          .comment = "fine"});
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->state(), v1::CASE_STATE_APPROVED);
  EXPECT_EQ(approved->history().rbegin()->actor(), "support-lead");
  EXPECT_EQ(approved->history().rbegin()->comment(), "fine");
  EXPECT_EQ(store_.open_cases(), 0u);
  absl::StatusOr<v1::Case> again = Ack(a, v1::DECISION_REJECT, "support-lead");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("is APPROVED, not OPEN"));

  // The backup may act too; a new request on the same item opens a new case.
  Request r2 = Make("r2", kHold);
  const std::string b = Decide(r2).case_id();
  EXPECT_NE(b, a);
  EXPECT_EQ(Ack(b, v1::DECISION_REJECT, "support-manager")->state(), v1::CASE_STATE_REJECTED);
}

TEST_F(CaseStoreTest, FallbackMayActOnRouteToFallbackLanes) {
  const std::string id =
      Decide(Make("r1",
                  "action { type: 'discount' } attributes { fields { key: 'discount_pct' "
                  "value { number_value: 35 } } } model { confidence: 0.9 }"))
          .case_id();
  ASSERT_EQ(Get(id).lane(), "policy");
  EXPECT_EQ(Ack(id, v1::DECISION_RESOLVE, "business-owner")->state(), v1::CASE_STATE_RESOLVED);
}

TEST_F(CaseStoreTest, DenyCasesCannotBeApproved) {
  const std::string id = Decide(Make("r1", kDeny)).case_id();
  absl::StatusOr<v1::Case> r = Ack(id, v1::DECISION_APPROVE, "security-oncall");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("no approval turns DENY into ALLOW"));
  EXPECT_EQ(Ack(id, v1::DECISION_REJECT, "security-oncall")->state(), v1::CASE_STATE_REJECTED);
}

TEST_F(CaseStoreTest, AnApprovedBlockIsRedeemedExactlyOnce) {
  const std::string id = Decide(Make("r1", kBlock)).case_id();
  ASSERT_TRUE(Ack(id, v1::DECISION_APPROVE, "finance-approver").ok());

  Request redeem = Make("r2", kBlock);
  redeem.mutable_approval()->set_case_id(id);
  const v1::EvaluateResponse first = Decide(redeem);
  EXPECT_EQ(first.verdict(), v1::VERDICT_ALLOW);
  EXPECT_EQ(first.case_id(), id);
  EXPECT_THAT(first.reason(), HasSubstr("approved by finance-approver"));
  EXPECT_TRUE(Get(id).redeemed());
  EXPECT_EQ(Get(id).history().rbegin()->event(), "redeemed");

  redeem.set_request_id("r3");
  const v1::EvaluateResponse second = Decide(redeem);
  EXPECT_EQ(second.verdict(), v1::VERDICT_BLOCK);
  EXPECT_THAT(second.reason(), HasSubstr("already redeemed"));
  EXPECT_NE(second.case_id(), id);  // a new case for the new attempt
}

// tests/testdata/matrices/fingerprint.yaml binds approvals to the type, the amount and the
// invoice, not the target.
TEST(FingerprintCaseStoreTest, AnApprovalRedeemsOnlyTheActionItsLaneFingerprints) {
  FakeClock clock;
  std::unique_ptr<Decider> decider = *Decider::Create(
      testing::LoadMatrixOrFail(testing::TestMatrixPath("fingerprint.yaml")), clock, {});
  auto make = [](const std::string& id, const std::string& invoice, const std::string& trace) {
    return testing::MakeRequest(
        id,
        absl::StrCat("action { type: 'refund' amount: 300 target: 'order-", id,
                     "' } attributes { fields { key: 'invoice_id' value { string_value: '", invoice,
                     "' } } fields { key: 'trace_id' value { string_value: '", trace, "' } } }"));
  };
  const v1::EvaluateResponse opened =
      *testing::DecideAndEncode(*decider, make("r1", "inv-1", "x1"));
  ASSERT_EQ(opened.verdict(), v1::VERDICT_BLOCK);
  const std::string id = opened.case_id();
  ASSERT_TRUE(decider->cases()
                  .Acknowledge({.case_id = id,
                                .decision = v1::DECISION_APPROVE,
                                .actor = Actor::Unverified("finance-approver")})
                  .ok());
  // Another invoice: not the approved action.
  Request other = make("r2", "inv-2", "x1");
  other.mutable_approval()->set_case_id(id);
  const v1::EvaluateResponse refused = *testing::DecideAndEncode(*decider, other);
  EXPECT_EQ(refused.verdict(), v1::VERDICT_BLOCK);
  EXPECT_THAT(refused.reason(), HasSubstr("the action differs from the approved one"));
  // The same invoice, another target and trace id (neither fingerprinted): redeemed.
  Request retry = make("r3", "inv-1", "x2");
  retry.mutable_approval()->set_case_id(id);
  const v1::EvaluateResponse redeemed = *testing::DecideAndEncode(*decider, retry);
  EXPECT_EQ(redeemed.verdict(), v1::VERDICT_ALLOW);
  EXPECT_EQ(redeemed.case_id(), id);
}

TEST(OwnerLoadCaseStoreTest, PastTheOwnersBoundNewCasesGoToTheBackupAndStatsShowTheLoad) {
  FakeClock clock;
  std::unique_ptr<Decider> decider = *Decider::Create(
      testing::LoadMatrixOrFail(testing::TestMatrixPath("fatigue.yaml")), clock, {});
  CaseStore& store = decider->cases();
  auto open = [&](int i, const std::string& tenant = "t1") {
    Request r = testing::MakeRequest(absl::StrCat("r", i), "action { type: 'refund' amount: 300 }");
    r.set_tenant_id(tenant);
    r.set_item_id(absl::StrCat("i", i));
    return *store.Get(testing::DecideAndEncode(*decider, r)->case_id());
  };
  const v1::Case first = open(1);
  EXPECT_EQ(first.current_owner(), "finance-approver");
  clock.Advance(absl::Minutes(10));
  EXPECT_EQ(open(2).current_owner(), "finance-approver");
  clock.Advance(absl::Minutes(10));
  const v1::Case third = open(3);
  EXPECT_EQ(third.current_owner(), "controller");
  EXPECT_EQ(third.owner(), "finance-approver");
  EXPECT_THAT(third.history(0).comment(),
              HasSubstr("routed to the backup controller: finance-approver holds 2 open cases "
                        "(max_open_per_owner 2)"));
  // Another tenant's finance-approver is another person: its own count.
  EXPECT_EQ(open(4, "t2").current_owner(), "finance-approver");

  clock.Advance(absl::Minutes(10));
  v1::GetStatsResponse stats;
  store.OwnerLoads(TenantScope::All(), &stats);
  ASSERT_THAT(stats.owners(), SizeIs(3));
  EXPECT_EQ(stats.owners(0).owner(), "controller");
  EXPECT_EQ(stats.owners(0).open(), 1u);
  EXPECT_EQ(stats.owners(0).median_age().seconds(), 10 * 60);
  EXPECT_EQ(stats.owners(1).owner(), "finance-approver");
  EXPECT_EQ(stats.owners(1).tenant_id(), "t1");
  EXPECT_EQ(stats.owners(1).open(), 2u);
  EXPECT_EQ(stats.owners(1).median_age().seconds(), 25 * 60);  // opened 30 and 20 minutes ago
  EXPECT_EQ(stats.owners(1).oldest_age().seconds(), 30 * 60);
  EXPECT_EQ(stats.owners(2).tenant_id(), "t2");

  // A tenant-scoped caller sees its tenants only.
  v1::GetStatsResponse t2;
  store.OwnerLoads(TenantScope::Only({"t2"}), &t2);
  ASSERT_THAT(t2.owners(), SizeIs(1));
  EXPECT_EQ(t2.owners(0).tenant_id(), "t2");

  // Closing one of finance-approver's cases frees a place: the next case is theirs again.
  ASSERT_TRUE(store
                  .Acknowledge({.case_id = first.id(),
                                .decision = v1::DECISION_REJECT,
                                .actor = Actor::Unverified("finance-approver")})
                  .ok());
  EXPECT_EQ(open(5).current_owner(), "finance-approver");
  // A timeout that hands a case to the backup moves its load too.
  clock.Advance(absl::Hours(4));
  store.RunDueTimers();
  v1::GetStatsResponse after;
  store.OwnerLoads(TenantScope::All(), &after);
  for (const v1::OwnerLoad& o : after.owners()) {
    if (o.tenant_id() == "t1") {
      EXPECT_EQ(o.owner(), "controller") << o.ShortDebugString();
    }
  }
}

TEST_F(CaseStoreTest, RedemptionNeedsTheSameTenantAndActionAndAnApproval) {
  const std::string id = Decide(Make("r1", kBlock)).case_id();
  Request early = Make("r2", kBlock);
  early.mutable_approval()->set_case_id(id);
  EXPECT_THAT(Decide(early).reason(), HasSubstr("the case is OPEN, not APPROVED"));
  ASSERT_TRUE(Ack(id, v1::DECISION_APPROVE, "finance-approver").ok());

  struct Attempt {
    std::string name;
    Request request;
    std::string reason;
  } attempts[] = {
      {"changed amount",
       Make("r3", "action { type: 'refund' amount: 301 } model { confidence: 0.95 }"),
       "the action differs from the approved one"},
      {"another tenant",
       testing::ParseRequest("request_id: 'r4' tenant_id: 't9' workflow_id: 'refunds' "
                             "item_id: 'i1' action { type: 'refund' amount: 300 }"),
       "the case belongs to another tenant"},
      {"a lane the approval does not cover",
       Make("r5", "action { type: 'refund' amount: 300 } model { sentiment: 'hostile' }"),
       "trigger hostile-or-legal-risk fired (lane customer), which the approval does not "
       "cover"},
      {"unknown case", Make("r6", kBlock), "no such case"},
  };
  for (Attempt& a : attempts) {
    a.request.mutable_approval()->set_case_id(a.name == "unknown case" ? "case_x" : id);
    const v1::EvaluateResponse r = Decide(a.request);
    EXPECT_NE(r.verdict(), v1::VERDICT_ALLOW) << a.name;
    EXPECT_THAT(r.reason(), HasSubstr(a.reason)) << a.name;
  }
  EXPECT_FALSE(Get(id).redeemed());
  // The untouched approval still works for the approved action.
  Request good = Make("r7", kBlock);
  good.mutable_approval()->set_case_id(id);
  EXPECT_EQ(Decide(good).verdict(), v1::VERDICT_ALLOW);
}

TEST_F(CaseStoreTest, RedemptionNeedsEveryCaseTheActionOpenedApproved) {
  constexpr char kTwoLanes[] =
      "action { type: 'refund' amount: 300 customer_facing: true } model { confidence: 0.5 }";
  const v1::EvaluateResponse r = Decide(Make("r1", kTwoLanes));
  ASSERT_THAT(r.case_ids(), SizeIs(2));  // customer (HOLD) and financial (BLOCK)
  const std::string customer = r.case_ids(0);
  const std::string financial = r.case_ids(1);
  ASSERT_TRUE(Ack(financial, v1::DECISION_APPROVE, "finance-approver").ok());
  Request redeem = Make("r2", kTwoLanes);
  redeem.mutable_approval()->set_case_id(financial);
  EXPECT_THAT(Decide(redeem).reason(), HasSubstr(absl::StrCat("case ", customer)));
  ASSERT_TRUE(Ack(customer, v1::DECISION_APPROVE, "support-lead").ok());
  redeem.set_request_id("r3");
  EXPECT_EQ(Decide(redeem).verdict(), v1::VERDICT_ALLOW);
  EXPECT_TRUE(Get(customer).redeemed());
}

TEST_F(CaseStoreTest, DenyCasesAreNeverRedeemable) {
  const std::string id = Decide(Make("r1", kDeny)).case_id();
  ASSERT_TRUE(Ack(id, v1::DECISION_RESOLVE, "security-oncall").ok());
  Request redeem = Make("r2", kDeny);
  redeem.mutable_approval()->set_case_id(id);
  const v1::EvaluateResponse r = Decide(redeem);
  EXPECT_EQ(r.verdict(), v1::VERDICT_DENY);
  EXPECT_THAT(r.reason(), HasSubstr("a DENY case is never redeemable"));
}

TEST_F(CaseStoreTest, SafeModeCaseDegradesNonCriticalActionsOfItsWorkflowUntilAcknowledged) {
  const v1::EvaluateResponse storm = Decide(Make("r1", kRetries));
  ASSERT_EQ(storm.verdict(), v1::VERDICT_SAFE_MODE);
  const std::string id = storm.case_id();
  EXPECT_EQ(Get(id).scope_key(), "t1/refunds");
  // Past the retry window the trigger no longer fires; the open case still holds the workflow.
  clock_.Advance(absl::Minutes(11));

  const v1::EvaluateResponse normal = Decide(Make("r2", kAllow));
  EXPECT_EQ(normal.verdict(), v1::VERDICT_SAFE_MODE);
  EXPECT_EQ(normal.case_id(), id);
  EXPECT_EQ(normal.lane(), "ops");
  EXPECT_EQ(normal.owner(), "ops-oncall");
  EXPECT_THAT(normal.reason(), HasSubstr("is in safe mode"));
  // What the ops lane requires and the request lacks.
  EXPECT_THAT(normal.missing_evidence(), ElementsAre("error_log", "recent_history"));
  Request with_log = Make("r2b", kAllow);
  (*with_log.mutable_evidence())["error_log"] = "https://logs/1";
  EXPECT_THAT(Decide(with_log).missing_evidence(), ElementsAre("recent_history"));

  Request critical = Make("r3", kAllow);
  critical.mutable_action()->set_critical(true);
  EXPECT_EQ(Decide(critical).verdict(), v1::VERDICT_ALLOW);
  Request other_workflow = Make("r4", kAllow);
  other_workflow.set_workflow_id("billing");
  EXPECT_EQ(Decide(other_workflow).verdict(), v1::VERDICT_ALLOW);
  Request other_tenant = Make("r5", kAllow);
  other_tenant.set_tenant_id("t2");
  EXPECT_EQ(Decide(other_tenant).verdict(), v1::VERDICT_ALLOW);

  ASSERT_TRUE(Ack(id, v1::DECISION_RESOLVE, "ops-oncall").ok());
  EXPECT_EQ(Decide(Make("r6", kAllow)).verdict(), v1::VERDICT_ALLOW);
}

TEST_F(CaseStoreTest, TimersWaitForTheDeadline) {
  Decide(Make("r1", kHold));
  clock_.Advance(absl::Minutes(29));
  EXPECT_EQ(store_.RunDueTimers(), 0);
  ASSERT_TRUE(store_.NextDeadline().has_value());
  EXPECT_EQ(*store_.NextDeadline(), clock_.Now() + absl::Minutes(1));
}

TEST_F(CaseStoreTest, NotifyBackupHandsTheCaseToTheBackupWithANewDeadline) {
  const std::string id = Decide(Make("r1", kHold)).case_id();
  clock_.Advance(absl::Minutes(30));
  EXPECT_EQ(store_.RunDueTimers(), 1);
  v1::Case c = Get(id);
  EXPECT_EQ(c.state(), v1::CASE_STATE_OPEN);
  EXPECT_EQ(c.current_owner(), "support-manager");
  EXPECT_EQ(c.history().rbegin()->event(), "timeout:notify_backup");
  EXPECT_EQ(c.sla_deadline().seconds(), absl::ToUnixSeconds(clock_.Now() + absl::Minutes(30)));
  // The backup does not answer either: the case stays open with the backup, overdue.
  clock_.Advance(absl::Minutes(30));
  EXPECT_EQ(store_.RunDueTimers(), 1);
  c = Get(id);
  EXPECT_EQ(c.history().rbegin()->event(), "timeout:overdue");
  EXPECT_EQ(c.current_owner(), "support-manager");
  EXPECT_FALSE(store_.NextDeadline().has_value());
}

TEST_F(CaseStoreTest, RouteToFallbackHandsTheCaseToTheFallback) {
  const std::string id =
      Decide(Make("r1",
                  "action { type: 'discount' } attributes { fields { key: 'discount_pct' "
                  "value { number_value: 35 } } }"))
          .case_id();
  clock_.Advance(absl::Hours(2));
  EXPECT_EQ(store_.RunDueTimers(), 1);
  EXPECT_EQ(Get(id).current_owner(), "business-owner");
  EXPECT_EQ(Get(id).history().rbegin()->event(), "timeout:route_to_fallback");
}

TEST_F(CaseStoreTest, PauseWorkflowHoldsEveryActionOfTheWorkflowEvenCriticalOnes) {
  const std::string id = Decide(Make("r1", kRetries)).case_id();
  clock_.Advance(absl::Minutes(15));
  EXPECT_EQ(store_.RunDueTimers(), 1);
  EXPECT_EQ(Get(id).history().rbegin()->event(), "timeout:pause_workflow");
  Request critical = Make("r2", kAllow);
  critical.mutable_action()->set_critical(true);
  const v1::EvaluateResponse r = Decide(critical);
  EXPECT_EQ(r.verdict(), v1::VERDICT_HOLD);
  EXPECT_THAT(r.reason(), HasSubstr("workflow refunds is paused by case"));
  // Non-critical actions stay in the (more restrictive) safe mode.
  EXPECT_EQ(Decide(Make("r3", kAllow)).verdict(), v1::VERDICT_SAFE_MODE);
  ASSERT_TRUE(Ack(id, v1::DECISION_RESOLVE, "eng-lead").ok());
  critical.set_request_id("r4");
  EXPECT_EQ(Decide(critical).verdict(), v1::VERDICT_ALLOW);
}

TEST_F(CaseStoreTest, DisableCredentialDeniesEveryActionWithTheCredential) {
  const std::string id = Decide(Make("r1", kDeny)).case_id();
  Request harmless = Make("r2", "action { type: 'lookup' } actor { credential_id: 'key-1' }");
  EXPECT_EQ(Decide(harmless).verdict(), v1::VERDICT_ALLOW);  // not before the timeout
  clock_.Advance(absl::Minutes(15));
  EXPECT_EQ(store_.RunDueTimers(), 1);
  EXPECT_EQ(Get(id).history().rbegin()->event(), "timeout:disable_credential");
  harmless.set_request_id("r3");
  const v1::EvaluateResponse r = Decide(harmless);
  EXPECT_EQ(r.verdict(), v1::VERDICT_DENY);
  EXPECT_EQ(r.case_id(), id);
  EXPECT_THAT(r.reason(), HasSubstr("credential key-1 is disabled"));
  Request other_key = Make("r4", "action { type: 'lookup' } actor { credential_id: 'key-2' }");
  EXPECT_EQ(Decide(other_key).verdict(), v1::VERDICT_ALLOW);
  ASSERT_TRUE(Ack(id, v1::DECISION_RESOLVE, "security-lead").ok());
  harmless.set_request_id("r5");
  EXPECT_EQ(Decide(harmless).verdict(), v1::VERDICT_ALLOW);
}

TEST_F(CaseStoreTest, ExpireVoidsTheCaseAndItsApprovalPath) {
  const std::string id = Decide(Make("r1", kBlock)).case_id();
  clock_.Advance(absl::Hours(4));
  EXPECT_EQ(store_.RunDueTimers(), 1);
  const v1::Case c = Get(id);
  EXPECT_EQ(c.state(), v1::CASE_STATE_EXPIRED);
  EXPECT_EQ(c.history().rbegin()->event(), "timeout:expire");
  EXPECT_EQ(store_.open_cases(), 0u);
  EXPECT_EQ(Ack(id, v1::DECISION_APPROVE, "finance-approver").status().code(),
            absl::StatusCode::kFailedPrecondition);
  Request redeem = Make("r2", kBlock);
  redeem.mutable_approval()->set_case_id(id);
  EXPECT_THAT(Decide(redeem).reason(), HasSubstr("the case is EXPIRED"));
}

TEST_F(CaseStoreTest, AcknowledgedCasesDoNotTimeOut) {
  const std::string id = Decide(Make("r1", kBlock)).case_id();
  ASSERT_TRUE(Ack(id, v1::DECISION_REJECT, "controller").ok());
  clock_.Advance(absl::Hours(5));
  EXPECT_EQ(store_.RunDueTimers(), 0);
  EXPECT_EQ(Get(id).state(), v1::CASE_STATE_REJECTED);
}

TEST_F(CaseStoreTest, RetryCountsSlideWithTheWindow) {
  // Three retries spread over time do not fire; the fourth within 10 minutes does.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Decide(Make(absl::StrCat("r", i), "signals { key: 'retry' value: 1 }")).verdict(),
              v1::VERDICT_ALLOW);
    clock_.Advance(absl::Minutes(2));
  }
  const v1::EvaluateResponse fourth = Decide(Make("r3", "signals { key: 'retry' value: 1 }"));
  EXPECT_EQ(fourth.verdict(), v1::VERDICT_SAFE_MODE);
  ASSERT_THAT(fourth.fired(), SizeIs(1));
  ASSERT_THAT(fourth.fired(0).values(), SizeIs(1));
  EXPECT_EQ(fourth.fired(0).values(0).value().number_value(), 4);
  ASSERT_TRUE(Ack(fourth.case_id(), v1::DECISION_RESOLVE, "ops-oncall").ok());
  // Ten minutes later the old retries left the window.
  clock_.Advance(absl::Minutes(10));
  EXPECT_EQ(Decide(Make("r4", "signals { key: 'retry' value: 1 }")).verdict(), v1::VERDICT_ALLOW);
}

TEST_F(CaseStoreTest, WatchersSeeEveryTransitionInOrder) {
  int notified = 0;
  std::shared_ptr<CaseWatcher> all = store_.Watch({}, TenantScope::All(), [&] { ++notified; });
  v1::WatchCasesRequest only_ops;
  only_ops.set_lane("ops");
  std::shared_ptr<CaseWatcher> ops = store_.Watch(only_ops, TenantScope::All(), nullptr);
  const std::string id = Decide(Make("r1", kHold)).case_id();
  ASSERT_TRUE(Ack(id, v1::DECISION_APPROVE, "support-lead").ok());
  WatchedEvent w1, w2, none;
  ASSERT_TRUE(all->Next(&w1));
  ASSERT_TRUE(all->Next(&w2));
  EXPECT_FALSE(all->Next(&none));
  const v1::CaseEvent e1 = w1.Parse(), e2 = w2.Parse();
  EXPECT_EQ(notified, 1);  // the second event found the first one still buffered
  EXPECT_EQ(e1.transition().event(), "opened");
  EXPECT_EQ(e1.case_().id(), id);
  EXPECT_EQ(e2.transition().event(), "approved");
  EXPECT_EQ(e2.case_().state(), v1::CASE_STATE_APPROVED);
  EXPECT_EQ(e2.sequence(), e1.sequence() + 1);
  EXPECT_FALSE(ops->Next(&none));  // filtered out
  store_.Unwatch(all);
  store_.Unwatch(ops);
  EXPECT_EQ(store_.watchers(), 0u);
  Decide(Make("r2", kDeny));
  EXPECT_FALSE(all->Next(&none));
}

TEST_F(CaseStoreTest, ABatchIsOneMessageOfEveryBufferedEventInOrderWithinItsBound) {
  int notified = 0;
  std::shared_ptr<CaseWatcher> w = store_.Watch({}, TenantScope::All(), [&] { ++notified; });
  std::string message;
  EXPECT_EQ(w->NextMessage(/*batch=*/true, 1 << 20, &message), 0u);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    Request r = Make(absl::StrCat("r", i), kHold);
    r.set_item_id(absl::StrCat("i", i));
    ids.push_back(Decide(r).case_id());
  }
  EXPECT_EQ(notified, 1);
  // Not a batch: one event.
  ASSERT_EQ(w->NextMessage(/*batch=*/false, 1 << 20, &message), 1u);
  v1::CaseEvent first;
  ASSERT_TRUE(first.ParseFromString(message));
  EXPECT_EQ(first.case_().id(), ids[0]);
  EXPECT_EQ(first.more_size(), 0);
  // A batch: the other three, the first at the top and two in `more`, sequences in order.
  ASSERT_EQ(w->NextMessage(/*batch=*/true, 1 << 20, &message), 3u);
  v1::CaseEvent batch;
  ASSERT_TRUE(batch.ParseFromString(message));
  EXPECT_EQ(batch.case_().id(), ids[1]);
  EXPECT_EQ(batch.sequence(), first.sequence() + 1);
  ASSERT_EQ(batch.more_size(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(batch.more(i).case_().id(), ids[i + 2]);
    EXPECT_EQ(batch.more(i).sequence(), first.sequence() + 2 + i);
    EXPECT_EQ(batch.more(i).more_size(), 0);
  }
  EXPECT_TRUE(w->empty());
  // A bound smaller than two events: the first goes alone, whatever its size.
  for (int i = 4; i < 6; ++i) {
    Request r = Make(absl::StrCat("r", i), kHold);
    r.set_item_id(absl::StrCat("i", i));
    Decide(r);
  }
  EXPECT_EQ(notified, 2);
  ASSERT_EQ(w->NextMessage(/*batch=*/true, 10, &message), 1u);
  ASSERT_EQ(w->NextMessage(/*batch=*/true, 10, &message), 1u);
  EXPECT_TRUE(w->empty());
  store_.Unwatch(w);
}

class SmallCaseStoreTest : public CaseStoreTest {
 protected:
  SmallCaseStoreTest()
      : CaseStoreTest(CaseStoreOptions{
            .max_open_cases = 3, .max_closed_cases = 2, .watcher = {.max_events = 2}}) {}
};

TEST_F(SmallCaseStoreTest, ASlowWatcherLosesEventsAndIsToldHowMany) {
  std::shared_ptr<CaseWatcher> slow = store_.Watch({}, TenantScope::All(), nullptr);
  for (int i = 0; i < 3; ++i) {
    Request r = Make(absl::StrCat("r", i), kHold);
    r.set_item_id(absl::StrCat("i", i));
    Decide(r);
  }
  WatchedEvent e;
  ASSERT_TRUE(slow->Next(&e));
  EXPECT_EQ(e.dropped, 0u);
  ASSERT_TRUE(slow->Next(&e));
  EXPECT_FALSE(slow->Next(&e));
  EXPECT_EQ(slow->dropped_total(), 1u);
  const v1::Case c = Get(Decide(Make("r9", kHold)).case_id());  // joins i1's case... or opens
  ASSERT_TRUE(slow->Next(&e));
  EXPECT_EQ(e.dropped, 1u);
  v1::CaseEvent parsed;
  ASSERT_TRUE(parsed.ParseFromString(e.Serialized()));
  EXPECT_EQ(parsed.dropped(), 1u);
  EXPECT_EQ(parsed.case_().id(), c.id());
}

TEST_F(SmallCaseStoreTest, InABatchEachEventCarriesItsOwnDroppedCount) {
  std::shared_ptr<CaseWatcher> slow = store_.Watch({}, TenantScope::All(), nullptr);
  for (int i = 0; i < 3; ++i) {  // the third is dropped
    Request r = Make(absl::StrCat("r", i), kHold);
    r.set_item_id(absl::StrCat("i", i));
    Decide(r);
  }
  std::string message;
  ASSERT_EQ(slow->NextMessage(/*batch=*/false, 1 << 20, &message), 1u);
  Request r = Make("r3", kHold);  // buffered behind the second, told of the third
  r.set_item_id("i0");
  Decide(r);
  ASSERT_EQ(slow->NextMessage(/*batch=*/true, 1 << 20, &message), 2u);
  v1::CaseEvent batch;
  ASSERT_TRUE(batch.ParseFromString(message));
  EXPECT_EQ(batch.dropped(), 0u);
  ASSERT_EQ(batch.more_size(), 1);
  EXPECT_EQ(batch.more(0).dropped(), 1u);
  EXPECT_EQ(batch.more(0).sequence(), batch.sequence() + 2);
}

TEST_F(SmallCaseStoreTest, AFullStoreRefusesNewCasesButNotJoins) {
  for (int i = 0; i < 3; ++i) {
    Request r = Make(absl::StrCat("r", i), kHold);
    r.set_item_id(absl::StrCat("i", i));
    Decide(r);
  }
  Request fourth = Make("r3", kHold);
  fourth.set_item_id("i3");
  absl::StatusOr<v1::EvaluateResponse> refused = TryDecide(fourth);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("3 cases are open"));
  Request join = Make("r4", kHold);
  join.set_item_id("i0");
  EXPECT_TRUE(TryDecide(join).ok());
  EXPECT_EQ(store_.open_cases(), 3u);
  EXPECT_EQ(Decide(Make("r5", kAllow)).verdict(), v1::VERDICT_ALLOW);
}

TEST_F(SmallCaseStoreTest, OnlyTheNewestClosedCasesAreKept) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    Request r = Make(absl::StrCat("r", i), kHold);
    r.set_item_id(absl::StrCat("i", i));
    ids.push_back(Decide(r).case_id());
    ASSERT_TRUE(Ack(ids.back(), v1::DECISION_REJECT, "support-lead").ok());
  }
  EXPECT_EQ(store_.Get(ids[0]).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_.Get(ids[1]).ok());
  EXPECT_TRUE(store_.Get(ids[2]).ok());
}

// Closed cases are also bounded by their size: a case many requests joined is large, and a
// count alone would let them take gigabytes (a 30-minute soak grew 6 MB a minute).
class ByteBoundedCaseStoreTest : public CaseStoreTest {
 protected:
  static constexpr size_t kBound = 70'000;
  ByteBoundedCaseStoreTest() : CaseStoreTest(CaseStoreOptions{.max_closed_case_bytes = kBound}) {}

  // A closed HOLD case on item that `joins` requests joined.
  std::string ClosedCase(const std::string& item, int joins) {
    std::string id;
    for (int j = 0; j <= joins; ++j) {
      Request r = Make(absl::StrCat(item, "-r", j), kHold);
      r.set_item_id(item);
      id = Decide(r).case_id();
    }
    EXPECT_TRUE(Ack(id, v1::DECISION_REJECT, "support-lead").ok());
    return id;
  }
};

TEST_F(ByteBoundedCaseStoreTest, TheOldestClosedCasesGoPastTheByteBound) {
  const std::string big = ClosedCase("big", 60);
  ASSERT_TRUE(store_.Get(big).ok());  // the newest closed case is kept, whatever its size
  const size_t big_bytes = store_.Get(big)->SpaceUsedLong();
  ASSERT_GT(big_bytes, kBound / 2) << "the test needs a case over half the bound";
  ASSERT_LT(big_bytes, kBound * 3 / 4) << "and room beside one of them";

  const std::string second = ClosedCase("second", 60);  // together past the bound
  EXPECT_EQ(store_.Get(big).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_.Get(second).ok());

  std::vector<std::string> small;
  // A few small ones (about 2.5 KB each) fit beside it.
  for (int i = 0; i < 3; ++i) small.push_back(ClosedCase(absl::StrCat("small", i), 0));

  for (const std::string& id : small) EXPECT_TRUE(store_.Get(id).ok()) << id;
  EXPECT_TRUE(store_.Get(second).ok());
  EXPECT_EQ(store_.open_cases(), 0u);
}

TEST_F(CaseStoreTest, ListFiltersAndPagesNewestFirst) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    Request r = Make(absl::StrCat("r", i), kHold);
    r.set_item_id(absl::StrCat("i", i));
    ids.push_back(Decide(r).case_id());
  }
  const std::string deny = Decide(Make("r9", kDeny)).case_id();
  ASSERT_TRUE(Ack(ids[0], v1::DECISION_REJECT, "support-lead").ok());

  v1::ListCasesRequest request;
  request.set_lane("customer");
  request.set_state(v1::CASE_STATE_OPEN);
  request.set_page_size(3);
  absl::StatusOr<v1::ListCasesResponse> page = store_.List(request);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_THAT(page->cases(), SizeIs(3));
  EXPECT_EQ(page->cases(0).id(), ids[4]);
  EXPECT_EQ(page->cases(2).id(), ids[2]);
  ASSERT_FALSE(page->next_page_token().empty());
  request.set_page_token(page->next_page_token());
  page = store_.List(request);
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->cases(), SizeIs(1));
  EXPECT_EQ(page->cases(0).id(), ids[1]);
  EXPECT_THAT(page->next_page_token(), IsEmpty());

  v1::ListCasesRequest by_owner;
  by_owner.set_owner("security-lead");
  page = store_.List(by_owner);
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->cases(), SizeIs(1));
  EXPECT_EQ(page->cases(0).id(), deny);
  v1::ListCasesRequest by_tenant;
  by_tenant.set_tenant_id("t2");
  EXPECT_THAT(store_.List(by_tenant)->cases(), IsEmpty());

  v1::ListCasesRequest bad;
  bad.set_page_size(5000);
  EXPECT_THAT(store_.List(bad).status().message(), HasSubstr("page_size: must be in [0, 1000]"));
  bad.set_page_size(-1);
  EXPECT_EQ(store_.List(bad).status().code(), absl::StatusCode::kInvalidArgument);
  v1::ListCasesRequest bad_token;
  bad_token.set_page_token("garbage");
  EXPECT_THAT(store_.List(bad_token).status().message(), HasSubstr("page_token:"));
}

// The index answers every combination of state, lane and tenant, and follows a case that closes.
TEST_F(CaseStoreTest, ListReadsTheIndexOfEveryFilterCombination) {
  std::vector<std::string> t1, t2;
  for (int i = 0; i < 4; ++i) {
    Request r = Make(absl::StrCat("a", i), kHold);
    r.set_item_id(absl::StrCat("i", i));
    t1.push_back(Decide(r).case_id());
    r.set_request_id(absl::StrCat("b", i));
    r.set_tenant_id("t2");
    t2.push_back(Decide(r).case_id());
  }
  const std::string block = Decide(Make("c0", kBlock)).case_id();
  ASSERT_TRUE(Ack(t1[1], v1::DECISION_REJECT, "support-lead").ok());
  auto ids = [&](v1::CaseState state, const std::string& lane, const std::string& tenant) {
    v1::ListCasesRequest request;
    request.set_state(state);
    request.set_lane(lane);
    request.set_tenant_id(tenant);
    std::vector<std::string> out;
    absl::StatusOr<v1::ListCasesResponse> page = store_.List(request);
    EXPECT_TRUE(page.ok()) << page.status();
    for (const v1::Case& c : page->cases()) out.push_back(c.id());
    return out;
  };
  constexpr v1::CaseState kAny = v1::CASE_STATE_UNSPECIFIED;
  constexpr v1::CaseState kOpen = v1::CASE_STATE_OPEN;
  constexpr v1::CaseState kRejected = v1::CASE_STATE_REJECTED;
  EXPECT_THAT(ids(kAny, "", ""), SizeIs(9));
  EXPECT_THAT(ids(kOpen, "", ""), SizeIs(8));
  EXPECT_THAT(ids(kRejected, "", ""), ElementsAre(t1[1]));
  EXPECT_THAT(ids(kAny, "financial", ""), ElementsAre(block));
  EXPECT_THAT(ids(kAny, "", "t2"), ElementsAre(t2[3], t2[2], t2[1], t2[0]));
  EXPECT_THAT(ids(kOpen, "customer", ""), SizeIs(7));
  EXPECT_THAT(ids(kOpen, "", "t1"), ElementsAre(block, t1[3], t1[2], t1[0]));
  EXPECT_THAT(ids(kAny, "customer", "t1"), ElementsAre(t1[3], t1[2], t1[1], t1[0]));
  EXPECT_THAT(ids(kOpen, "customer", "t1"), ElementsAre(t1[3], t1[2], t1[0]));
  EXPECT_THAT(ids(kRejected, "customer", "t2"), IsEmpty());
  EXPECT_THAT(ids(kOpen, "no-such-lane", ""), IsEmpty());
}

// A filter the index does not hold (owner) examines a bounded number of cases per call: a page
// may come back short, with a token that continues, and paging reaches every match.
TEST_F(CaseStoreTest, ListExaminesABoundedNumberOfCasesPerCall) {
  const std::string deny = Decide(Make("d", kDeny)).case_id();  // owner security-lead: the oldest
  const int n = CaseStore::kMaxListExamined + 5;
  for (int i = 0; i < n; ++i) {
    Request r = Make(absl::StrCat("r", i), kHold);
    r.set_item_id(absl::StrCat("i", i));
    ASSERT_TRUE(TryDecide(r).ok());
  }
  v1::ListCasesRequest request;
  request.set_owner("security-lead");
  absl::StatusOr<v1::ListCasesResponse> page = store_.List(request);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->cases(), IsEmpty());
  ASSERT_FALSE(page->next_page_token().empty());
  request.set_page_token(page->next_page_token());
  page = store_.List(request);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_THAT(page->cases(), SizeIs(1));
  EXPECT_EQ(page->cases(0).id(), deny);
  EXPECT_THAT(page->next_page_token(), IsEmpty());
}

class QuotaCaseStoreTest : public CaseStoreTest {
 protected:
  QuotaCaseStoreTest() : CaseStoreTest(CaseStoreOptions{.max_open_cases_per_tenant = 2}) {}

  absl::StatusOr<v1::EvaluateResponse> Open(const std::string& tenant, const std::string& item) {
    Request r = Make(absl::StrCat(tenant, "-", item), kHold);
    r.set_tenant_id(tenant);
    r.set_item_id(item);
    return TryDecide(r);
  }
};

TEST_F(QuotaCaseStoreTest, OneTenantAtItsQuotaLeavesRoomForTheOthers) {
  ASSERT_TRUE(Open("t1", "i1").ok());
  const std::string second = Open("t1", "i2")->case_id();
  absl::StatusOr<v1::EvaluateResponse> refused = Open("t1", "i3");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("tenant t1 has 2 open cases, its quota is 2"));
  EXPECT_TRUE(Open("t2", "i1").ok());  // another tenant
  EXPECT_TRUE(Open("t1", "i1").ok());  // a join opens nothing
  EXPECT_EQ(Decide(Make("a", kAllow)).verdict(), v1::VERDICT_ALLOW);
  ASSERT_TRUE(Ack(second, v1::DECISION_REJECT, "support-lead").ok());
  EXPECT_TRUE(Open("t1", "i3").ok());  // a closed case frees its place
  v1::GetStatsResponse stats;
  store_.Stats(nullptr, TenantScope::Only({"t1"}), &stats);
  EXPECT_EQ(stats.open_cases(), 2u);
}

class EvidenceCaseStoreTest : public CaseStoreTest {
 protected:
  static constexpr size_t kEntry = 100;
  static constexpr size_t kCase = 250;
  EvidenceCaseStoreTest()
      : CaseStoreTest(CaseStoreOptions{.max_evidence_entry_bytes = kEntry,
                                       .max_evidence_case_bytes = kCase}) {}
};

TEST_F(EvidenceCaseStoreTest, LongEntriesAreCutAtACharacterWithTheirSizeAndDigest) {
  Request r = Make("r1", kHold);
  // 99 ASCII bytes, then a 3-byte character across the 100-byte cut: it goes whole.
  const std::string input = std::string(99, 'x') + "\xE2\x82\xAC" + std::string(50, 'y');
  (*r.mutable_evidence())["original_input"] = input;
  (*r.mutable_evidence())["short"] = "fits";
  const std::string id = Decide(r).case_id();
  v1::Case c = Get(id);
  EXPECT_EQ(c.evidence().original_input(), std::string(99, 'x'));
  EXPECT_EQ(c.evidence().attached().at("original_input"), std::string(99, 'x'));
  EXPECT_EQ(c.evidence().attached().at("short"), "fits");
  ASSERT_EQ(c.evidence().truncated().size(), 1u);
  const v1::TruncatedEvidence& cut = c.evidence().truncated().at("original_input");
  EXPECT_EQ(cut.size(), input.size());
  EXPECT_EQ(cut.kept_bytes(), 99u);
  std::string digest;
  ThreadSha256().HexAppend(input, &digest);
  EXPECT_EQ(cut.sha256(), digest);
  EXPECT_TRUE(c.IsInitialized());
  std::string bytes;
  EXPECT_TRUE(c.SerializeToString(&bytes));  // still valid UTF-8

  // The case's budget (250 bytes: 99 + 4 kept) leaves 147: the next long entries get 100, then
  // 47, then nothing, each with its digest.
  Request join = Make("r2", kHold);
  (*join.mutable_evidence())["a"] = std::string(300, 'a');
  (*join.mutable_evidence())["b"] = std::string(300, 'b');
  (*join.mutable_evidence())["c"] = std::string(300, 'c');
  ASSERT_EQ(Decide(join).case_id(), id);
  c = Get(id);
  size_t kept = 0;
  for (const auto& [name, value] : c.evidence().attached()) kept += value.size();
  EXPECT_EQ(kept, kCase);
  EXPECT_EQ(c.evidence().truncated().size(), 4u);
  for (const char* name : {"a", "b", "c"}) {
    EXPECT_EQ(c.evidence().truncated().at(name).size(), 300u) << name;
    EXPECT_EQ(c.evidence().truncated().at(name).kept_bytes(),
              c.evidence().attached().at(name).size())
        << name;
  }

  // A later, short value of the same name replaces the cut one whole.
  Request again = Make("r3", kHold);
  (*again.mutable_evidence())["original_input"] = "short now";
  ASSERT_EQ(Decide(again).case_id(), id);
  c = Get(id);
  EXPECT_EQ(c.evidence().original_input(), "short now");
  EXPECT_FALSE(c.evidence().truncated().contains("original_input"));
}

TEST_F(CaseStoreTest, ACaseSaysWhichRequiredEvidenceTheLatestRequestLacked) {
  // The customer lane requires original_input, proposed_action and retrieved_context.
  Request first = Make("r1", kHold);
  (*first.mutable_evidence())["original_input"] = "hello";
  const std::string id = Decide(first).case_id();
  EXPECT_THAT(Get(id).missing_evidence(), ElementsAre("proposed_action", "retrieved_context"));
  Request again = Make("r2", kHold);
  (*again.mutable_evidence())["proposed_action"] = "send";
  (*again.mutable_evidence())["retrieved_context"] = "kb";
  ASSERT_EQ(Decide(again).case_id(), id);
  EXPECT_THAT(Get(id).missing_evidence(), ElementsAre("original_input"))
      << "the latest request's, as its EvaluateResponse said";
}

class ByteBudgetCaseStoreTest : public CaseStoreTest {
 protected:
  ByteBudgetCaseStoreTest() : CaseStoreTest(CaseStoreOptions{.max_open_case_bytes = 20'000}) {}
};

TEST_F(ByteBudgetCaseStoreTest, OpenCasesPastTheByteBudgetRefuseNewOnesUntilOneCloses) {
  std::vector<std::string> ids;
  absl::Status refused;
  for (int i = 0; i < 100 && refused.ok(); ++i) {
    Request r = Make(absl::StrCat("r", i), kHold);
    r.set_item_id(absl::StrCat("i", i));
    (*r.mutable_evidence())["retrieved_context"] = std::string(4000, 'c');
    absl::StatusOr<v1::EvaluateResponse> d = TryDecide(r);
    if (d.ok()) ids.push_back(d->case_id());
    refused = d.status();
  }
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("the budget is 20000"));
  ASSERT_GE(ids.size(), 2u);
  EXPECT_LE(ids.size(), 5u);  // each holds over 4000 bytes (8000: kept twice)
  EXPECT_GE(store_.open_case_bytes(), 20'000u);
  Request join = Make("join", kHold);
  join.set_item_id("i0");
  EXPECT_TRUE(TryDecide(join).ok());
  for (const std::string& id : ids) ASSERT_TRUE(Ack(id, v1::DECISION_REJECT, "support-lead").ok());
  EXPECT_EQ(store_.open_case_bytes(), 0u);
  Request next = Make("next", kHold);
  next.set_item_id("fresh");
  EXPECT_TRUE(TryDecide(next).ok());
  EXPECT_GT(store_.open_case_bytes(), 0u);
}

TEST_F(CaseStoreTest, StatsCountFiringsOutcomesAndTimeToDecision) {
  const std::string a = Decide(Make("r1", kHold)).case_id();
  clock_.Advance(absl::Minutes(10));
  ASSERT_TRUE(Ack(a, v1::DECISION_APPROVE, "support-lead").ok());
  Request r2 = Make("r2", kHold);
  r2.set_item_id("i2");
  const std::string b = Decide(r2).case_id();
  clock_.Advance(absl::Minutes(20));
  ASSERT_TRUE(Ack(b, v1::DECISION_REJECT, "support-lead").ok());
  const std::string c = Decide(Make("r3", kBlock)).case_id();
  clock_.Advance(absl::Hours(4));
  store_.RunDueTimers();
  Decide(Make("r4", kAllow));

  v1::GetStatsResponse stats;
  store_.Stats(matrix_.get(), TenantScope::All(), &stats);
  ASSERT_THAT(stats.triggers(), SizeIs(10));
  const v1::TriggerStats& low = stats.triggers(0);
  EXPECT_EQ(low.trigger_id(), "low-confidence-customer-facing");
  EXPECT_EQ(low.lane(), "customer");
  EXPECT_EQ(low.fired(), 2u);
  EXPECT_EQ(low.approved(), 1u);
  EXPECT_EQ(low.rejected(), 1u);
  EXPECT_EQ(low.open(), 0u);
  // Median of {10m, 20m} (the upper middle of two samples).
  EXPECT_EQ(low.median_time_to_decision().seconds(), 20 * 60);
  const v1::TriggerStats& refund = stats.triggers(8);
  EXPECT_EQ(refund.trigger_id(), "refund-over-limit");
  EXPECT_EQ(refund.expired(), 1u);
  EXPECT_FALSE(refund.has_median_time_to_decision());
  EXPECT_EQ(stats.triggers(1).fired(), 0u);
  EXPECT_EQ(stats.open_cases(), 0u);
  (void)c;
}

}  // namespace
}  // namespace agate::cases
