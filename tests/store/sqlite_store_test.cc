// The SQLite store: what it keeps survives a reopen; a locked, corrupt, newer or unusable data dir
// is a clear error; a full store fails a commit cleanly and keeps what was committed.
#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agate::store {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

MATCHER_P2(StatusIs, code, message_matcher, "") {
  return arg.code() == code && ::testing::ExplainMatchResult(
                                   message_matcher, std::string(arg.message()), result_listener);
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  SqliteStoreTest() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (fs::temp_directory_path() / absl::StrCat("agate_sqlite_", info->name(), "_", getpid()))
               .string();
    fs::remove_all(dir_);
  }
  ~SqliteStoreTest() override { fs::remove_all(dir_); }

  std::unique_ptr<SqliteStore> Open(SqliteStoreOptions options = {}) {
    options.dir = dir_;
    absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(options, clock_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  static v1::StoredCase Case(uint64_t seq, ::agate::v1::CaseState state, size_t padding = 0) {
    v1::StoredCase c;
    c.set_seq(seq);
    c.mutable_case_()->set_id(absl::StrCat("case_", seq));
    c.mutable_case_()->set_lane("customer");
    c.mutable_case_()->set_state(state);
    c.mutable_case_()->mutable_evidence()->set_original_input(std::string(padding, 'x'));
    c.set_canonical_action("refund/400");
    c.set_sla_nanos(1'800'000'000'000);
    c.set_timer_armed(state == ::agate::v1::CASE_STATE_OPEN);
    return c;
  }
  cases::JournalTransition Transition(uint64_t seq, absl::string_view event) {
    cases::JournalTransition t;
    t.case_seq = seq;
    *t.transition.mutable_time() = ToTimestamp(clock_.Now());
    t.transition.set_state(::agate::v1::CASE_STATE_OPEN);
    t.transition.set_event(std::string(event));
    t.transition.set_actor("agate");
    t.transition.set_comment("request r1");
    return t;
  }

  FakeClock clock_;
  std::string dir_;
};

TEST_F(SqliteStoreTest, WhatWasCommittedIsReadBackAfterAReopen) {
  {
    std::unique_ptr<SqliteStore> store = Open();
    cases::JournalBatch batch;
    batch.cases = {Case(1, ::agate::v1::CASE_STATE_OPEN),
                   Case(2, ::agate::v1::CASE_STATE_APPROVED)};
    batch.transitions = {Transition(1, "opened"), Transition(2, "opened"),
                         Transition(2, "approved")};
    v1::StoredTriggerStats stats;
    stats.mutable_stats()->set_trigger_id("refund-over-limit");
    stats.mutable_stats()->set_fired(3);
    stats.add_decision_ms(1200);
    batch.trigger_stats = {stats};
    batch.decisions = {{.key = std::string("t\0r1", 4),
                        .digest = "d1",
                        .response = "R1",
                        .decided_at = clock_.Now()}};
    ASSERT_TRUE(store->Commit(batch).ok());
    // An update replaces the case; a join's transition is appended.
    cases::JournalBatch update;
    update.cases = {Case(1, ::agate::v1::CASE_STATE_REJECTED)};
    update.transitions = {Transition(1, "rejected")};
    ASSERT_TRUE(store->Commit(update).ok());
    EXPECT_EQ(store->stats().commits, 2u);
  }
  std::unique_ptr<SqliteStore> store = Open();
  absl::StatusOr<cases::JournalContents> contents = store->LoadCases();
  ASSERT_TRUE(contents.ok()) << contents.status();
  ASSERT_THAT(contents->cases, SizeIs(2));
  EXPECT_EQ(contents->cases[0].case_().state(), ::agate::v1::CASE_STATE_REJECTED);
  EXPECT_EQ(contents->cases[0].canonical_action(), "refund/400");
  EXPECT_EQ(contents->cases[1].case_().id(), "case_2");
  ASSERT_THAT(contents->trigger_stats, SizeIs(1));
  EXPECT_EQ(contents->trigger_stats[0].stats().fired(), 3u);
  EXPECT_THAT(contents->trigger_stats[0].decision_ms(), ElementsAre(1200));
  absl::StatusOr<std::vector<::agate::v1::Transition>> transitions = store->LoadTransitions(1);
  ASSERT_TRUE(transitions.ok());
  ASSERT_THAT(*transitions, SizeIs(2));
  EXPECT_EQ((*transitions)[1].event(), "rejected");
  absl::StatusOr<std::vector<cases::DecisionRow>> rows =
      store->LoadDecisions(clock_.Now() - absl::Minutes(1));
  ASSERT_TRUE(rows.ok());
  ASSERT_THAT(*rows, SizeIs(1));
  EXPECT_EQ((*rows)[0].key, std::string("t\0r1", 4));
  EXPECT_EQ((*rows)[0].response, "R1");
}

TEST_F(SqliteStoreTest, ForgottenCasesAreDeletedWithTheirTransitions) {
  std::unique_ptr<SqliteStore> store = Open();
  cases::JournalBatch batch;
  batch.cases = {Case(1, ::agate::v1::CASE_STATE_RESOLVED), Case(2, ::agate::v1::CASE_STATE_OPEN)};
  batch.transitions = {Transition(1, "opened"), Transition(2, "opened")};
  ASSERT_TRUE(store->Commit(batch).ok());
  cases::JournalBatch forget;
  forget.forgotten = {1};
  ASSERT_TRUE(store->Commit(forget).ok());
  absl::StatusOr<cases::JournalContents> contents = store->LoadCases();
  ASSERT_THAT(contents->cases, SizeIs(1));
  EXPECT_EQ(contents->cases[0].seq(), 2u);
  EXPECT_THAT(*store->LoadTransitions(1), SizeIs(0));
  EXPECT_THAT(*store->LoadTransitions(2), SizeIs(1));
}

TEST_F(SqliteStoreTest, QueuedDecisionsAreWrittenInTheBackgroundAndPrunedAfterTheWindow) {
  std::unique_ptr<SqliteStore> store = Open({.decision_retention = absl::Minutes(10)});
  for (int i = 0; i < 100; ++i) {
    store->EnqueueDecision(
        {.key = absl::StrCat("k", i), .digest = "d", .response = "R", .decided_at = clock_.Now()});
  }
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(store->stats().decisions_written, 100u);
  EXPECT_THAT(*store->LoadDecisions(clock_.Now() - absl::Minutes(10)), SizeIs(100));
  // The same key again is kept too, after the first: read back oldest first, the first answer
  // stands in the idempotency cache.
  store->EnqueueDecision(
      {.key = "k0", .digest = "other", .response = "X", .decided_at = clock_.Now()});
  ASSERT_TRUE(store->Flush().ok());
  absl::StatusOr<std::vector<cases::DecisionRow>> rows =
      store->LoadDecisions(clock_.Now() - absl::Minutes(10));
  ASSERT_THAT(*rows, SizeIs(101));
  EXPECT_EQ((*rows)[0].key, "k0");
  EXPECT_EQ((*rows)[0].digest, "d");
  EXPECT_EQ((*rows)[100].digest, "other");

  // The writer prunes rows older than the window (it checks every 10 s of the clock).
  clock_.Advance(absl::Minutes(11));
  for (int i = 0; i < 200 && !store->LoadDecisions(absl::InfinitePast())->empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_THAT(*store->LoadDecisions(absl::InfinitePast()), SizeIs(0));
}

TEST_F(SqliteStoreTest, OnlyTheNewestMaxDecisionsAreKeptAndLoaded) {
  std::unique_ptr<SqliteStore> store = Open({.max_decisions = 30});
  for (int i = 0; i < 100; ++i) {
    clock_.Advance(absl::Milliseconds(1));
    store->EnqueueDecision(
        {.key = absl::StrCat("k", i), .digest = "d", .response = "R", .decided_at = clock_.Now()});
  }
  ASSERT_TRUE(store->Flush().ok());
  absl::StatusOr<std::vector<cases::DecisionRow>> newest =
      store->LoadDecisions(absl::InfinitePast(), 10);
  ASSERT_THAT(*newest, SizeIs(10));
  EXPECT_EQ((*newest)[0].key, "k90");  // oldest first among the newest ten
  EXPECT_EQ((*newest)[9].key, "k99");
  clock_.Advance(absl::Seconds(11));  // the writer prunes every 10 s of the clock
  for (int i = 0; i < 200 && store->LoadDecisions(absl::InfinitePast())->size() > 31; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  absl::StatusOr<std::vector<cases::DecisionRow>> kept = store->LoadDecisions(absl::InfinitePast());
  EXPECT_LE(kept->size(), 31u);
  EXPECT_GE(kept->size(), 30u);
  EXPECT_EQ(kept->back().key, "k99");
}

TEST_F(SqliteStoreTest, QueuedDecisionsAreWrittenWhenTheStoreCloses) {
  {
    std::unique_ptr<SqliteStore> store = Open({.flush_interval = absl::Hours(1)});
    store->EnqueueDecision(
        {.key = "k", .digest = "d", .response = "R", .decided_at = clock_.Now()});
  }
  EXPECT_THAT(*Open()->LoadDecisions(absl::InfinitePast()), SizeIs(1));
}

TEST_F(SqliteStoreTest, CountWindowsRoundTrip) {
  std::unique_ptr<SqliteStore> store = Open();
  v1::StoredSignalSeries s;
  s.set_key(std::string("t\0w\0retry", 9));
  s.add_seconds(100);
  s.add_counts(3);
  ASSERT_TRUE(store->SaveSignals({s}).ok());
  ASSERT_TRUE(store->SaveSignals({s, s}).ok());  // replaced, not appended
  absl::StatusOr<std::vector<v1::StoredSignalSeries>> loaded = store->LoadSignals();
  ASSERT_THAT(*loaded, SizeIs(1));
  EXPECT_EQ((*loaded)[0].key(), s.key());
  EXPECT_THAT((*loaded)[0].counts(), ElementsAre(3));
}

TEST_F(SqliteStoreTest, ASecondServerOnTheSameDataDirIsRefusedWithThePid) {
  std::unique_ptr<SqliteStore> first = Open();
  absl::StatusOr<std::unique_ptr<SqliteStore>> second = SqliteStore::Open({.dir = dir_}, clock_);
  EXPECT_THAT(second.status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(dir_), HasSubstr("in use by another agate-server"),
                             HasSubstr(absl::StrCat("pid ", getpid())))));
  first.reset();
  EXPECT_TRUE(SqliteStore::Open({.dir = dir_}, clock_).ok());
}

TEST_F(SqliteStoreTest, ACorruptDatabaseIsDataLossWithAdvice) {
  fs::create_directories(dir_);
  std::ofstream(dir_ + "/agate.db") << std::string(8192, 'z');
  absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open({.dir = dir_}, clock_);
  EXPECT_THAT(s.status(), StatusIs(absl::StatusCode::kDataLoss,
                                   AllOf(HasSubstr(dir_ + "/agate.db"), HasSubstr("backup"))));
}

TEST_F(SqliteStoreTest, ADamagedPageIsDataLoss) {
  {
    std::unique_ptr<SqliteStore> store = Open();
    cases::JournalBatch batch;
    for (uint64_t i = 1; i <= 50; ++i)
      batch.cases.push_back(Case(i, ::agate::v1::CASE_STATE_OPEN, 2000));
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  // Fold the WAL into the file, then scribble over a page in the middle.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/agate.db").c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  {
    std::fstream f(dir_ + "/agate.db", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 5);
    f << std::string(4096, '\x7f');
  }
  absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open({.dir = dir_}, clock_);
  if (s.ok()) {
    // quick_check may pass a damaged overflow page; reading the cases must then fail cleanly.
    EXPECT_FALSE((*s)->LoadCases().ok());
  } else {
    EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
  }
}

TEST_F(SqliteStoreTest, ADatabaseFromANewerAgateIsRefused) {
  Open().reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/agate.db").c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  EXPECT_THAT(SqliteStore::Open({.dir = dir_}, clock_).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("schema version 99"), HasSubstr("newer agate"))));
}

TEST_F(SqliteStoreTest, ADataDirThatIsAFileIsAClearError) {
  std::ofstream(dir_) << "not a dir";
  absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open({.dir = dir_}, clock_);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(dir_));
  fs::remove(dir_);
  EXPECT_THAT(SqliteStore::Open({.dir = ""}, clock_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--data-dir")));
}

TEST_F(SqliteStoreTest, AFullStoreFailsTheCommitAndKeepsWhatWasCommitted) {
  std::unique_ptr<SqliteStore> store = Open({.max_bytes = 256 * 1024});
  uint64_t seq = 1;
  absl::Status status;
  for (; seq < 1000 && status.ok(); ++seq) {
    cases::JournalBatch batch;
    batch.cases = {Case(seq, ::agate::v1::CASE_STATE_OPEN, 16 * 1024)};
    batch.transitions = {Transition(seq, "opened")};
    status = store->Commit(batch);
  }
  ASSERT_FALSE(status.ok()) << "the cap never filled";
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable,
                               AllOf(HasSubstr(dir_ + "/agate.db"), HasSubstr("full"))));
  EXPECT_EQ(store->stats().commit_errors, 1u);
  const uint64_t committed = seq - 2;
  // The failed batch left nothing behind; the store still reads and takes small writes.
  absl::StatusOr<cases::JournalContents> contents = store->LoadCases();
  ASSERT_TRUE(contents.ok());
  EXPECT_THAT(contents->cases, SizeIs(committed));
  cases::JournalBatch small;
  small.forgotten = {1};
  EXPECT_TRUE(store->Commit(small).ok());
  store.reset();
  EXPECT_THAT(Open()->LoadCases()->cases, SizeIs(committed - 1));
}

}  // namespace
}  // namespace agate::store
