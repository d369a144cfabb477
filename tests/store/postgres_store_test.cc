// The PostgreSQL store against a real server (the ctest fixture "postgres",
// tests/testing/postgres.sh): the schema and its version, what it keeps across a reopen, an
// unreachable URL, two replicas on one database (each sees the other's changes through the feed,
// never its own; turns are serialized), the guards that refuse a second OPEN case, a second
// redemption and a second close, decisions, count() windows, and a reload after the feed was
// pruned past a replica.
#include "store/postgres_store.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace agate::store {
namespace {

using ::agate::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using CaseState = ::agate::v1::CaseState;

// AdminUrl is the fixture server's URL (database "postgres").
std::string AdminUrl() {
  std::ifstream in(AGATE_POSTGRES_DIR "/url");
  std::string url;
  std::getline(in, url);
  return std::string(absl::StripAsciiWhitespace(url));
}

// Sql runs sql on url and returns the first column of the first row ("" if none); a failure
// fails the test.
std::string Sql(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);  // "does not exist, skipping"
  std::string out;
  if (PQstatus(conn) != CONNECTION_OK) {
    ADD_FAILURE() << "cannot connect to " << url << ": " << PQerrorMessage(conn);
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    const ExecStatusType status = PQresultStatus(r);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r);
    } else if (status == PGRES_TUPLES_OK && PQntuples(r) > 0) {
      out = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
  }
  PQfinish(conn);
  return out;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  PostgresStoreTest() {
    admin_url_ = AdminUrl();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    db_ = absl::AsciiStrToLower(
        absl::StrCat("agate_", std::string(info->name()).substr(0, 40), "_", getpid()));
    Sql(admin_url_, absl::StrCat("DROP DATABASE IF EXISTS ", db_, " WITH (FORCE)"));
    Sql(admin_url_, absl::StrCat("CREATE DATABASE ", db_));
    url_ = std::string(absl::StripSuffix(admin_url_, "/postgres"));
    absl::StrAppend(&url_, "/", db_);
  }
  ~PostgresStoreTest() override {
    Sql(admin_url_, absl::StrCat("DROP DATABASE IF EXISTS ", db_, " WITH (FORCE)"));
  }

  void SetUp() override { ASSERT_FALSE(admin_url_.empty()) << "no " AGATE_POSTGRES_DIR "/url"; }

  PostgresStoreOptions Options(absl::string_view replica) {
    PostgresStoreOptions options;
    options.url = url_;
    options.replica = std::string(replica);
    return options;
  }
  std::unique_ptr<PostgresStore> Open(absl::string_view replica = "a") {
    return Open(Options(replica));
  }
  std::unique_ptr<PostgresStore> Open(PostgresStoreOptions options) {
    absl::StatusOr<std::unique_ptr<PostgresStore>> s = PostgresStore::Open(options, clock_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  std::string Sql(const std::string& sql) { return store::Sql(url_, sql); }
  static std::string Sql(const std::string& url, const std::string& sql) {
    return store::Sql(url, sql);
  }

  // A case of lane "customer" on item (tenant t1, workflow w1): cases on one item share their
  // open key.
  static v1::StoredCase Case(uint64_t seq, CaseState state, absl::string_view item = "i1") {
    v1::StoredCase c;
    c.set_seq(seq);
    ::agate::v1::Case& k = *c.mutable_case_();
    k.set_id(absl::StrCat("case_", seq));
    k.set_lane("customer");
    k.set_state(state);
    k.set_scope(::agate::v1::SCOPE_ITEM);
    k.set_scope_key(absl::StrCat("t1/w1/", item));
    k.set_tenant_id("t1");
    k.set_workflow_id("w1");
    k.set_item_id(std::string(item));
    c.set_canonical_action("refund/400");
    return c;
  }
  cases::JournalTransition Transition(uint64_t seq, CaseState state, absl::string_view event) {
    cases::JournalTransition t;
    t.case_seq = seq;
    *t.transition.mutable_time() = ToTimestamp(clock_.Now());
    t.transition.set_state(state);
    t.transition.set_event(std::string(event));
    t.transition.set_actor("agate");
    return t;
  }
  // A batch that opens case seq.
  cases::JournalBatch Opens(uint64_t seq, absl::string_view item = "i1") {
    cases::JournalBatch batch;
    batch.cases = {Case(seq, ::agate::v1::CASE_STATE_OPEN, item)};
    batch.transitions = {Transition(seq, ::agate::v1::CASE_STATE_OPEN, "opened")};
    return batch;
  }
  // A batch that closes case seq (state).
  cases::JournalBatch Closes(uint64_t seq, CaseState state) {
    cases::JournalBatch batch;
    batch.cases = {Case(seq, state)};
    batch.transitions = {Transition(seq, state, "acknowledged")};
    return batch;
  }
  // A batch that redeems approved case seq.
  cases::JournalBatch Redeems(uint64_t seq) {
    cases::JournalBatch batch;
    batch.cases = {Case(seq, ::agate::v1::CASE_STATE_APPROVED)};
    batch.cases[0].mutable_case_()->set_redeemed(true);
    batch.transitions = {Transition(seq, ::agate::v1::CASE_STATE_APPROVED, "redeemed")};
    return batch;
  }
  static std::vector<uint64_t> SeqsOf(const cases::RemoteChanges& remote) {
    std::vector<uint64_t> out;
    for (const v1::StoredChange& change : remote.changes) {
      for (const v1::StoredCase& c : change.cases()) out.push_back(c.seq());
    }
    return out;
  }

  FakeClock clock_;
  std::string admin_url_;
  std::string db_;
  std::string url_;
};

TEST_F(PostgresStoreTest, CreatesTheSchemaAndKeepsWhatWasCommittedAcrossAReopen) {
  {
    std::unique_ptr<PostgresStore> store = Open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(Sql("SELECT version FROM agate_schema"), "1");
    EXPECT_EQ(Sql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'agate\\_%'"), "9");
    cases::JournalBatch batch = Opens(1);
    batch.cases.push_back(Case(2, ::agate::v1::CASE_STATE_REJECTED, "i2"));
    v1::StoredTriggerStats& stats = batch.trigger_stats.emplace_back();
    stats.mutable_stats()->set_trigger_id("big_refund");
    stats.set_tenant_id("t1");
    stats.add_decision_ms(1200);
    v1::StoredKillSwitch& kill = batch.kill_switches.emplace_back();
    kill.set_key("t1/agent/a1");
    kill.mutable_switch_()->set_engaged(true);
    kill.mutable_switch_()->set_reason("runaway");
    v1::StoredKillSwitch& lifted = batch.kill_switches.emplace_back();
    lifted.set_key("t1/agent/a2");
    lifted.mutable_switch_()->set_engaged(true);
    ASSERT_TRUE(store->Commit(batch).ok());
    cases::JournalBatch lift;
    lift.kill_switches = {lifted};
    lift.kill_switches[0].mutable_switch_()->set_engaged(false);
    ASSERT_TRUE(store->Commit(lift).ok());
    EXPECT_EQ(store->stats().commits, 2u);
  }
  std::unique_ptr<PostgresStore> store = Open();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<cases::JournalContents> contents = store->LoadCases();
  ASSERT_TRUE(contents.ok()) << contents.status();
  ASSERT_THAT(contents->cases, SizeIs(2));
  EXPECT_EQ(contents->cases[0].case_().id(), "case_1");
  EXPECT_EQ(contents->cases[0].case_().state(), ::agate::v1::CASE_STATE_OPEN);
  EXPECT_EQ(contents->cases[1].case_().state(), ::agate::v1::CASE_STATE_REJECTED);
  ASSERT_THAT(contents->trigger_stats, SizeIs(1));
  EXPECT_EQ(contents->trigger_stats[0].stats().trigger_id(), "big_refund");
  EXPECT_THAT(contents->trigger_stats[0].decision_ms(), ElementsAre(1200));
  ASSERT_THAT(contents->kill_switches, SizeIs(1));
  EXPECT_EQ(contents->kill_switches[0].switch_().reason(), "runaway");
  EXPECT_EQ(Sql("SELECT count(*) FROM agate_transitions WHERE case_seq = 1"), "1");
  EXPECT_EQ(Sql("SELECT state FROM agate_cases WHERE seq = 2"), "REJECTED");
}

TEST_F(PostgresStoreTest, RefusesADatabaseWrittenByANewerAgate) {
  ASSERT_NE(Open(), nullptr);
  Sql("UPDATE agate_schema SET version = 99");
  PostgresStoreOptions again = Options("a");
  again.turn_timeout = absl::Milliseconds(200);
  EXPECT_THAT(PostgresStore::Open(again, clock_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(db_), HasSubstr("newer agate"),
                             HasSubstr("schema version 99"), HasSubstr("reads up to 1"))));
}

TEST_F(PostgresStoreTest, AnUnreachableDatabaseIsUnavailableNamingItWithoutThePassword) {
  // Nothing listens on port 1 of loopback.
  const int port = 1;

  PostgresStoreOptions options = Options("a");
  options.url = absl::StrCat("postgresql://agate:s3cret@127.0.0.1:", port, "/agate");
  EXPECT_THAT(PostgresStore::Open(options, clock_),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr(absl::StrCat("postgresql://agate@127.0.0.1:", port,
                                                    "/agate: cannot connect")),
                             Not(HasSubstr("s3cret")))));
  options.url = absl::StrCat("host=127.0.0.1 password=s3cret port=", port, " dbname=agate");
  EXPECT_THAT(PostgresStore::Open(options, clock_),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr(absl::StrCat("host=127.0.0.1 port=", port, " dbname=agate")),
                             Not(HasSubstr("s3cret")))));
}

