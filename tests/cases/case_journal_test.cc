// The case store's durability contract, against an in-memory journal: every operation commits
// what it changed before it returns, a failed commit fails the operation and is retried, and a
// store restored from what the journal kept behaves as the one that wrote it (cases, redemption,
// scopes in force, SLA timers, statistics).
#include "cases/case_journal.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cases/case_store.h"
#include "cases/decider.h"
#include "common/clock.h"
#include "engine/decision_codec.h"
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

Request Make(absl::string_view id, absl::string_view fields,
             absl::string_view workflow = "refunds") {
  return testing::MakeRequest(id, absl::StrCat("workflow_id: '", workflow, "' ", fields));
}

// TestSealer seals a decision into a row with the encoded response, and says whether it did.
class TestSealer : public DecisionSealer {
 public:
  DecisionRow Seal(const engine::Decision& decision) override {
    sealed = true;
    v1::EvaluateResponse response;
    engine::EncodeDecision(decision, &response);
    return DecisionRow{.key = "t1\0r1",
                       .digest = "d",
                       .response = response.SerializeAsString(),
                       .decided_at = decision.decided_at};
  }
  bool sealed = false;
};

// MemoryJournal keeps what a durable journal would: the newest state of every case, the
// transitions, the statistics and the decision rows. It fails on demand.
class MemoryJournal : public CaseJournal {
 public:
  absl::Status Commit(const JournalBatch& batch) override {
    ++commits;
    if (fail) return absl::UnavailableError("durable store test.db: disk is full");
    batches.push_back(batch);
    for (const store::v1::StoredCase& c : batch.cases) cases[c.seq()] = c;
    for (const JournalTransition& t : batch.transitions) transitions[t.case_seq].push_back(t);
    for (uint64_t seq : batch.forgotten) {
      cases.erase(seq);
      transitions.erase(seq);
    }
    for (const store::v1::StoredTriggerStats& s : batch.trigger_stats)
      stats[s.stats().trigger_id()] = s;
    for (const DecisionRow& d : batch.decisions) decisions.push_back(d);
    return absl::OkStatus();
  }
  void EnqueueDecision(DecisionRow row) override { queued.push_back(std::move(row)); }

  JournalContents Contents() const {
    JournalContents out;
    for (const auto& [seq, c] : cases) out.cases.push_back(c);
    for (const auto& [id, s] : stats) out.trigger_stats.push_back(s);
    return out;
  }

  bool fail = false;
  int commits = 0;
  std::vector<JournalBatch> batches;
  std::map<uint64_t, store::v1::StoredCase> cases;
  std::map<uint64_t, std::vector<JournalTransition>> transitions;
  std::map<std::string, store::v1::StoredTriggerStats> stats;
  std::vector<DecisionRow> decisions;
  std::vector<DecisionRow> queued;
};

class CaseJournalTest : public ::testing::Test {
 protected:
  CaseJournalTest() : matrix_(testing::BundledMatrix()) { Start(); }

  // Start replaces the decider with one whose cases start from what the journal kept.
  void Start(CaseStoreOptions options = {}) {
    const JournalContents contents = journal_.Contents();
    absl::StatusOr<std::unique_ptr<Decider>> d =
        Decider::Create(matrix_, clock_, {.cases = options}, &journal_, &contents);
    ASSERT_TRUE(d.ok()) << d.status();
    decider_ = *std::move(d);
    store_ = &decider_->cases();
  }

  absl::StatusOr<v1::EvaluateResponse> TryDecide(const Request& request,
                                                 DecisionSealer* sealer = nullptr) {
    return testing::DecideAndEncode(*decider_, request, sealer);
  }
  v1::EvaluateResponse Decide(const Request& request) {
    absl::StatusOr<v1::EvaluateResponse> r = TryDecide(request);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(v1::EvaluateResponse());
  }
  absl::StatusOr<v1::Case> Ack(const std::string& id, v1::Decision d, const std::string& who) {
    return store_->Acknowledge({.case_id = id, .decision = d, .actor = Actor::Unverified(who)});
  }
  // Restart replaces the store with one restored from what the journal kept.
  void Restart() { Start(); }

  FakeClock clock_;
  std::shared_ptr<const engine::Matrix> matrix_;
  MemoryJournal journal_;
  std::unique_ptr<Decider> decider_;
  CaseStore* store_ = nullptr;
};

TEST_F(CaseJournalTest, AllowCommitsNothing) {
  Decide(Make("r1", kAllow));
  EXPECT_EQ(journal_.commits, 0);
}

