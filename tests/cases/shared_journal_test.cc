// The case store on a shared journal (several servers on one database), against an in-memory
// database with one turn at a time: every turn absorbs the other stores' changes first, so cases
// join across stores, an approval is redeemed once across stores, a timeout runs once, scopes in
// force reach every store (Refresh), another store's decision is found, and a failed commit makes
// the store reload. store/postgres_store.h is the real shared journal (tests/replicas run it).
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "cases/case_journal.h"
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
using ::testing::HasSubstr;
using testing::kAllow;
using testing::kHold;
using ::testing::SizeIs;

// Database: what the shared journal's database keeps. turn is held from Begin to Commit/Abort.
struct Database {
  absl::Mutex turn;
  std::vector<std::pair<std::string, store::v1::StoredChange>> feed;  // (replica, change)
  std::map<uint64_t, store::v1::StoredCase> cases;
  std::map<std::string, store::v1::StoredTriggerStats> stats;
  std::map<std::string, store::v1::StoredKillSwitch> kill_switches;
  std::map<std::string, DecisionRow> decisions;
  bool down = false;         // Begin and Poll fail
  bool fail_commit = false;  // Commit fails (rolled back)
};

class SharedJournal : public CaseJournal {
 public:
  SharedJournal(Database& db, std::string replica) : db_(db), replica_(std::move(replica)) {}