TEST_F(PostgresStoreTest, AReplicaNameIsRequiredAndUsedByOneServerAtATime) {
  EXPECT_THAT(PostgresStore::Open(Options(""), clock_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("replica name is empty")));
  std::unique_ptr<PostgresStore> a = Open("a");
  ASSERT_NE(a, nullptr);
  PostgresStoreOptions again = Options("a");
  again.turn_timeout = absl::Milliseconds(200);
  EXPECT_THAT(PostgresStore::Open(again, clock_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("replica name \"a\" is in use by another agate-server")));
  a.reset();
  EXPECT_NE(Open("a"), nullptr);
}

TEST_F(PostgresStoreTest, AReplicasCommitsReachTheOtherInOrderAndNeverItself) {
  std::unique_ptr<PostgresStore> a = Open("a");
  std::unique_ptr<PostgresStore> b = Open("b");
  ASSERT_TRUE(a->LoadCases().ok());
  ASSERT_TRUE(b->LoadCases().ok());

  cases::RemoteChanges seen_by_a;
  ASSERT_TRUE(a->Begin(false, &seen_by_a).ok());
  EXPECT_THAT(seen_by_a.changes, IsEmpty());
  ASSERT_TRUE(a->Commit(Opens(1, "i1")).ok());
  ASSERT_TRUE(a->Begin(false, &seen_by_a).ok());
  ASSERT_TRUE(a->Commit(Opens(2, "i2")).ok());
  EXPECT_THAT(seen_by_a.changes, IsEmpty());

  cases::RemoteChanges seen_by_b;
  ASSERT_TRUE(b->Poll(&seen_by_b).ok());
  EXPECT_FALSE(seen_by_b.reload);
  EXPECT_THAT(SeqsOf(seen_by_b), ElementsAre(1, 2));
  ASSERT_THAT(seen_by_b.changes, SizeIs(2));
  ASSERT_THAT(seen_by_b.changes[0].transitions(), SizeIs(1));
  EXPECT_EQ(seen_by_b.changes[0].transitions(0).transition().event(), "opened");
  // Nothing twice.
  cases::RemoteChanges again;
  ASSERT_TRUE(b->Poll(&again).ok());
  EXPECT_THAT(again.changes, IsEmpty());

  // B's turn: A's next commit, then B's own change reaches A's Begin and not B's.
  ASSERT_TRUE(a->Commit(Opens(3, "i3")).ok());  // outside a turn
  cases::RemoteChanges b_turn;
  ASSERT_TRUE(b->Begin(false, &b_turn).ok());
  EXPECT_THAT(SeqsOf(b_turn), ElementsAre(3));
  ASSERT_TRUE(b->Commit(Closes(1, ::agate::v1::CASE_STATE_APPROVED)).ok());
  cases::RemoteChanges a_poll;
  ASSERT_TRUE(a->Poll(&a_poll).ok());
  EXPECT_THAT(SeqsOf(a_poll), ElementsAre(1));
  EXPECT_EQ(a_poll.changes[0].cases(0).case_().state(), ::agate::v1::CASE_STATE_APPROVED);
  cases::RemoteChanges b_poll;
  ASSERT_TRUE(b->Poll(&b_poll).ok());
  EXPECT_THAT(b_poll.changes, IsEmpty());

  EXPECT_EQ(Sql("SELECT string_agg(id || replica, ',' ORDER BY id) FROM agate_changes"),
            "1a,2a,3a,4b");
}