TEST_F(CaseJournalTest, AnEscalationCommitsItsCaseTransitionStatsAndDecisionAtOnce) {
  TestSealer sealer;
  absl::StatusOr<v1::EvaluateResponse> r = TryDecide(Make("r1", kHold), &sealer);
  ASSERT_TRUE(r.ok());
  ASSERT_THAT(journal_.batches, SizeIs(1));
  const JournalBatch& batch = journal_.batches[0];
  ASSERT_THAT(batch.cases, SizeIs(1));
  EXPECT_EQ(batch.cases[0].case_().id(), r->case_id());
  EXPECT_EQ(batch.cases[0].case_().state(), v1::CASE_STATE_OPEN);
  EXPECT_TRUE(batch.cases[0].timer_armed());
  EXPECT_EQ(batch.cases[0].sla_nanos(), absl::ToInt64Nanoseconds(absl::Minutes(30)));
  ASSERT_THAT(batch.transitions, SizeIs(1));
  EXPECT_EQ(batch.transitions[0].transition.event(), "opened");
  ASSERT_THAT(batch.trigger_stats, SizeIs(1));
  EXPECT_EQ(batch.trigger_stats[0].stats().trigger_id(), "low-confidence-customer-facing");
  EXPECT_EQ(batch.trigger_stats[0].stats().fired(), 1u);
  ASSERT_THAT(batch.decisions, SizeIs(1));
  EXPECT_TRUE(sealer.sealed);
  v1::EvaluateResponse stored;
  ASSERT_TRUE(stored.ParseFromString(batch.decisions[0].response));
  EXPECT_EQ(stored.case_id(), r->case_id());
  EXPECT_EQ(stored.decision_id(), r->decision_id());
}

TEST_F(CaseJournalTest, AcknowledgeAndTimeoutsCommitBeforeReturning) {
  const std::string hold = Decide(Make("r1", kHold)).case_id();
  const std::string block = Decide(Make("r2", kBlock, "other")).case_id();
  ASSERT_TRUE(Ack(hold, v1::DECISION_REJECT, "support-lead").ok());
  EXPECT_EQ(journal_.cases.rbegin()->second.case_().state(), v1::CASE_STATE_OPEN);  // block
  const auto closed = std::find_if(journal_.cases.begin(), journal_.cases.end(),
                                   [&](const auto& kv) { return kv.second.case_().id() == hold; });
  ASSERT_NE(closed, journal_.cases.end());
  EXPECT_EQ(closed->second.case_().state(), v1::CASE_STATE_REJECTED);
  EXPECT_FALSE(closed->second.timer_armed());

  clock_.Advance(absl::Hours(4) + absl::Seconds(1));  // the financial lane's SLA: expire
  EXPECT_EQ(store_->RunDueTimers(), 1);
  const auto expired =
      std::find_if(journal_.cases.begin(), journal_.cases.end(),
                   [&](const auto& kv) { return kv.second.case_().id() == block; });
  EXPECT_EQ(expired->second.case_().state(), v1::CASE_STATE_EXPIRED);
  EXPECT_EQ(journal_.stats["refund-over-limit"].stats().expired(), 1u);
}

TEST_F(CaseJournalTest, AFailedCommitFailsTheDecisionAndIsRetriedUntilDurable) {
  journal_.fail = true;
  TestSealer sealer;
  absl::StatusOr<v1::EvaluateResponse> r = TryDecide(Make("r1", kHold), &sealer);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("disk is full"));
  EXPECT_EQ(store_->unsynced(), 1u);
  EXPECT_FALSE(store_->Sync().ok());

  journal_.fail = false;
  ASSERT_TRUE(store_->Sync().ok());
  EXPECT_EQ(store_->unsynced(), 0u);
  ASSERT_THAT(journal_.cases, SizeIs(1));
  EXPECT_EQ(journal_.cases.begin()->second.case_().state(), v1::CASE_STATE_OPEN);
  ASSERT_THAT(journal_.transitions.begin()->second, SizeIs(1));
  EXPECT_EQ(journal_.transitions.begin()->second[0].transition.event(), "opened");
  // The retried request joins the case the failed one opened: no duplicate.
  v1::EvaluateResponse again = Decide(Make("r1", kHold));
  EXPECT_EQ(again.case_id(), journal_.cases.begin()->second.case_().id());
  EXPECT_EQ(store_->open_cases(), 1u);
}

TEST_F(CaseJournalTest, AFailedAcknowledgeIsReportedAndMadeDurableLater) {
  const std::string id = Decide(Make("r1", kHold)).case_id();
  journal_.fail = true;
  EXPECT_EQ(Ack(id, v1::DECISION_APPROVE, "support-lead").status().code(),
            absl::StatusCode::kUnavailable);
  journal_.fail = false;
  ASSERT_TRUE(store_->Sync().ok());
  EXPECT_EQ(journal_.cases.begin()->second.case_().state(), v1::CASE_STATE_APPROVED);
}