  bool shared() const override { return true; }
  absl::Status Begin(bool reload, RemoteChanges* out) override {
    if (db_.down) return absl::UnavailableError("database down");
    db_.turn.Lock();
    in_turn_ = true;
    if (!reload) return Poll(out);
    out->reload = true;
    for (const auto& [seq, c] : db_.cases) out->contents.cases.push_back(c);
    for (const auto& [key, s] : db_.stats) out->contents.trigger_stats.push_back(s);
    for (const auto& [key, k] : db_.kill_switches) out->contents.kill_switches.push_back(k);
    seen_ = db_.feed.size();
    return absl::OkStatus();
  }
  void Abort() override {
    if (!in_turn_) return;
    in_turn_ = false;
    db_.turn.Unlock();
  }
  absl::Status Poll(RemoteChanges* out) override {
    if (db_.down) return absl::UnavailableError("database down");
    for (; seen_ < db_.feed.size(); ++seen_) {
      if (db_.feed[seen_].first != replica_) out->changes.push_back(db_.feed[seen_].second);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<DecisionRow>> FindDecision(absl::string_view key) override {
    auto it = db_.decisions.find(std::string(key));
    if (it == db_.decisions.end()) return std::nullopt;
    return it->second;
  }
  absl::Status Commit(const JournalBatch& batch) override {
    EXPECT_TRUE(in_turn_) << "a shared journal commits within a turn";
    const bool fail = db_.fail_commit;
    if (!fail) {
      store::v1::StoredChange change;
      for (const store::v1::StoredCase& c : batch.cases) {
        db_.cases[c.seq()] = c;
        *change.add_cases() = c;
      }
      for (const JournalTransition& t : batch.transitions) {
        store::v1::StoredTransition& st = *change.add_transitions();
        st.set_case_seq(t.case_seq);
        *st.mutable_transition() = t.transition;
      }
      for (uint64_t seq : batch.forgotten) {
        db_.cases.erase(seq);
        change.add_forgotten(seq);
      }
      for (const store::v1::StoredTriggerStats& s : batch.trigger_stats) {
        db_.stats[absl::StrCat(s.stats().trigger_id(), "/", s.tenant_id())] = s;
        *change.add_trigger_stats() = s;
      }
      for (const store::v1::StoredKillSwitch& k : batch.kill_switches) {
        if (k.switch_().engaged()) {
          db_.kill_switches[k.key()] = k;
        } else {
          db_.kill_switches.erase(k.key());
        }
        *change.add_kill_switches() = k;
      }
      for (const DecisionRow& d : batch.decisions) db_.decisions.emplace(d.key, d);
      db_.feed.emplace_back(replica_, std::move(change));
      seen_ = db_.feed.size();  // under the turn nothing came in between
    }
    Abort();
    return fail ? absl::UnavailableError("commit failed") : absl::OkStatus();
  }
  void EnqueueDecision(DecisionRow row) override { (void)row; }

 private:
  Database& db_;
  const std::string replica_;
  size_t seen_ = 0;
  bool in_turn_ = false;
};

// KeyedSealer seals like the service's sealer and names the request (key, digest) for lookup.
class KeyedSealer : public DecisionSealer {
 public:
  KeyedSealer(std::string key, std::string digest)
      : key_(std::move(key)), digest_(std::move(digest)) {}
  DecisionRow Seal(const engine::Decision& decision) override {
    v1::EvaluateResponse response;
    engine::EncodeDecision(decision, &response);
    return DecisionRow{.key = key_,
                       .digest = digest_,
                       .response = response.SerializeAsString(),
                       .decided_at = decision.decided_at};
  }
  absl::string_view key() const override { return key_; }
  absl::string_view digest() const override { return digest_; }
  void Found(DecisionRow row) override { found = std::move(row); }
  std::optional<DecisionRow> found;

 private:
  std::string key_;
  std::string digest_;
};

class SharedJournalTest : public ::testing::Test {
 protected:
  explicit SharedJournalTest(CaseStoreOptions options = {})
      : matrix_(testing::BundledMatrix()), journal_a_(db_, "a"), journal_b_(db_, "b") {
    a_ = *Decider::Create(matrix_, clock_, {.cases = options}, &journal_a_);
    b_ = *Decider::Create(matrix_, clock_, {.cases = options}, &journal_b_);
  }
  // Events returns the events buffered for watcher: (case id, transition event).
  static std::vector<std::pair<std::string, std::string>> Events(CaseWatcher& watcher) {
    std::vector<std::pair<std::string, std::string>> out;
    WatchedEvent e;
    while (watcher.Next(&e)) {
      const v1::CaseEvent event = e.Parse();
      out.emplace_back(event.case_().id(), event.transition().event());
    }
    return out;
  }

  static absl::StatusOr<v1::EvaluateResponse> Decide(Decider& d, const Request& request,
                                                     DecisionSealer* sealer = nullptr) {
    return testing::DecideAndEncode(d, request, sealer);
  }
  static absl::StatusOr<v1::Case> Ack(Decider& d, const std::string& id, v1::Decision decision) {
    return d.cases().Acknowledge(
        {.case_id = id, .decision = decision, .actor = Actor::Unverified("support-lead")});
  }
  // Kill engages a kill switch on tenant t1 (agent: that agent only) through d.
  static absl::StatusOr<v1::KillSwitch> Kill(Decider& d, absl::string_view agent = {}) {
    v1::SetKillSwitchRequest kill;
    kill.set_scope(agent.empty() ? v1::KILL_SCOPE_TENANT : v1::KILL_SCOPE_AGENT);
    kill.set_tenant_id("t1");
    kill.set_value(std::string(agent));
    kill.set_engaged(true);
    kill.set_reason("incident");
    v1::Principal admin;
    admin.set_subject("admin");
    return d.cases().SetKillSwitch(kill, admin);
  }
  static Request Redeeming(absl::string_view id, const std::string& case_id) {
    Request r = testing::MakeRequest(id, kHold);
    r.mutable_approval()->set_case_id(case_id);
    return r;
  }

  FakeClock clock_;
  std::shared_ptr<const engine::Matrix> matrix_;
  Database db_;
  SharedJournal journal_a_;
  SharedJournal journal_b_;
  std::unique_ptr<Decider> a_;
  std::unique_ptr<Decider> b_;
};

TEST_F(SharedJournalTest, AnEscalationOnOneStoreJoinsTheCaseAnotherOpened) {
  absl::StatusOr<v1::EvaluateResponse> first = Decide(*a_, testing::MakeRequest("r1", kHold));
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<v1::EvaluateResponse> second = Decide(*b_, testing::MakeRequest("r2", kHold));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->case_id(), first->case_id());
  EXPECT_EQ(b_->cases().open_cases(), 1u);
  ASSERT_TRUE(a_->cases().Refresh().ok());
  absl::StatusOr<v1::Case> seen_by_a = a_->cases().Get(first->case_id());
  ASSERT_TRUE(seen_by_a.ok());
  EXPECT_THAT(seen_by_a->request_ids(), ::testing::ElementsAre("r1", "r2"));
  EXPECT_EQ(a_->cases().open_cases(), 1u);
  EXPECT_THAT(db_.cases, SizeIs(1));
}

TEST_F(SharedJournalTest, AnApprovalThroughOneStoreIsRedeemedOnceThroughAny) {
  const std::string id = Decide(*a_, testing::MakeRequest("r1", kHold))->case_id();
  ASSERT_TRUE(Ack(*b_, id, v1::DECISION_APPROVE).ok());  // b absorbs the case in its turn
  absl::StatusOr<v1::EvaluateResponse> redeemed = Decide(*b_, Redeeming("r2", id));
  ASSERT_TRUE(redeemed.ok()) << redeemed.status();
  EXPECT_EQ(redeemed->verdict(), v1::VERDICT_ALLOW);
  // a has not refreshed: its turn absorbs the redemption before it looks.
  absl::StatusOr<v1::EvaluateResponse> again = Decide(*a_, Redeeming("r3", id));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(again->verdict(), v1::VERDICT_ALLOW);
  EXPECT_THAT(again->reason(), HasSubstr("already redeemed"));
}

TEST_F(SharedJournalTest, ATimeoutRunsOnceAcrossStores) {
  const std::string id = Decide(*a_, testing::MakeRequest("r1", kHold))->case_id();
  ASSERT_TRUE(b_->cases().Refresh().ok());  // b arms the case's timer too
  ASSERT_TRUE(b_->cases().NextDeadline().has_value());
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(a_->cases().RunDueTimers(), 1);
  EXPECT_EQ(b_->cases().RunDueTimers(), 0);  // it absorbed a's timeout first
  absl::StatusOr<v1::Case> c = b_->cases().Get(id);
  ASSERT_TRUE(c.ok());
  int timeouts = 0;
  for (const v1::Transition& t : c->history()) timeouts += absl::StartsWith(t.event(), "timeout:");
  EXPECT_EQ(timeouts, 1);
}

TEST_F(SharedJournalTest, AKillSwitchReachesTheOtherStoreAtItsRefresh) {
  ASSERT_TRUE(Kill(*a_).ok());
  EXPECT_EQ(Decide(*b_, testing::MakeRequest("r1", kAllow))->verdict(), v1::VERDICT_ALLOW);
  ASSERT_TRUE(b_->cases().Refresh().ok());
  EXPECT_EQ(Decide(*b_, testing::MakeRequest("r2", kAllow))->verdict(), v1::VERDICT_DENY);
  // Engaging it again through b is refused: b's turn sees a's switch.
  EXPECT_EQ(Kill(*b_).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(SharedJournalTest, ARequestAnotherStoreDecidedIsAnsweredFromItsRow) {
  KeyedSealer first("t1/r1", "digest-1");
  absl::StatusOr<v1::EvaluateResponse> decided =
      Decide(*a_, testing::MakeRequest("r1", kHold), &first);
  ASSERT_TRUE(decided.ok());
  KeyedSealer same("t1/r1", "digest-1");
  ASSERT_TRUE(Decide(*b_, testing::MakeRequest("r1", kHold), &same).ok());
  ASSERT_TRUE(same.found.has_value());
  v1::EvaluateResponse stored;
  ASSERT_TRUE(stored.ParseFromString(same.found->response));
  EXPECT_EQ(stored.case_id(), decided->case_id());
  absl::StatusOr<v1::Case> c = b_->cases().Get(decided->case_id());
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(c->request_ids(), SizeIs(1));  // not joined a second time

  KeyedSealer other("t1/r1", "digest-2");
  absl::StatusOr<v1::EvaluateResponse> conflict =
      Decide(*b_, testing::MakeRequest("r1", kHold), &other);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(conflict.status().message(), HasSubstr("request_id: r1 of tenant t1"));
}

TEST_F(SharedJournalTest, AFailedCommitFailsClosedAndTheStoreReloads) {
  db_.fail_commit = true;
  absl::StatusOr<v1::EvaluateResponse> r = Decide(*a_, testing::MakeRequest("r1", kHold));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a_->cases().unsynced(), 0u);  // nothing is kept for a retry
  db_.fail_commit = false;
  ASSERT_TRUE(a_->cases().Refresh().ok());  // reloads: the case the database never got is gone
  EXPECT_EQ(a_->cases().open_cases(), 0u);
  r = Decide(*a_, testing::MakeRequest("r2", kHold));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(a_->cases().open_cases(), 1u);
  EXPECT_THAT(db_.cases, SizeIs(1));
}

TEST_F(SharedJournalTest, AnUnreachableDatabaseFailsEscalationsClosedAndServesAllows) {
  db_.down = true;
  EXPECT_EQ(Decide(*a_, testing::MakeRequest("r1", kHold)).status().code(),
            absl::StatusCode::kUnavailable);
  absl::StatusOr<v1::EvaluateResponse> allow = Decide(*a_, testing::MakeRequest("r2", kAllow));
  ASSERT_TRUE(allow.ok());
  EXPECT_EQ(allow->verdict(), v1::VERDICT_ALLOW);
  EXPECT_EQ(a_->cases().Refresh().code(), absl::StatusCode::kUnavailable);
  db_.down = false;
  EXPECT_TRUE(Decide(*a_, testing::MakeRequest("r3", kHold)).ok());
}

TEST_F(SharedJournalTest, WatchersHearOfAChangeOnlyOnceItCommittedAndOfOtherStoresChanges) {
  std::shared_ptr<CaseWatcher> on_a = a_->cases().Watch({}, TenantScope::All(), [] {});
  std::shared_ptr<CaseWatcher> on_b = b_->cases().Watch({}, TenantScope::All(), [] {});
  std::shared_ptr<CaseWatcher> local_on_b = b_->cases().Watch(
      {}, TenantScope::All(), [] {}, /*local_only=*/true);
  db_.fail_commit = true;
  EXPECT_FALSE(Decide(*a_, testing::MakeRequest("r1", kHold)).ok());
  EXPECT_THAT(Events(*on_a), ::testing::IsEmpty());  // the database refused it: it never was
  db_.fail_commit = false;
  absl::StatusOr<v1::EvaluateResponse> r = Decide(*a_, testing::MakeRequest("r2", kHold));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Events(*on_a), ::testing::ElementsAre(std::pair(r->case_id(), "opened")));
  ASSERT_TRUE(b_->cases().Refresh().ok());
  EXPECT_THAT(Events(*on_b), ::testing::ElementsAre(std::pair(r->case_id(), "opened")));
  EXPECT_THAT(Events(*local_on_b), ::testing::IsEmpty());  // a's transition: a's webhook posts it
  ASSERT_TRUE(Ack(*b_, r->case_id(), v1::DECISION_REJECT).ok());
  EXPECT_THAT(Events(*local_on_b), ::testing::ElementsAre(std::pair(r->case_id(), "rejected")));
}

// Cases closed and forgotten in one batch (tiny closed-case retention) reach the other store as
// forgotten only: it unfiles them from every index (it knew them OPEN) and serves their keys.
class SharedJournalRetentionTest : public SharedJournalTest {
 protected:
  SharedJournalRetentionTest() : SharedJournalTest({.max_closed_case_bytes = 1}) {}
};

TEST_F(SharedJournalRetentionTest, CasesExpiredAndForgottenInOneBatchLeaveNoTraceElsewhere) {
  for (const char* workflow : {"w1", "w2", "w3"}) {
    Request r = testing::MakeRequest(absl::StrCat("r-", workflow), testing::kBlock);
    r.set_workflow_id(workflow);
    ASSERT_TRUE(Decide(*a_, r).ok());
  }
  ASSERT_TRUE(b_->cases().Refresh().ok());
  ASSERT_EQ(b_->cases().open_cases(), 3u);
  clock_.Advance(absl::Hours(5));  // past the financial lane's SLA: expire
  ASSERT_EQ(a_->cases().RunDueTimers(), 3);
  ASSERT_TRUE(b_->cases().Refresh().ok());
  EXPECT_EQ(b_->cases().open_cases(), 0u);
  EXPECT_EQ(b_->cases().RunDueTimers(), 0);
  // Its keys open new cases on b (no stale OPEN entry to join), and a's turn absorbs them.
  Request again = testing::MakeRequest("r-again", testing::kBlock);
  again.set_workflow_id("w1");
  absl::StatusOr<v1::EvaluateResponse> opened = Decide(*b_, again);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->verdict(), v1::VERDICT_BLOCK);
  EXPECT_EQ(b_->cases().open_cases(), 1u);
  ASSERT_TRUE(a_->cases().Refresh().ok());
  EXPECT_EQ(a_->cases().open_cases(), 1u);
}