TEST_F(PostgresStoreTest, BeginWaitsWhileAnotherReplicaHoldsATurn) {
  std::unique_ptr<PostgresStore> a = Open("a");
  std::unique_ptr<PostgresStore> b = Open("b");
  ASSERT_TRUE(b->LoadCases().ok());
  cases::RemoteChanges ignored;
  ASSERT_TRUE(a->Begin(false, &ignored).ok());

  std::atomic<bool> b_began = false;
  cases::RemoteChanges seen_by_b;
  absl::Status b_status;
  std::thread b_thread([&] {
    b_status = b->Begin(false, &seen_by_b);
    b_began = true;
  });
  // Wait until B is queued on the turn lock (not a timing assertion: the loop ends when it is).
  std::string waiting;
  for (int i = 0; i < 3000 && waiting != "1"; ++i) {
    waiting =
        Sql("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = 'agate b' "
            "AND a.datname = current_database()");
    if (waiting != "1") absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(waiting, "1");
  EXPECT_FALSE(b_began);
  ASSERT_TRUE(a->Commit(Opens(1)).ok());
  b_thread.join();
  ASSERT_TRUE(b_began);
  ASSERT_TRUE(b_status.ok()) << b_status;
  // B's turn began after A's committed: it sees it.
  EXPECT_THAT(SeqsOf(seen_by_b), ElementsAre(1));
  b->Abort();
  // Abort ended B's turn: A can take one.
  ASSERT_TRUE(a->Begin(false, &ignored).ok());
  a->Abort();
}

TEST_F(PostgresStoreTest, ATurnThatCannotHaveTheLockWithinTheTurnTimeoutIsUnavailable) {
  std::unique_ptr<PostgresStore> a = Open("a");
  PostgresStoreOptions options = Options("b");
  options.turn_timeout = absl::Milliseconds(200);
  std::unique_ptr<PostgresStore> b = Open(options);
  cases::RemoteChanges ignored;
  ASSERT_TRUE(a->Begin(false, &ignored).ok());
  EXPECT_THAT(
      b->Begin(false, &ignored),
      StatusIs(absl::StatusCode::kUnavailable,
               AllOf(HasSubstr(absl::StrCat("postgres ", url_)),
                     HasSubstr(
                         "cannot take the turn lock within 200ms (another server's turn holds it)"),
                     HasSubstr("timeout"))));
  ASSERT_TRUE(a->Commit(Opens(1)).ok());
  // B's failed Begin left no turn open: it can have the next one.
  cases::RemoteChanges seen_by_b;
  ASSERT_TRUE(b->Begin(false, &seen_by_b).ok());
  EXPECT_THAT(SeqsOf(seen_by_b), ElementsAre(1));
  b->Abort();
}

TEST_F(PostgresStoreTest, ATurnLeftIdlePastTheTurnTimeoutIsEndedByTheServer) {
  PostgresStoreOptions options = Options("a");
  options.turn_timeout = absl::Milliseconds(200);
  std::unique_ptr<PostgresStore> a = Open(options);
  cases::RemoteChanges ignored;
  ASSERT_TRUE(a->Begin(false, &ignored).ok());
  // Wait until the server has closed the idle turn's connection (idle_in_transaction_session_
  // timeout); the loop ends when it has.
  std::string left = "1";
  for (int i = 0; i < 3000 && left != "0"; ++i) {
    left =
        Sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'agate a' "
            "AND datname = current_database()");
    if (left != "0") absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(left, "0");
  EXPECT_THAT(a->Commit(Opens(1)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(absl::StrCat("postgres ", url_))));
  EXPECT_EQ(Sql("SELECT count(*) FROM agate_cases"), "0");
  // The lock went with the connection: a new turn (on a new connection) commits.
  ASSERT_TRUE(a->Begin(false, &ignored).ok());
  EXPECT_TRUE(a->Commit(Opens(1)).ok());
}

TEST_F(PostgresStoreTest, ASecondOpenCaseForOneKeyIsAborted) {
  std::unique_ptr<PostgresStore> a = Open("a");
  std::unique_ptr<PostgresStore> b = Open("b");
  ASSERT_TRUE(a->Commit(Opens(1, "i1")).ok());
  cases::JournalBatch second = Opens(2, "i1");
  v1::StoredTriggerStats& stats = second.trigger_stats.emplace_back();
  stats.mutable_stats()->set_trigger_id("big_refund");
  EXPECT_THAT(b->Commit(second),
              StatusIs(absl::StatusCode::kAborted,
                       AllOf(HasSubstr("case_2"), HasSubstr("already OPEN for t1/w1/i1"))));
  EXPECT_EQ(b->stats().commit_errors, 1u);
  // Nothing of the refused batch was kept, and the feed has A's change only.
  EXPECT_EQ(Sql("SELECT count(*) FROM agate_cases"), "1");
  EXPECT_EQ(Sql("SELECT count(*) FROM agate_trigger_stats"), "0");
  EXPECT_EQ(Sql("SELECT count(*) FROM agate_transitions"), "1");
  EXPECT_EQ(Sql("SELECT max(id) FROM agate_changes"), "1");
  // Another item is another key; and once case 1 is closed, the key may open again.
  EXPECT_TRUE(b->Commit(Opens(3, "i2")).ok());
  ASSERT_TRUE(a->Commit(Closes(1, ::agate::v1::CASE_STATE_RESOLVED)).ok());
  EXPECT_TRUE(b->Commit(Opens(2, "i1")).ok());
}

TEST_F(PostgresStoreTest, ACaseIdUnderAnotherSeqIsAborted) {
  std::unique_ptr<PostgresStore> a = Open("a");
  ASSERT_TRUE(a->Commit(Opens(1, "i1")).ok());
  cases::JournalBatch clash = Opens(2, "i2");
  clash.cases[0].mutable_case_()->set_id("case_1");
  EXPECT_THAT(a->Commit(clash),
              StatusIs(absl::StatusCode::kAborted,
                       AllOf(HasSubstr("case case_1: "), HasSubstr("agate_cases_id_key"))));
  // Redeeming a case the database does not have.
  EXPECT_THAT(a->Commit(Redeems(7)),
              StatusIs(absl::StatusCode::kAborted,
                       HasSubstr("case case_7: not in the database (redeeming it)")));
}

TEST_F(PostgresStoreTest, RowsThatDoNotParseAreDataLoss) {
  std::unique_ptr<PostgresStore> a = Open("a");
  std::unique_ptr<PostgresStore> b = Open("b");
  ASSERT_TRUE(b->LoadCases().ok());
  ASSERT_TRUE(a->Commit(Opens(1)).ok());
  Sql("UPDATE agate_changes SET body = '\\xff'::bytea");
  cases::RemoteChanges polled;
  EXPECT_THAT(b->Poll(&polled), StatusIs(absl::StatusCode::kDataLoss,
                                         AllOf(HasSubstr(absl::StrCat("postgres ", url_)),
                                               HasSubstr("change 1 is unreadable"))));
  Sql("UPDATE agate_cases SET body = '\\xff'::bytea");
  EXPECT_THAT(b->LoadCases(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("case with seq 1 is unreadable")));
}

TEST_F(PostgresStoreTest, RedeemingTwiceIsAborted) {
  std::unique_ptr<PostgresStore> a = Open("a");
  std::unique_ptr<PostgresStore> b = Open("b");
  ASSERT_TRUE(a->Commit(Opens(1)).ok());
  ASSERT_TRUE(a->Commit(Closes(1, ::agate::v1::CASE_STATE_APPROVED)).ok());
  EXPECT_TRUE(a->Commit(Redeems(1)).ok());
  EXPECT_EQ(Sql("SELECT redeemed_at IS NOT NULL FROM agate_cases WHERE seq = 1"), "t");
  EXPECT_THAT(b->Commit(Redeems(1)),
              StatusIs(absl::StatusCode::kAborted,
                       HasSubstr("case case_1: already redeemed (another replica redeemed it "
                                 "first)")));
  // An undone redemption (the client never heard of it) makes it redeemable again.
  cases::JournalBatch undo;
  undo.cases = {Case(1, ::agate::v1::CASE_STATE_APPROVED)};
  undo.transitions = {Transition(1, ::agate::v1::CASE_STATE_APPROVED, "redemption-undone")};
  ASSERT_TRUE(a->Commit(undo).ok());
  EXPECT_EQ(Sql("SELECT redeemed_at IS NULL FROM agate_cases WHERE seq = 1"), "t");
  EXPECT_TRUE(b->Commit(Redeems(1)).ok());
  // An open case cannot be redeemed either.
  ASSERT_TRUE(a->Commit(Opens(2, "i2")).ok());
  cases::JournalBatch early = Redeems(2);
  early.cases[0].mutable_case_()->set_item_id("i2");
  EXPECT_THAT(b->Commit(early),
              StatusIs(absl::StatusCode::kAborted,
                       HasSubstr("case case_2 is OPEN: only an APPROVED case is redeemed, once")));
}

TEST_F(PostgresStoreTest, ClosingAClosedCaseIsAborted) {
  std::unique_ptr<PostgresStore> a = Open("a");
  std::unique_ptr<PostgresStore> b = Open("b");
  ASSERT_TRUE(a->Commit(Opens(1)).ok());
  ASSERT_TRUE(a->Commit(Closes(1, ::agate::v1::CASE_STATE_APPROVED)).ok());
  EXPECT_THAT(b->Commit(Closes(1, ::agate::v1::CASE_STATE_EXPIRED)),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("case case_1 was already APPROVED")));
  // Approving it twice (two replicas' owners at once) is closing it twice.
  EXPECT_THAT(b->Commit(Closes(1, ::agate::v1::CASE_STATE_APPROVED)),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("case case_1 was already APPROVED")));
  EXPECT_EQ(Sql("SELECT count(*) FROM agate_transitions WHERE case_seq = 1"), "2");
  // Nor does a closed case open again.
  cases::JournalBatch reopen;
  reopen.cases = {Case(1, ::agate::v1::CASE_STATE_OPEN)};
  EXPECT_THAT(b->Commit(reopen),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("case case_1 was already APPROVED")));
  EXPECT_EQ(Sql("SELECT state FROM agate_cases WHERE seq = 1"), "APPROVED");
  // A case opened and closed in one batch is written closed.
  cases::JournalBatch both = Closes(2, ::agate::v1::CASE_STATE_REJECTED);
  both.cases[0].mutable_case_()->set_item_id("i2");
  EXPECT_TRUE(b->Commit(both).ok());
  EXPECT_EQ(Sql("SELECT state FROM agate_cases WHERE seq = 2"), "REJECTED");
}