TEST_F(CaseJournalTest, ARedemptionTheStoreCannotRecordIsUndone) {
  const std::string id = Decide(Make("r1", kBlock)).case_id();
  ASSERT_TRUE(Ack(id, v1::DECISION_APPROVE, "finance-approver").ok());
  Request redeem = Make("r2", kBlock);
  redeem.mutable_approval()->set_case_id(id);

  journal_.fail = true;
  EXPECT_EQ(TryDecide(redeem).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(store_->Get(id)->redeemed());
  journal_.fail = false;

  Request retry = Make("r3", kBlock);
  retry.mutable_approval()->set_case_id(id);
  v1::EvaluateResponse allowed = Decide(retry);
  EXPECT_EQ(allowed.verdict(), v1::VERDICT_ALLOW);
  std::vector<std::string> events;
  for (const JournalTransition& t : journal_.transitions.begin()->second) {
    events.push_back(t.transition.event());
  }
  EXPECT_THAT(events,
              ElementsAre("opened", "approved", "redeemed", "redemption-undone", "redeemed"));
  EXPECT_TRUE(journal_.cases.begin()->second.case_().redeemed());
}

TEST_F(CaseJournalTest, ARestoredStoreKeepsCasesAndRedeemsAnApprovalOnce) {
  const std::string hold = Decide(Make("r1", kHold)).case_id();
  const std::string block = Decide(Make("r2", kBlock, "other")).case_id();
  ASSERT_TRUE(Ack(block, v1::DECISION_APPROVE, "finance-approver").ok());
  const v1::Case before = *store_->Get(hold);

  Restart();
  absl::StatusOr<v1::Case> after = store_->Get(hold);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(store_->open_cases(), 1u);

  Request redeem = Make("r3", kBlock, "other");
  redeem.mutable_approval()->set_case_id(block);
  EXPECT_EQ(Decide(redeem).verdict(), v1::VERDICT_ALLOW);
  Restart();
  redeem.set_request_id("r4");
  v1::EvaluateResponse second = Decide(redeem);
  EXPECT_EQ(second.verdict(), v1::VERDICT_BLOCK);
  EXPECT_THAT(second.reason(), HasSubstr("already redeemed"));
  // A joining request finds the restored open case: no duplicate.
  EXPECT_EQ(Decide(Make("r5", kHold)).case_id(), hold);
  // New cases do not reuse restored sequence numbers (ListCases order).
  const std::string fresh = Decide(Make("r6", kHold, "third")).case_id();
  v1::ListCasesRequest list;
  EXPECT_EQ(store_->List(list)->cases(0).id(), fresh);
}

// The list index, the per-tenant counts and the open bytes are rebuilt from the journal.
TEST_F(CaseJournalTest, ARestoredStoreListsByStateAndKeepsTheQuotas) {
  const std::string rejected = Decide(Make("r1", kHold)).case_id();
  ASSERT_TRUE(Ack(rejected, v1::DECISION_REJECT, "support-lead").ok());
  Request second = Make("r2", kHold);
  second.set_item_id("i2");
  const std::string open = Decide(second).case_id();
  const size_t bytes = store_->open_case_bytes();
  Start({.max_open_cases_per_tenant = 1});
  v1::ListCasesRequest list;
  list.set_state(v1::CASE_STATE_REJECTED);
  absl::StatusOr<v1::ListCasesResponse> page = store_->List(list);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->cases_size(), 1);
  EXPECT_EQ(page->cases(0).id(), rejected);
  list.set_state(v1::CASE_STATE_OPEN);
  list.set_tenant_id("t1");
  EXPECT_EQ(store_->List(list)->cases(0).id(), open);
  // Measured again (a parsed message has other capacities than one built field by field).
  EXPECT_NEAR(static_cast<double>(store_->open_case_bytes()), static_cast<double>(bytes),
              bytes * 0.25);
  Request third = Make("r3", kHold);
  third.set_item_id("i3");
  EXPECT_EQ(TryDecide(third).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(CaseJournalTest, TimersThatPassedWhileDownRunAfterRestore) {
  const std::string id = Decide(Make("r1", kHold)).case_id();
  Restart();
  clock_.Advance(absl::Minutes(31));  // down past the customer lane's 30m SLA
  Restart();
  EXPECT_EQ(store_->RunDueTimers(), 1);
  absl::StatusOr<v1::Case> c = store_->Get(id);
  EXPECT_EQ(c->current_owner(), "support-manager");  // notify_backup
  // Re-armed with a new deadline, which a further restart keeps.
  Restart();
  EXPECT_EQ(store_->RunDueTimers(), 0);
  clock_.Advance(absl::Minutes(31));
  EXPECT_EQ(store_->RunDueTimers(), 1);
  EXPECT_EQ(store_->Get(id)->history().rbegin()->event(), "timeout:overdue");
  // Nobody left to route to: no timer, and a restart does not invent one.
  Restart();
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(store_->RunDueTimers(), 0);
}

TEST_F(CaseJournalTest, ScopesInForceSurviveARestart) {
  const std::string safe = Decide(Make("r1", kRetries, "sync")).case_id();
  const std::string deny = Decide(Make("r2", kDeny, "support")).case_id();
  clock_.Advance(absl::Minutes(16));  // security: disable_credential; ops: pause_workflow
  EXPECT_EQ(store_->RunDueTimers(), 2);
  Restart();
  // Paused: every action, critical ones too (SAFE_MODE alone would let those through).
  const v1::EvaluateResponse paused =
      Decide(Make("r3", "action { type: 'send_reply' critical: true }", "sync"));
  EXPECT_EQ(paused.verdict(), v1::VERDICT_HOLD);
  EXPECT_EQ(paused.lane(), "ops");
  // The lane's evidence requirement came back with the case.
  EXPECT_THAT(paused.missing_evidence(), ElementsAre("error_log", "recent_history"));
  Request with_key = Make("r4", kAllow, "elsewhere");
  with_key.mutable_actor()->set_credential_id("key-1");
  EXPECT_EQ(Decide(with_key).verdict(), v1::VERDICT_DENY);  // credential disabled
  ASSERT_TRUE(Ack(deny, v1::DECISION_RESOLVE, "security-oncall").ok());
  ASSERT_TRUE(Ack(safe, v1::DECISION_RESOLVE, "ops-oncall").ok());
  Restart();
  with_key.set_request_id("r5");
  EXPECT_EQ(Decide(with_key).verdict(), v1::VERDICT_ALLOW);
  EXPECT_EQ(Decide(Make("r6", kAllow, "sync")).verdict(), v1::VERDICT_ALLOW);
}

TEST_F(CaseJournalTest, StatisticsSurviveARestart) {
  const std::string id = Decide(Make("r1", kBlock)).case_id();
  Decide(Make("r2", kBlock));  // joins
  clock_.Advance(absl::Minutes(2));
  ASSERT_TRUE(Ack(id, v1::DECISION_APPROVE, "finance-approver").ok());
  Restart();
  v1::GetStatsResponse stats;
  store_->Stats(matrix_.get(), TenantScope::All(), &stats);
  const auto it =
      std::find_if(stats.triggers().begin(), stats.triggers().end(),
                   [](const v1::TriggerStats& s) { return s.trigger_id() == "refund-over-limit"; });
  ASSERT_NE(it, stats.triggers().end());
  EXPECT_EQ(it->fired(), 2u);
  EXPECT_EQ(it->approved(), 1u);
  EXPECT_EQ(it->median_time_to_decision().seconds(), 120);
}

TEST_F(CaseJournalTest, ForgottenClosedCasesLeaveTheJournal) {
  Start(CaseStoreOptions{.max_closed_cases = 1});
  const std::string first = Decide(Make("r1", kHold, "a")).case_id();
  const std::string second = Decide(Make("r2", kHold, "b")).case_id();
  ASSERT_TRUE(Ack(first, v1::DECISION_RESOLVE, "support-lead").ok());
  ASSERT_TRUE(Ack(second, v1::DECISION_RESOLVE, "support-lead").ok());
  ASSERT_THAT(journal_.cases, SizeIs(1));
  EXPECT_EQ(journal_.cases.begin()->second.case_().id(), second);
  EXPECT_THAT(journal_.transitions, SizeIs(1));
}

TEST_F(CaseJournalTest, RestoreRefusesDuplicates) {
  Decide(Make("r1", kHold));
  JournalContents contents = journal_.Contents();
  contents.cases.push_back(contents.cases[0]);
  absl::StatusOr<std::unique_ptr<CaseStore>> fresh =
      CaseStore::Create(clock_, {}, nullptr, &contents);
  EXPECT_EQ(fresh.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(fresh.status().message(), HasSubstr("duplicate"));
}

TEST_F(CaseJournalTest, WithoutAJournalNothingIsUnsyncedNorSealed) {
  std::unique_ptr<Decider> memory = *Decider::Create(matrix_, clock_);
  TestSealer sealer;
  ASSERT_TRUE(testing::DecideAndEncode(*memory, Make("r1", kHold), &sealer).ok());
  EXPECT_FALSE(sealer.sealed);
  EXPECT_EQ(memory->cases().unsynced(), 0u);
  EXPECT_TRUE(memory->cases().Sync().ok());
  EXPECT_THAT(journal_.batches, IsEmpty());
}

}  // namespace
}  // namespace agate::cases
