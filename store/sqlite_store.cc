#include "store/sqlite_store.h"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace agate::store {
namespace {

// The schema this code writes (PRAGMA user_version). A newer one is refused; an older one is
// brought up to date (version 2 added kill_switches, created below like every table; trigger
// statistics per tenant are new keys in the same table).
constexpr int kSchemaVersion = 2;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS cases (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  state INTEGER NOT NULL,
  record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS transitions (
  case_seq INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  state INTEGER NOT NULL,
  event TEXT NOT NULL,
  actor TEXT NOT NULL,
  comment TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_by_case ON transitions(case_seq);
CREATE TABLE IF NOT EXISTS trigger_stats (
  trigger_id TEXT PRIMARY KEY,
  record BLOB NOT NULL
);
-- Appended in decision order and only read back in bulk at start-up: no index, so an insert
-- is an append (a key index made each insert several B-tree updates). Duplicates of a key can
-- occur (a request racing with itself); the first one read back stands.
CREATE TABLE IF NOT EXISTS decisions (
  decided_ms INTEGER NOT NULL,
  key BLOB NOT NULL,
  digest BLOB NOT NULL,
  response BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS signals (
  key BLOB PRIMARY KEY,
  record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kill_switches (
  key BLOB PRIMARY KEY,
  record BLOB NOT NULL
);
)sql";

// TriggerStatsKey is the trigger_stats row of (trigger, tenant). Rows written before statistics
// were per tenant are keyed by the trigger id alone (their tenant is "").
std::string TriggerStatsKey(const store::v1::StoredTriggerStats& s) {
  if (s.tenant_id().empty()) return s.stats().trigger_id();
  return absl::StrCat(s.tenant_id().size(), "\x01", s.tenant_id(), s.stats().trigger_id());
}

}  // namespace

// StatementCache keeps every statement the store runs prepared, keyed by its SQL text's address
// (each call site passes a literal): parsing the SQL of a commit cost more than the commit.
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  ~StatementCache() {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  }
  // Get returns sql's statement, prepared on first use; null (and *rc) if it does not prepare.
  sqlite3_stmt* Get(const char* sql, int* rc) {
    auto [it, inserted] = statements_.try_emplace(sql, nullptr);
    if (inserted) {
      *rc = sqlite3_prepare_v2(db_, sql, -1, &it->second, nullptr);
      if (*rc != SQLITE_OK) {
        sqlite3_finalize(it->second);
        statements_.erase(it);
        return nullptr;
      }
    }
    return it->second;
  }

 private:
  sqlite3* db_;
  absl::flat_hash_map<const char*, sqlite3_stmt*> statements_;
};

namespace {

// Statement runs a prepared statement: one of the store's cached ones (reset for the next use on
// scope exit) or, at Open, a one-off (finalized on scope exit).
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : owned_(true) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  Statement(StatementCache& cache, const char* sql) : owned_(false) {
    stmt_ = cache.Get(sql, &rc_);
  }
  ~Statement() {
    if (owned_) {
      sqlite3_finalize(stmt_);
    } else if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return rc_ == SQLITE_OK || rc_ == SQLITE_ROW || rc_ == SQLITE_DONE; }
  Statement& Bind(int i, int64_t v) {
    Check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Statement& Bind(int i, absl::string_view v) {
    Check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& BindBlob(int i, absl::string_view v) {
    Check(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  // Step runs the statement once: true while it yields rows.
  bool Step() {
    if (!ok()) return false;
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) rc_ = rc;
    return false;
  }
  // Run steps until done and resets the statement for the next bindings.
  bool Run() {
    while (Step()) {
    }
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return ok();
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  absl::string_view Blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    return absl::string_view(static_cast<const char*>(p),
                             static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  absl::string_view Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return absl::string_view(reinterpret_cast<const char*>(p),
                             static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && ok()) rc_ = rc;
  }
  const bool owned_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

absl::Status OpenError(absl::string_view path, absl::string_view why) {
  return absl::UnavailableError(absl::StrCat("data dir ", path, ": ", why));
}

// LockDir takes an exclusive flock on dir/LOCK and writes our pid into it.
absl::StatusOr<int> LockDir(const std::string& dir) {
  const std::string path = absl::StrCat(dir, "/LOCK");
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return OpenError(dir, absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    if (err == EWOULDBLOCK) {
      std::string holder(buf, n > 0 ? static_cast<size_t>(n) : 0);
      return absl::FailedPreconditionError(absl::StrCat(
          "data dir ", dir, " is in use by another agate-server",
          holder.empty() ? "" : absl::StrCat(" (pid ", absl::StripAsciiWhitespace(holder), ")"),
          "; one data dir serves one server"));
    }
    return OpenError(dir, absl::StrCat("cannot lock ", path, ": ", std::strerror(err)));
  }
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock holds regardless; the pid is only informative.
  }
  return fd;
}

int64_t ToMillis(absl::Time t) { return absl::ToUnixMillis(t); }

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(SqliteStoreOptions options,
                                                               const Clock& clock) {
  if (options.dir.empty()) return absl::InvalidArgumentError("--data-dir: empty path");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return OpenError(options.dir, absl::StrCat("cannot create it: ", ec.message()));
  if (!std::filesystem::is_directory(options.dir, ec)) {
    return OpenError(options.dir, "not a directory");
  }
  ASSIGN_OR_RETURN(const int lock_fd, LockDir(options.dir));
  auto unlock = absl::MakeCleanup([lock_fd] { close(lock_fd); });

  const std::string path = absl::StrCat(options.dir, "/agate.db");
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto close_db = absl::MakeCleanup([&db] { sqlite3_close_v2(db); });
  if (rc != SQLITE_OK) {
    return OpenError(options.dir, absl::StrCat("cannot open ", path, ": ",
                                               db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);

  // Corruption shows here: a file that is not a database fails the first read.
  auto fail = [&](absl::string_view what) -> absl::Status {
    const int code = sqlite3_errcode(db) & 0xff;
    const std::string message = absl::StrCat(path, ": ", what, ": ", sqlite3_errmsg(db));
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
      return absl::DataLossError(absl::StrCat(
          "data dir ", options.dir, ": ", message,
          "; the database is damaged: restore it from a backup, or move the data dir away to "
          "start empty"));
    }
    return OpenError(options.dir, message);
  };
  int user_version = 0;
  {
    Statement version(db, "PRAGMA user_version");
    if (!version.Step() && !version.ok()) return fail("cannot read the schema version");
    user_version = static_cast<int>(version.Int(0));
  }
  if (user_version > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("data dir ", options.dir, ": ", path, " has schema version ", user_version,
                     ", written by a newer agate (this one reads up to ", kSchemaVersion, ")"));
  }
  {
    Statement mode(db, "PRAGMA journal_mode=WAL");
    if (!mode.Step()) return fail("cannot switch to WAL mode");
    if (mode.Text(0) != "wal") {
      return OpenError(options.dir, absl::StrCat(path, ": WAL mode refused (journal_mode is ",
                                                 mode.Text(0), ")"));
    }
  }
  {
    Statement check(db, "PRAGMA quick_check");
    if (!check.Step()) return fail("integrity check failed");
    if (check.Text(0) != "ok") {
      return absl::DataLossError(absl::StrCat(
          "data dir ", options.dir, ": ", path, " failed its integrity check: ", check.Text(0),
          "; restore it from a backup, or move the data dir away to start empty"));
    }
  }
  const std::string pragmas = absl::StrCat("PRAGMA synchronous=", options.fsync ? "FULL" : "NORMAL",
                                           "; PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;");
  char* err = nullptr;
  if (sqlite3_exec(db, pragmas.c_str(), nullptr, nullptr, &err) != SQLITE_OK ||
      sqlite3_exec(db, kSchema, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string message = err ? err : "unknown error";
    sqlite3_free(err);
    return OpenError(options.dir, absl::StrCat(path, ": cannot create the schema: ", message));
  }
  if (user_version < kSchemaVersion) {
    const std::string set = absl::StrCat("PRAGMA user_version=", kSchemaVersion);
    if (sqlite3_exec(db, set.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      return fail("cannot write the schema version");
    }
  }
  if (options.max_bytes > 0) {
    Statement page(db, "PRAGMA page_size");
    page.Step();
    const int64_t page_size = std::max<int64_t>(512, page.Int(0));
    const std::string cap = absl::StrCat("PRAGMA max_page_count=",
                                         std::max<uint64_t>(1, options.max_bytes / page_size));
    sqlite3_exec(db, cap.c_str(), nullptr, nullptr, nullptr);
  }

  std::move(close_db).Cancel();
  std::move(unlock).Cancel();
  return std::unique_ptr<SqliteStore>(
      new SqliteStore(std::move(options), clock, db, lock_fd, path));
}

SqliteStore::SqliteStore(SqliteStoreOptions options, const Clock& clock, sqlite3* db, int lock_fd,
                         std::string path)
    : options_(std::move(options)),
      clock_(clock),
      lock_fd_(lock_fd),
      path_(std::move(path)),
      db_(db),
      statements_(std::make_unique<StatementCache>(db)) {
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "agate-store");
    Run();
  });
}

SqliteStore::~SqliteStore() {
  {
    absl::MutexLock lock(&queue_mu_);
    stop_ = true;
  }
  writer_.join();
  Flush().IgnoreError();
  absl::MutexLock lock(&mu_);
  statements_.reset();
  sqlite3_close_v2(db_);
  close(lock_fd_);
}

absl::Status SqliteStore::Error(absl::string_view what) const {
  const int code = sqlite3_errcode(db_) & 0xff;
  std::string message =
      absl::StrCat("durable store ", path_, ": ", what, ": ", sqlite3_errmsg(db_));
  if (code == SQLITE_FULL) absl::StrAppend(&message, " (the disk or --max-store-bytes is full)");
  return absl::UnavailableError(message);
}

absl::Status SqliteStore::Exec(const char* sql) {
  if (!Statement(*statements_, sql).Run()) return Error(sql);
  return absl::OkStatus();
}

absl::Status SqliteStore::Commit(const cases::JournalBatch& batch) {
  if (batch.empty()) return absl::OkStatus();
  const absl::Time started = absl::Now();  // latency: real time, whatever clock_ says
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status status = [&]() -> absl::Status {
    Statement upsert(*statements_,
                     "INSERT INTO cases(seq, id, state, record) VALUES(?1, ?2, ?3, ?4) "
                     "ON CONFLICT(seq) DO UPDATE SET state = excluded.state, "
                     "record = excluded.record");
    std::string bytes;
    for (const store::v1::StoredCase& c : batch.cases) {
      bytes.clear();
      c.SerializeToString(&bytes);
      upsert.Bind(1, static_cast<int64_t>(c.seq()))
          .Bind(2, c.case_().id())
          .Bind(3, static_cast<int64_t>(c.case_().state()))
          .BindBlob(4, bytes);
      if (!upsert.Run()) return Error("cannot write a case");
    }
    Statement transition(*statements_,
                         "INSERT INTO transitions(case_seq, time_ms, state, event, actor, "
                         "comment) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    for (const cases::JournalTransition& t : batch.transitions) {
      transition.Bind(1, static_cast<int64_t>(t.case_seq))
          .Bind(2, ToMillis(FromTimestamp(t.transition.time())))
          .Bind(3, static_cast<int64_t>(t.transition.state()))
          .Bind(4, t.transition.event())
          .Bind(5, t.transition.actor())
          .Bind(6, t.transition.comment());
      if (!transition.Run()) return Error("cannot write a transition");
    }
    Statement forget_case(*statements_, "DELETE FROM cases WHERE seq = ?1");
    Statement forget_transitions(*statements_, "DELETE FROM transitions WHERE case_seq = ?1");
    for (uint64_t seq : batch.forgotten) {
      if (!forget_case.Bind(1, static_cast<int64_t>(seq)).Run() ||
          !forget_transitions.Bind(1, static_cast<int64_t>(seq)).Run()) {
        return Error("cannot forget a closed case");
      }
    }
    Statement stats(*statements_,
                    "INSERT INTO trigger_stats(trigger_id, record) VALUES(?1, ?2) "
                    "ON CONFLICT(trigger_id) DO UPDATE SET record = excluded.record");
    for (const store::v1::StoredTriggerStats& s : batch.trigger_stats) {
      bytes.clear();
      s.SerializeToString(&bytes);
      if (!stats.Bind(1, TriggerStatsKey(s)).BindBlob(2, bytes).Run()) {
        return Error("cannot write trigger statistics");
      }
    }
    Statement engage(*statements_,
                     "INSERT INTO kill_switches(key, record) VALUES(?1, ?2) "
                     "ON CONFLICT(key) DO UPDATE SET record = excluded.record");
    Statement lift(*statements_, "DELETE FROM kill_switches WHERE key = ?1");
    for (const store::v1::StoredKillSwitch& k : batch.kill_switches) {
      bytes.clear();
      k.SerializeToString(&bytes);
      const bool ok = k.switch_().engaged() ? engage.BindBlob(1, k.key()).BindBlob(2, bytes).Run()
                                            : lift.BindBlob(1, k.key()).Run();
      if (!ok) return Error("cannot write a kill switch");
    }
    Statement decision(*statements_,
                       "INSERT INTO decisions(key, digest, decided_ms, response) "
                       "VALUES(?1, ?2, ?3, ?4)");
    for (const cases::DecisionRow& row : batch.decisions) {
      if (!decision.BindBlob(1, row.key)
               .BindBlob(2, row.digest)
               .Bind(3, ToMillis(row.decided_at))
               .BindBlob(4, row.response)
               .Run()) {
        return Error("cannot write a decision");
      }
    }
    return absl::OkStatus();
  }();
  if (status.ok()) status = Exec("COMMIT");
  if (!status.ok()) {
    Exec("ROLLBACK").IgnoreError();
    ++stats_.commit_errors;
    return status;
  }
  AddCommit(absl::ToDoubleSeconds(absl::Now() - started), &stats_);
  return absl::OkStatus();
}

void SqliteStore::EnqueueDecision(cases::DecisionRow row) {
  absl::MutexLock lock(&queue_mu_);
  if (queue_.size() >= options_.max_queued_decisions) {
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back(std::move(row));
}

absl::Status SqliteStore::WriteDecisions(const std::deque<cases::DecisionRow>& rows) {
  if (rows.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Statement insert(*statements_,
                   "INSERT INTO decisions(key, digest, decided_ms, response) "
                   "VALUES(?1, ?2, ?3, ?4)");
  for (const cases::DecisionRow& row : rows) {
    if (!insert.BindBlob(1, row.key)
             .BindBlob(2, row.digest)
             .Bind(3, ToMillis(row.decided_at))
             .BindBlob(4, row.response)
             .Run()) {
      absl::Status error = Error("cannot write a decision");
      Exec("ROLLBACK").IgnoreError();
      return error;
    }
  }
  if (absl::Status s = Exec("COMMIT"); !s.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return s;
  }
  stats_.decisions_written += rows.size();
  return absl::OkStatus();
}

absl::Status SqliteStore::Flush() {
  std::deque<cases::DecisionRow> rows;
  {
    absl::MutexLock lock(&queue_mu_);
    rows.swap(queue_);
  }
  absl::MutexLock lock(&mu_);
  absl::Status status = WriteDecisions(rows);
  if (status.ok()) return status;
  ++stats_.decision_write_errors;
  // Keep the rows for the next flush (the newest, up to the bound).
  absl::MutexLock queue_lock(&queue_mu_);
  while (!rows.empty() && queue_.size() < options_.max_queued_decisions) {
    queue_.push_front(std::move(rows.back()));
    rows.pop_back();
  }
  dropped_ += rows.size();
  return status;
}

void SqliteStore::Run() {
  absl::Time next_prune = clock_.Now();
  for (;;) {
    bool stop = false;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.flush_interval);
      stop = stop_;
    }
    // A failed write keeps the rows queued (bounded) and is counted in stats for the server to
    // report; a row that never gets written only means a retry after a restart is evaluated again.
    Flush().IgnoreError();
    const absl::Time now = clock_.Now();
    if (now >= next_prune) {
      next_prune = now + absl::Seconds(10);
      absl::MutexLock lock(&mu_);
      Statement prune(
          *statements_,
          // Rows are in decision order: the expired ones are a prefix, found by
          // scanning from the oldest to the first row inside the window.
          "DELETE FROM decisions WHERE rowid <= (SELECT max(rowid) FROM decisions) - ?2 "
          "OR rowid < coalesce((SELECT rowid FROM decisions WHERE decided_ms >= ?1 "
          "ORDER BY rowid LIMIT 1), (SELECT coalesce(max(rowid), 0) + 1 FROM decisions))");
      prune.Bind(1, ToMillis(now - options_.decision_retention))
          .Bind(2, static_cast<int64_t>(options_.max_decisions))
          .Run();
    }
    if (stop) return;
  }
}

absl::StatusOr<cases::JournalContents> SqliteStore::LoadCases() {
  absl::MutexLock lock(&mu_);
  cases::JournalContents contents;
  Statement cases(*statements_, "SELECT seq, record FROM cases ORDER BY seq");
  while (cases.Step()) {
    store::v1::StoredCase& c = contents.cases.emplace_back();
    const absl::string_view bytes = cases.Blob(1);
    if (!c.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
        c.seq() != static_cast<uint64_t>(cases.Int(0))) {
      return absl::DataLossError(absl::StrCat("durable store ", path_, ": case with seq ",
                                              cases.Int(0), " is unreadable"));
    }
  }
  if (!cases.ok()) return Error("cannot read the cases");
  Statement stats(*statements_, "SELECT trigger_id, record FROM trigger_stats ORDER BY trigger_id");
  while (stats.Step()) {
    store::v1::StoredTriggerStats& s = contents.trigger_stats.emplace_back();
    const absl::string_view bytes = stats.Blob(1);
    if (!s.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::DataLossError(absl::StrCat("durable store ", path_, ": statistics of trigger ",
                                              stats.Text(0), " are unreadable"));
    }
  }
  if (!stats.ok()) return Error("cannot read the trigger statistics");
  Statement kills(*statements_, "SELECT record FROM kill_switches ORDER BY rowid");
  while (kills.Step()) {
    store::v1::StoredKillSwitch& k = contents.kill_switches.emplace_back();
    const absl::string_view bytes = kills.Blob(0);
    if (!k.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::DataLossError(
          absl::StrCat("durable store ", path_, ": a kill switch is unreadable"));
    }
  }
  if (!kills.ok()) return Error("cannot read the kill switches");
  return contents;
}

absl::StatusOr<std::vector<cases::DecisionRow>> SqliteStore::LoadDecisions(absl::Time since,
                                                                           size_t limit) {
  absl::MutexLock lock(&mu_);
  std::vector<cases::DecisionRow> rows;
  Statement select(*statements_,
                   "SELECT key, digest, decided_ms, response FROM decisions "
                   "WHERE decided_ms >= ?1 ORDER BY rowid DESC LIMIT ?2");
  select.Bind(1, ToMillis(since)).Bind(2, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  while (select.Step()) {
    cases::DecisionRow& row = rows.emplace_back();
    row.key = std::string(select.Blob(0));
    row.digest = std::string(select.Blob(1));
    row.decided_at = absl::FromUnixMillis(select.Int(2));
    row.response = std::string(select.Blob(3));
  }
  if (!select.ok()) return Error("cannot read the decisions");
  std::reverse(rows.begin(), rows.end());
  return rows;
}

absl::StatusOr<std::vector<::agate::v1::Transition>> SqliteStore::LoadTransitions(
    uint64_t case_seq) {
  absl::MutexLock lock(&mu_);
  std::vector<::agate::v1::Transition> out;
  Statement select(*statements_,
                   "SELECT time_ms, state, event, actor, comment FROM transitions "
                   "WHERE case_seq = ?1 ORDER BY rowid");
  select.Bind(1, static_cast<int64_t>(case_seq));
  while (select.Step()) {
    ::agate::v1::Transition& t = out.emplace_back();
    *t.mutable_time() = ToTimestamp(absl::FromUnixMillis(select.Int(0)));
    t.set_state(static_cast<::agate::v1::CaseState>(select.Int(1)));
    t.set_event(std::string(select.Text(2)));
    t.set_actor(std::string(select.Text(3)));
    t.set_comment(std::string(select.Text(4)));
  }
  if (!select.ok()) return Error("cannot read the transitions");
  return out;
}

absl::Status SqliteStore::SaveSignals(const std::vector<store::v1::StoredSignalSeries>& series) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status status = Exec("DELETE FROM signals");
  Statement insert(*statements_, "INSERT OR REPLACE INTO signals(key, record) VALUES(?1, ?2)");
  std::string bytes;
  for (size_t i = 0; status.ok() && i < series.size(); ++i) {
    bytes.clear();
    series[i].SerializeToString(&bytes);
    if (!insert.BindBlob(1, series[i].key()).BindBlob(2, bytes).Run()) {
      status = Error("cannot write the count() windows");
    }
  }
  if (status.ok()) status = Exec("COMMIT");
  if (!status.ok()) Exec("ROLLBACK").IgnoreError();
  return status;
}

absl::StatusOr<std::vector<store::v1::StoredSignalSeries>> SqliteStore::LoadSignals() {
  absl::MutexLock lock(&mu_);
  std::vector<store::v1::StoredSignalSeries> out;
  Statement select(*statements_, "SELECT record FROM signals");
  while (select.Step()) {
    const absl::string_view bytes = select.Blob(0);
    if (!out.emplace_back().ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::DataLossError(
          absl::StrCat("durable store ", path_, ": a stored count() window is unreadable"));
    }
  }
  if (!select.ok()) return Error("cannot read the count() windows");
  return out;
}

SqliteStore::Stats SqliteStore::stats() const {
  Stats out;
  {
    absl::MutexLock lock(&mu_);
    out = stats_;
  }
  absl::MutexLock lock(&queue_mu_);
  out.decisions_dropped = dropped_;
  return out;
}

}  // namespace agate::store