TEST_F(PostgresStoreTest, FindDecisionFindsADecisionCommittedWithCases) {
  std::unique_ptr<PostgresStore> a = Open("a");
  std::unique_ptr<PostgresStore> b = Open("b");
  const std::string key("t1\0r1", 5);
  cases::RemoteChanges ignored;
  ASSERT_TRUE(a->Begin(false, &ignored).ok());
  cases::JournalBatch batch = Opens(1);
  batch.decisions = {{key, "digest-1", "response-1", clock_.Now()}};
  ASSERT_TRUE(a->Commit(batch).ok());

  EXPECT_THAT(b->FindDecision(key),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("outside a turn")));
  ASSERT_TRUE(b->Begin(false, &ignored).ok());
  absl::StatusOr<std::optional<cases::DecisionRow>> found = b->FindDecision(key);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->key, key);
  EXPECT_EQ((*found)->digest, "digest-1");
  EXPECT_EQ((*found)->response, "response-1");
  EXPECT_EQ((*found)->decided_at, clock_.Now());
  absl::StatusOr<std::optional<cases::DecisionRow>> missing =
      b->FindDecision(std::string("t1\0r2", 5));
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->has_value());
  // Within a turn, another Begin or a Poll is a programming error.
  EXPECT_THAT(b->Begin(false, &ignored),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("already open")));
  EXPECT_THAT(b->Poll(&ignored), StatusIs(absl::StatusCode::kInternal, HasSubstr("inside a turn")));
  b->Abort();
  b->Abort();  // nothing: no turn
}