TEST_F(SharedJournalTest, ARequestOnlyAScopeInForceAnswersTakesNoTurn) {
  ASSERT_TRUE(Kill(*a_).ok());
  db_.down = true;  // a turn would fail UNAVAILABLE
  absl::StatusOr<v1::EvaluateResponse> stopped = Decide(*a_, testing::MakeRequest("r1", kAllow));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->verdict(), v1::VERDICT_DENY);
}

TEST_F(SharedJournalTest, AReloadKeepsWhatTheJournalHasAndDropsWhatItNeverGot) {
  const std::string kept = Decide(*a_, testing::MakeRequest("r1", kHold))->case_id();
  ASSERT_TRUE(Kill(*a_, "rogue").ok());
  db_.fail_commit = true;
  Request other = testing::MakeRequest("r2", kHold);
  other.set_workflow_id("w2");
  EXPECT_FALSE(Decide(*a_, other).ok());  // in a's memory only
  EXPECT_EQ(a_->cases().open_cases(), 2u);
  db_.fail_commit = false;
  ASSERT_TRUE(a_->cases().Refresh().ok());
  EXPECT_EQ(a_->cases().open_cases(), 1u);
  EXPECT_TRUE(a_->cases().Get(kept).ok());
  EXPECT_THAT(a_->cases().KillSwitches(TenantScope::All()), SizeIs(1));
}

}  // namespace
}  // namespace agate::cases