TEST_F(PostgresStoreTest, EnqueuedDecisionsAreReadBackAfterFlushAndPrunedPastTheRetention) {
  std::unique_ptr<PostgresStore> store = Open();
  const absl::Time t0 = clock_.Now();
  for (int i = 0; i < 3; ++i) {
    store->EnqueueDecision({absl::StrCat("t1", std::string(1, '\0'), "r", i),
                            absl::StrCat("digest-", i), absl::StrCat("response-", i),
                            t0 + absl::Seconds(i)});
  }
  // A second row for a key keeps the first.
  store->EnqueueDecision({absl::StrCat("t1", std::string(1, '\0'), "r0"), "other", "other", t0});
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(store->stats().decisions_written, 4u);

  absl::StatusOr<std::vector<cases::DecisionRow>> rows =
      store->LoadDecisions(t0 + absl::Seconds(1), 10);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_THAT(*rows, SizeIs(2));
  EXPECT_EQ((*rows)[0].digest, "digest-1");
  EXPECT_EQ((*rows)[1].digest, "digest-2");
  EXPECT_EQ((*rows)[1].decided_at, t0 + absl::Seconds(2));
  rows = store->LoadDecisions(absl::InfinitePast(), 2);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_THAT(*rows, SizeIs(2));  // the newest two
  EXPECT_EQ((*rows)[0].digest, "digest-1");
  rows = store->LoadDecisions(absl::InfinitePast(), 10);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_THAT(*rows, SizeIs(3));
  EXPECT_EQ((*rows)[0].digest, "digest-0");

  clock_.Advance(absl::Minutes(10) + absl::Seconds(1) + absl::Milliseconds(500));
  ASSERT_TRUE(store->Flush().ok());
  rows = store->LoadDecisions(absl::InfinitePast(), 10);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_THAT(*rows, SizeIs(1));
  EXPECT_EQ((*rows)[0].digest, "digest-2");
}

TEST_F(PostgresStoreTest, QueuedDecisionsPastTheBoundAreDroppedOldestFirst) {
  PostgresStoreOptions options = Options("a");
  options.max_queued_decisions = 2;
  options.flush_interval = absl::Hours(1);  // only Flush writes
  std::unique_ptr<PostgresStore> store = Open(options);
  for (int i = 0; i < 3; ++i) {
    store->EnqueueDecision({absl::StrCat("t1", std::string(1, '\0'), "r", i), "d",
                            absl::StrCat("response-", i), clock_.Now()});
  }
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(store->stats().decisions_dropped, 1u);
  EXPECT_EQ(store->stats().decisions_written, 2u);
  EXPECT_EQ(Sql("SELECT string_agg(convert_from(response, 'UTF8'), ',' ORDER BY response) "
                "FROM agate_decisions"),
            "response-1,response-2");
}

TEST_F(PostgresStoreTest, CountWindowsAreKeptPerReplica) {
  std::unique_ptr<PostgresStore> a = Open("a");
  std::unique_ptr<PostgresStore> b = Open("b");
  v1::StoredSignalSeries s1;
  s1.set_key("t1/w1/refunds");
  s1.add_seconds(1'800'000'000);
  s1.add_counts(3);
  v1::StoredSignalSeries s2 = s1;
  s2.set_key("t1/w1/logins");
  ASSERT_TRUE(a->SaveSignals({s1}).ok());
  ASSERT_TRUE(b->SaveSignals({s2, s1}).ok());
  absl::StatusOr<std::vector<v1::StoredSignalSeries>> got = a->LoadSignals();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  EXPECT_EQ((*got)[0].key(), "t1/w1/refunds");
  EXPECT_THAT((*got)[0].counts(), ElementsAre(3));
  got = b->LoadSignals();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(2));
  EXPECT_EQ((*got)[0].key(), "t1/w1/logins");
  // Each reads the others' windows (to sum with its own), never its own.
  got = a->LoadOtherSignals();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(2));
  EXPECT_EQ((*got)[0].key(), "t1/w1/logins");
  got = b->LoadOtherSignals();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  EXPECT_EQ((*got)[0].key(), "t1/w1/refunds");
  // Saving replaces.
  ASSERT_TRUE(a->SaveSignals({}).ok());
  got = a->LoadSignals();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, IsEmpty());
  got = b->LoadOtherSignals();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, IsEmpty());
}

TEST_F(PostgresStoreTest, AReplicaBehindThePrunedFeedReloadsInFull) {
  std::unique_ptr<PostgresStore> a = Open("a");
  std::unique_ptr<PostgresStore> b = Open("b");
  ASSERT_TRUE(b->LoadCases().ok());
  ASSERT_TRUE(a->Commit(Opens(1, "i1")).ok());
  clock_.Advance(absl::Minutes(11));  // past feed_retention
  ASSERT_TRUE(a->Flush().ok());
  EXPECT_EQ(Sql("SELECT count(*) FROM agate_changes"), "0");
  EXPECT_EQ(Sql("SELECT pruned_upto FROM agate_feed"), "1");

  cases::RemoteChanges polled;
  ASSERT_TRUE(b->Poll(&polled).ok());
  EXPECT_TRUE(polled.reload);
  EXPECT_THAT(polled.changes, IsEmpty());
  ASSERT_THAT(polled.contents.cases, SizeIs(1));
  EXPECT_EQ(polled.contents.cases[0].seq(), 1u);
  // Caught up: the next changes come through the feed again.
  ASSERT_TRUE(a->Commit(Opens(2, "i2")).ok());
  cases::RemoteChanges next;
  ASSERT_TRUE(b->Begin(false, &next).ok());
  EXPECT_FALSE(next.reload);
  EXPECT_THAT(SeqsOf(next), ElementsAre(2));
  ASSERT_TRUE(b->Commit({}).ok());  // an empty batch ends the turn

  // A Begin behind the pruned feed reloads too, and Begin(reload) always does.
  std::unique_ptr<PostgresStore> c = Open("c");  // never read the feed: behind it
  cases::RemoteChanges begun;
  ASSERT_TRUE(c->Begin(false, &begun).ok());
  EXPECT_TRUE(begun.reload);
  EXPECT_THAT(begun.contents.cases, SizeIs(2));
  c->Abort();
  cases::RemoteChanges reloaded;
  ASSERT_TRUE(b->Begin(true, &reloaded).ok());
  EXPECT_TRUE(reloaded.reload);
  EXPECT_THAT(reloaded.contents.cases, SizeIs(2));
  b->Abort();
}

TEST_F(PostgresStoreTest, ALostConnectionFailsUnavailableAndIsReestablished) {
  // Ends replica a's turn connection in this test's database.
  constexpr char kTerminateA[] =
      "SELECT count(pg_terminate_backend(pid)) = 1 FROM pg_stat_activity "
      "WHERE application_name = 'agate a' AND datname = current_database()";
  std::unique_ptr<PostgresStore> a = Open("a");
  ASSERT_TRUE(a->LoadCases().ok());
  EXPECT_EQ(Sql(kTerminateA), "t");
  cases::RemoteChanges ignored;
  EXPECT_THAT(a->Begin(false, &ignored),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(absl::StrCat("postgres ", url_))));
  ASSERT_TRUE(a->Begin(false, &ignored).ok());
  ASSERT_TRUE(a->Commit(Opens(1)).ok());

  // Lost in the middle of a turn: the commit fails and nothing is written.
  ASSERT_TRUE(a->Begin(false, &ignored).ok());
  EXPECT_EQ(Sql(kTerminateA), "t");
  EXPECT_THAT(a->Commit(Opens(2, "i2")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(absl::StrCat("postgres ", url_))));
  EXPECT_EQ(a->stats().commit_errors, 1u);
  EXPECT_EQ(Sql("SELECT count(*) FROM agate_cases"), "1");
  EXPECT_TRUE(a->Commit(Opens(2, "i2")).ok());
}

}  // namespace
}  // namespace agate::store
