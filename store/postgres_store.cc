#include "store/postgres_store.h"

#include <libpq-fe.h>
#include <pthread.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "cases/case_store.h"
#include "common/status_macros.h"

namespace agate::store {
namespace {

// pg_advisory_xact_lock key of a turn (one at a time across every replica), and the
// pg_advisory_lock key Open holds while it creates or migrates the schema.
constexpr int64_t kLockKey = 0x61676174650001;     // "agate" 1
constexpr int64_t kMigrateKey = 0x61676174650002;  // "agate" 2
// pg_try_advisory_lock(kReplicaClass, hashtext(replica)): held by a replica's turn connection, so
// two running servers cannot share a replica name (each would skip the other's changes as its own).
constexpr int32_t kReplicaClass = 0x61676174;  // "agat"

// The index that keeps one OPEN case per open key; a unique violation naming it is the guard.
constexpr char kOpenKeyIndex[] = "agate_cases_open_key";

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS agate_cases (
  seq bigint PRIMARY KEY,
  id text UNIQUE NOT NULL,
  tenant_id text NOT NULL,
  state text NOT NULL,
  open_key bytea NOT NULL,
  redeemed_at timestamptz,
  body bytea NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS agate_cases_open_key ON agate_cases(open_key)
  WHERE state = 'OPEN';
CREATE TABLE IF NOT EXISTS agate_transitions (
  case_seq bigint NOT NULL,
  n bigserial,
  body bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS agate_transitions_by_case ON agate_transitions(case_seq, n);
CREATE TABLE IF NOT EXISTS agate_trigger_stats (
  trigger_id text NOT NULL,
  tenant_id text NOT NULL,
  body bytea NOT NULL,
  PRIMARY KEY (trigger_id, tenant_id)
);
CREATE TABLE IF NOT EXISTS agate_kill_switches (
  key bytea PRIMARY KEY,
  n bigserial,
  body bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS agate_decisions (
  key bytea PRIMARY KEY,
  digest bytea NOT NULL,
  response bytea NOT NULL,
  decided_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS agate_decisions_by_time ON agate_decisions(decided_at);
CREATE TABLE IF NOT EXISTS agate_changes (
  id bigint PRIMARY KEY,
  replica text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  body bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS agate_changes_by_time ON agate_changes(at);
-- One row: the last change id handed out (ids are taken under the turn lock, so they commit in
-- order and a rolled-back id is handed out again) and the newest id pruned from the feed (a
-- replica that has not seen past it reloads in full).
CREATE TABLE IF NOT EXISTS agate_feed (
  last_id bigint NOT NULL,
  pruned_upto bigint NOT NULL
);
INSERT INTO agate_feed(last_id, pruned_upto) SELECT 0, 0 WHERE NOT EXISTS (SELECT FROM agate_feed);
CREATE TABLE IF NOT EXISTS agate_signals (
  replica text PRIMARY KEY,
  body bytea NOT NULL
);
)sql";

// A timestamptz from Unix microseconds (a bigint parameter), and back.
#define AGATE_PG_TIME(param) "(timestamptz 'epoch' + " param "::bigint * interval '1 microsecond')"
#define AGATE_PG_MICROS(column) "(extract(epoch FROM " column ") * 1000000)::bigint"

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

// One statement parameter: text (numbers, ids) or binary (bytea: serialized protos, keys).
struct Param {
  std::string value;
  bool binary = false;
};
Param Text(absl::string_view v) { return {std::string(v), false}; }
Param Int(int64_t v) { return {absl::StrCat(v), false}; }
Param Bytes(absl::string_view v) { return {std::string(v), true}; }
// Times past PostgreSQL's timestamptz range (absl::InfinitePast() as "since") are clamped to it.
Param Micros(absl::Time t) {
  const absl::Time first = absl::FromUnixSeconds(-62135596800);  // 0001-01-01
  const absl::Time last = absl::FromUnixSeconds(253402300799);   // 9999-12-31
  return Int(absl::ToUnixMicros(std::clamp(t, first, last)));
}

// Results are binary: bigint columns arrive as 8 bytes in network order, text and bytea raw.
int64_t IntAt(const PGresult* r, int row, int col) {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) return 0;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return static_cast<int64_t>(v);
}
absl::string_view BytesAt(const PGresult* r, int row, int col) {
  return absl::string_view(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}

std::string Message(const PGconn* conn, const PGresult* result) {
  const char* m = result != nullptr ? PQresultErrorMessage(result) : "";
  if (m == nullptr || *m == '\0') m = PQerrorMessage(conn);
  std::string out(absl::StripTrailingAsciiWhitespace(m != nullptr ? m : ""));
  return out.empty() ? "unknown error" : out;
}

absl::string_view StateText(::agate::v1::CaseState state) {
  switch (state) {
    case ::agate::v1::CASE_STATE_OPEN:
      return "OPEN";
    case ::agate::v1::CASE_STATE_APPROVED:
      return "APPROVED";
    case ::agate::v1::CASE_STATE_REJECTED:
      return "REJECTED";
    case ::agate::v1::CASE_STATE_RESOLVED:
      return "RESOLVED";
    case ::agate::v1::CASE_STATE_EXPIRED:
      return "EXPIRED";
    default:
      return "UNSPECIFIED";
  }
}

// WithoutPassword returns a libpq URL or keyword/value connection string with its password
// removed, for messages.
std::string WithoutPassword(absl::string_view url) {
  std::string out;
  for (absl::string_view scheme : {"postgresql://", "postgres://"}) {
    if (!absl::StartsWith(url, scheme)) continue;
    absl::string_view rest = url.substr(scheme.size());
    const size_t end = std::min(rest.find('/'), rest.find('?'));
    const size_t at = rest.substr(0, end).rfind('@');
    if (at != absl::string_view::npos) {
      absl::string_view user = rest.substr(0, at);
      user = user.substr(0, user.find(':'));
      out = absl::StrCat(scheme, user, rest.substr(at));
    } else {
      out = std::string(url);
    }
    break;
  }
  if (out.empty()) out = std::string(url);
  // password=... in a keyword string or a URL's query.
  for (size_t pos = 0; (pos = out.find("password", pos)) != std::string::npos;) {
    const bool word_start =
        pos == 0 || out[pos - 1] == ' ' || out[pos - 1] == '?' || out[pos - 1] == '&';
    size_t eq = pos + 8;
    while (eq < out.size() && out[eq] == ' ') ++eq;
    if (!word_start || eq >= out.size() || out[eq] != '=') {
      pos += 8;
      continue;
    }
    size_t value = eq + 1;
    while (value < out.size() && out[value] == ' ') ++value;
    size_t end = value;
    if (end < out.size() && out[end] == '\'') {
      for (++end; end < out.size() && out[end] != '\''; ++end) {
        if (out[end] == '\\') ++end;
      }
      if (end < out.size()) ++end;
    } else {
      while (end < out.size() && out[end] != ' ' && out[end] != '&') ++end;
    }
    // Drop the separator before (or after) the pair too.
    size_t from = pos;
    if (from > 0 && (out[from - 1] == ' ' || out[from - 1] == '&')) {
      --from;
    } else if (end < out.size() && (out[end] == ' ' || out[end] == '&')) {
      ++end;
    }
    out.erase(from, end - from);
    if (!out.empty() && out.back() == '?') out.pop_back();
    pos = from;
  }
  return out;
}

}  // namespace

// Connection is one libpq connection with the session settings of a turn.
struct PostgresStore::Connection {
  PGconn* conn = nullptr;
  ~Connection() {
    if (conn != nullptr) PQfinish(conn);
  }
  bool ok() const { return conn != nullptr && PQstatus(conn) == CONNECTION_OK; }
};

namespace {

std::string Millis(absl::Duration d) {
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresStore::Connection>> PostgresStore::Connect(
    absl::string_view role) const {
  const std::string connect_timeout =
      absl::StrCat(std::max<int64_t>(2, absl::ToInt64Seconds(options_.turn_timeout)));
  const std::string application_name = absl::StrCat("agate ", options_.replica, role).substr(0, 63);
  // A query on a half-open connection (unacknowledged data: keepalives do not fire) fails after
  // this, not after TCP's retransmissions give up (~15 min) with the case store's lock held.
  const std::string user_timeout = Millis(options_.turn_timeout);
  // Ours first: the URL's own settings (last) override them.
  const char* keys[] = {"connect_timeout",     "keepalives",       "keepalives_idle",
                        "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                        "application_name",    "dbname",           nullptr};
  const char* values[] = {connect_timeout.c_str(),
                          "1",
                          "5",
                          "2",
                          "3",
                          user_timeout.c_str(),
                          application_name.c_str(),
                          options_.url.c_str(),
                          nullptr};
  auto c = std::make_unique<Connection>();
  c->conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c->conn == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("postgres ", where_, ": cannot connect: out of memory"));
  }
  if (PQstatus(c->conn) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("postgres ", where_, ": cannot connect: ", Message(c->conn, nullptr)));
  }
  const std::string timeout = Millis(options_.turn_timeout);
  const std::string settings =
      absl::StrCat("SET statement_timeout = ", timeout, "; SET lock_timeout = ", timeout,
                   "; SET idle_in_transaction_session_timeout = ", timeout,
                   // The server side notices a vanished replica within ~11 s (its backend, and
                   // the replica name's session lock, go with it).
                   "; SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2",
                   "; SET tcp_keepalives_count = 3; SET client_min_messages = warning");
  Result r(PQexec(c->conn, settings.c_str()), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    return absl::UnavailableError(absl::StrCat(
        "postgres ", where_, ": cannot set the session up: ", Message(c->conn, r.get())));
  }
  return c;
}

namespace {

// Query runs one statement with parameters; the result is binary. On failure *sqlstate (if not
// null) receives the error's SQLSTATE and the status is UNAVAILABLE naming where and what.
absl::StatusOr<Result> Query(PGconn* conn, const std::string& where, absl::string_view what,
                             const char* sql, const std::vector<Param>& params = {},
                             std::string* sqlstate = nullptr, std::string* constraint = nullptr) {
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size());
  std::vector<int> formats(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i].value.c_str();
    lengths[i] = static_cast<int>(params[i].value.size());
    formats[i] = params[i].binary ? 1 : 0;
  }
  Result r(PQexecParams(conn, sql, static_cast<int>(params.size()), nullptr, values.data(),
                        lengths.data(), formats.data(), /*resultFormat=*/1),
           &PQclear);
  const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
  if (sqlstate != nullptr) {
    const char* s = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    *sqlstate = s != nullptr ? s : "";
  }
  if (constraint != nullptr) {
    const char* s = r ? PQresultErrorField(r.get(), PG_DIAG_CONSTRAINT_NAME) : nullptr;
    *constraint = s != nullptr ? s : "";
  }
  return absl::UnavailableError(
      absl::StrCat("postgres ", where, ": ", what, ": ", Message(conn, r.get())));
}

absl::Status Exec(PGconn* conn, const std::string& where, absl::string_view what, const char* sql,
                  const std::vector<Param>& params = {}) {
  return Query(conn, where, what, sql, params).status();
}

template <typename Message>
absl::Status Parse(absl::string_view bytes, Message* m, const std::string& where,
                   absl::string_view what) {
  if (m->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("postgres ", where, ": ", what, " is unreadable"));
}

// ReadContents reads every case, trigger statistics and kill switch, and the last change id, in
// the caller's transaction.
absl::Status ReadContents(PGconn* conn, const std::string& where, cases::JournalContents* out,
                          int64_t* last_id) {
  ASSIGN_OR_RETURN(Result cases, Query(conn, where, "cannot read the cases",
                                       "SELECT seq, body FROM agate_cases ORDER BY seq"));
  for (int i = 0; i < PQntuples(cases.get()); ++i) {
    store::v1::StoredCase& c = out->cases.emplace_back();
    RETURN_IF_ERROR(Parse(BytesAt(cases.get(), i, 1), &c, where,
                          absl::StrCat("case with seq ", IntAt(cases.get(), i, 0))));
  }
  ASSIGN_OR_RETURN(
      Result stats,
      Query(conn, where, "cannot read the trigger statistics",
            "SELECT trigger_id, body FROM agate_trigger_stats ORDER BY trigger_id, tenant_id"));
  for (int i = 0; i < PQntuples(stats.get()); ++i) {
    RETURN_IF_ERROR(Parse(BytesAt(stats.get(), i, 1), &out->trigger_stats.emplace_back(), where,
                          absl::StrCat("statistics of trigger ", BytesAt(stats.get(), i, 0))));
  }
  ASSIGN_OR_RETURN(Result kills, Query(conn, where, "cannot read the kill switches",
                                       "SELECT body FROM agate_kill_switches ORDER BY n"));
  for (int i = 0; i < PQntuples(kills.get()); ++i) {
    RETURN_IF_ERROR(Parse(BytesAt(kills.get(), i, 0), &out->kill_switches.emplace_back(), where,
                          "a kill switch"));
  }
  ASSIGN_OR_RETURN(Result feed, Query(conn, where, "cannot read the change feed",
                                      "SELECT last_id FROM agate_feed"));
  *last_id = PQntuples(feed.get()) > 0 ? IntAt(feed.get(), 0, 0) : 0;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresStore>> PostgresStore::Open(PostgresStoreOptions options,
                                                                   const Clock& clock) {
  if (options.url.empty()) return absl::InvalidArgumentError("--postgres-url: empty");
  if (options.replica.empty()) {
    return absl::InvalidArgumentError(
        "PostgresStore: the replica name is empty (each server on a database needs its own)");
  }
  std::string where = WithoutPassword(options.url);
  std::unique_ptr<PostgresStore> store(new PostgresStore(std::move(options), clock, where));
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, store->Connect());
  PGconn* c = conn->conn;
  const std::string lock = absl::StrCat("SELECT pg_advisory_lock(", kMigrateKey, ")");
  RETURN_IF_ERROR(Exec(c, where, "cannot take the schema lock", lock.c_str()));
  absl::Status migrated = [&]() -> absl::Status {
    RETURN_IF_ERROR(Exec(c, where, "cannot create the schema",
                         "CREATE TABLE IF NOT EXISTS agate_schema (version int NOT NULL)"));
    ASSIGN_OR_RETURN(Result version, Query(c, where, "cannot read the schema version",
                                           "SELECT coalesce(max(version), 0)::bigint "
                                           "FROM agate_schema"));
    const int64_t found = IntAt(version.get(), 0, 0);
    if (found > kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("database ", where, " was written by a newer agate (schema version ", found,
                       "; this agate reads up to ", kSchemaVersion, ")"));
    }
    if (found == kSchemaVersion) return absl::OkStatus();
    RETURN_IF_ERROR(Exec(c, where, "cannot create the schema", "BEGIN"));
    Result r(PQexec(c, kSchema), &PQclear);
    absl::Status s;
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      s = absl::UnavailableError(
          absl::StrCat("postgres ", where, ": cannot create the schema: ", Message(c, r.get())));
    }
    if (s.ok()) {
      s = Exec(c, where, "cannot write the schema version", "DELETE FROM agate_schema");
    }
    if (s.ok()) {
      s = Exec(c, where, "cannot write the schema version",
               "INSERT INTO agate_schema(version) VALUES ($1::int)", {Int(kSchemaVersion)});
    }
    if (s.ok()) s = Exec(c, where, "cannot create the schema", "COMMIT");
    if (!s.ok()) PQclear(PQexec(c, "ROLLBACK"));
    return s;
  }();
  const std::string unlock = absl::StrCat("SELECT pg_advisory_unlock(", kMigrateKey, ")");
  PQclear(PQexec(c, unlock.c_str()));
  RETURN_IF_ERROR(migrated);
  RETURN_IF_ERROR(store->ClaimReplica(*conn));
  {
    absl::MutexLock l(&store->mu_);
    store->conn_ = std::move(conn);
  }
  store->writer_ = std::thread([s = store.get()] {
    pthread_setname_np(pthread_self(), "agate-pgstore");
    s->Run();
  });
  return store;
}

PostgresStore::PostgresStore(PostgresStoreOptions options, const Clock& clock, std::string where)
    : options_(std::move(options)), clock_(clock), where_(std::move(where)) {}

PostgresStore::~PostgresStore() {
  {
    // A turn left open ends unapplied.
    absl::MutexLock lock(&mu_);
    if (in_turn_ && conn_ != nullptr && conn_->ok()) PQclear(PQexec(conn_->conn, "ROLLBACK"));
    conn_.reset();
  }
  if (writer_.joinable()) {
    {
      absl::MutexLock lock(&queue_mu_);
      stop_ = true;
    }
    writer_.join();
  }
  absl::MutexLock lock(&writer_mu_);
  WriteQueued().IgnoreError();
  writer_conn_.reset();
}

absl::Status PostgresStore::Error(absl::string_view what) const {
  return absl::UnavailableError(absl::StrCat("postgres ", where_, ": ", what));
}

absl::Status PostgresStore::Ready() {
  if (conn_ != nullptr && conn_->ok()) return absl::OkStatus();
  conn_.reset();
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connect());
  RETURN_IF_ERROR(ClaimReplica(*conn));
  conn_ = std::move(conn);
  return absl::OkStatus();
}

absl::Status PostgresStore::ClaimReplica(const Connection& conn) const {
  // Waits up to turn_timeout (lock_timeout): a connection of ours that was just lost may take a
  // moment to end on the server.
  const std::string sql =
      absl::StrCat("SELECT pg_advisory_lock(", kReplicaClass, ", hashtext($1))");
  std::string sqlstate;
  absl::StatusOr<Result> r = Query(conn.conn, where_, "cannot claim the replica name", sql.c_str(),
                                   {Text(options_.replica)}, &sqlstate);
  if (r.ok()) return absl::OkStatus();
  if (sqlstate != "55P03" && sqlstate != "57014") return r.status();  // not a lock timeout
  return absl::FailedPreconditionError(absl::StrCat(
      "postgres ", where_, ": replica name \"", options_.replica,
      "\" is in use by another agate-server on this database; each server needs its own"));
}

void PostgresStore::DropIfBroken() {
  if (conn_ != nullptr && !conn_->ok()) conn_.reset();
}

absl::Status PostgresStore::ReadChanges(bool* pruned, cases::RemoteChanges* out) {
  PGconn* c = conn_->conn;
  ASSIGN_OR_RETURN(Result rows,
                   Query(c, where_, "cannot read the change feed",
                         "SELECT id, replica, body FROM agate_changes WHERE id > $1::bigint "
                         "ORDER BY id",
                         {Int(last_change_)}));
  // Read after the rows: a prune that committed before them shows here too.
  ASSIGN_OR_RETURN(Result feed, Query(c, where_, "cannot read the change feed",
                                      "SELECT pruned_upto FROM agate_feed"));
  if (PQntuples(feed.get()) > 0 && IntAt(feed.get(), 0, 0) > last_change_) {
    *pruned = true;
    return absl::OkStatus();
  }
  *pruned = false;
  std::vector<store::v1::StoredChange> changes;
  int64_t last = last_change_;
  for (int i = 0; i < PQntuples(rows.get()); ++i) {
    last = IntAt(rows.get(), i, 0);
    if (BytesAt(rows.get(), i, 1) == options_.replica) continue;
    RETURN_IF_ERROR(Parse(BytesAt(rows.get(), i, 2), &changes.emplace_back(), where_,
                          absl::StrCat("change ", last)));
  }
  for (store::v1::StoredChange& change : changes) out->changes.push_back(std::move(change));
  last_change_ = last;
  return absl::OkStatus();
}

absl::Status PostgresStore::Reload(cases::RemoteChanges* out) {
  cases::JournalContents contents;
  int64_t last = 0;
  RETURN_IF_ERROR(ReadContents(conn_->conn, where_, &contents, &last));
  out->changes.clear();
  out->reload = true;
  out->contents = std::move(contents);
  last_change_ = last;
  return absl::OkStatus();
}

absl::Status PostgresStore::Begin(bool reload, cases::RemoteChanges* out) {
  absl::MutexLock lock(&mu_);
  if (in_turn_) return absl::InternalError("PostgresStore::Begin: a turn is already open");
  RETURN_IF_ERROR(Ready());
  PGconn* c = conn_->conn;
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(Exec(c, where_, "cannot begin a turn", "BEGIN"));
    turn_started_ = absl::Now();
    in_turn_ = true;
    const std::string lock_sql = absl::StrCat("SELECT pg_advisory_xact_lock(", kLockKey, ")");
    std::string sqlstate;
    absl::StatusOr<Result> locked =
        Query(c, where_, "cannot take the turn lock", lock_sql.c_str(), {}, &sqlstate);
    if (!locked.ok() &&
        (sqlstate == "55P03" || sqlstate == "57014")) {  // lock or statement timeout
      return Error(absl::StrCat("cannot take the turn lock within ",
                                absl::FormatDuration(options_.turn_timeout),
                                " (another server's turn holds it): ", Message(c, nullptr)));
    }
    RETURN_IF_ERROR(locked.status());
    bool pruned = false;
    if (!reload) RETURN_IF_ERROR(ReadChanges(&pruned, out));
    if (reload || pruned) RETURN_IF_ERROR(Reload(out));
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    if (in_turn_ && conn_->ok()) PQclear(PQexec(c, "ROLLBACK"));
    in_turn_ = false;
    DropIfBroken();
  }
  return status;
}

void PostgresStore::Abort() {
  absl::MutexLock lock(&mu_);
  if (!in_turn_) return;
  in_turn_ = false;
  if (conn_ != nullptr && conn_->ok()) PQclear(PQexec(conn_->conn, "ROLLBACK"));
  DropIfBroken();
}

absl::StatusOr<std::optional<cases::DecisionRow>> PostgresStore::FindDecision(
    absl::string_view key) {
  absl::MutexLock lock(&mu_);
  if (!in_turn_) return absl::InternalError("PostgresStore::FindDecision outside a turn");
  if (conn_ == nullptr) return Error("the connection was lost during the turn");
  absl::StatusOr<Result> r = Query(conn_->conn, where_, "cannot read a decision",
                                   "SELECT digest, response, " AGATE_PG_MICROS(
                                       "decided_at") " FROM agate_decisions WHERE key = $1",
                                   {Bytes(key)});
  if (!r.ok()) {
    DropIfBroken();
    return r.status();
  }
  if (PQntuples(r->get()) == 0) return std::nullopt;
  cases::DecisionRow row;
  row.key = std::string(key);
  row.digest = std::string(BytesAt(r->get(), 0, 0));
  row.response = std::string(BytesAt(r->get(), 0, 1));
  row.decided_at = absl::FromUnixMicros(IntAt(r->get(), 0, 2));
  return row;
}

absl::Status PostgresStore::WriteCase(const store::v1::StoredCase& stored,
                                      const cases::JournalBatch& batch) {
  PGconn* c = conn_->conn;
  const ::agate::v1::Case& k = stored.case_();
  bool redeeming = false;
  bool closing = false;
  for (const cases::JournalTransition& t : batch.transitions) {
    if (t.case_seq != stored.seq()) continue;
    if (t.transition.event() == "redeemed") {
      redeeming = true;
    } else if (t.transition.state() != ::agate::v1::CASE_STATE_OPEN &&
               t.transition.event() != "redemption-undone") {
      // A transition to a closed state other than these two, which change a closed case in
      // place, is the one that closed it (CaseStore::Close).
      closing = true;
    }
  }
  std::string body;
  stored.SerializeToString(&body);
  const std::vector<Param> params = {Int(static_cast<int64_t>(stored.seq())),
                                     Text(k.id()),
                                     Text(k.tenant_id()),
                                     Text(StateText(k.state())),
                                     Bytes(cases::OpenKeyOf(k)),
                                     Bytes(body),
                                     Text(k.redeemed() ? "t" : "f")};
  // What the row holds when a guarded update changed nothing.
  auto refused = [&](absl::string_view wanted) -> absl::Status {
    ASSIGN_OR_RETURN(Result row, Query(c, where_, "cannot read a case",
                                       "SELECT state, redeemed_at IS NOT NULL "
                                       "FROM agate_cases WHERE seq = $1::bigint",
                                       {Int(static_cast<int64_t>(stored.seq()))}));
    if (PQntuples(row.get()) == 0) {
      return absl::AbortedError(
          absl::StrCat("case ", k.id(), ": not in the database (", wanted, ")"));
    }
    const absl::string_view state = BytesAt(row.get(), 0, 0);
    const bool redeemed = BytesAt(row.get(), 0, 1) == absl::string_view("\x01", 1);
    if (redeeming && state == "APPROVED" && redeemed) {
      return absl::AbortedError(
          absl::StrCat("case ", k.id(), ": already redeemed (another replica redeemed it first)"));
    }
    if (redeeming) {
      return absl::AbortedError(absl::StrCat("case ", k.id(), " is ", state,
                                             redeemed ? ", redeemed" : "",
                                             ": only an APPROVED case is redeemed, once"));
    }
    return absl::AbortedError(absl::StrCat("case ", k.id(), " was already ", state));
  };
  std::string sqlstate, constraint;
  auto write = [&](const char* sql) -> absl::StatusOr<int> {
    absl::StatusOr<Result> r =
        Query(c, where_, "cannot write a case", sql, params, &sqlstate, &constraint);
    if (!r.ok()) {
      if (sqlstate == "23505" && constraint == kOpenKeyIndex) {
        return absl::AbortedError(absl::StrCat("case ", k.id(), ": a case of lane ", k.lane(),
                                               " is already OPEN for ", k.scope_key()));
      }
      if (sqlstate == "23505") {
        return absl::AbortedError(absl::StrCat("case ", k.id(), ": ", r.status().message()));
      }
      return r.status();
    }
    return std::atoi(PQcmdTuples(r->get()));
  };
  if (redeeming) {
    ASSIGN_OR_RETURN(int n, write("UPDATE agate_cases SET id = $2, tenant_id = $3, state = $4, "
                                  "open_key = $5, body = $6, redeemed_at = now() "
                                  "WHERE seq = $1::bigint AND state = 'APPROVED' "
                                  "AND redeemed_at IS NULL AND $7::bool"));
    if (n == 0) return refused("redeeming it");
    return absl::OkStatus();
  }
  if (closing) {
    ASSIGN_OR_RETURN(int n, write("UPDATE agate_cases SET id = $2, tenant_id = $3, state = $4, "
                                  "open_key = $5, body = $6, "
                                  "redeemed_at = CASE WHEN $7::bool THEN now() END "
                                  "WHERE seq = $1::bigint AND state = 'OPEN'"));
    if (n > 0) return absl::OkStatus();
    // Opened and closed in one batch: not there yet.
    ASSIGN_OR_RETURN(n, write("INSERT INTO agate_cases(seq, id, tenant_id, state, open_key, body, "
                              "redeemed_at) VALUES ($1::bigint, $2, $3, $4, $5, $6, "
                              "CASE WHEN $7::bool THEN now() END) "
                              "ON CONFLICT (seq) DO NOTHING"));
    if (n == 0) return refused("closing it");
    return absl::OkStatus();
  }
  // Any other change: a closed case never opens again nor changes its state.
  ASSIGN_OR_RETURN(int n, write("INSERT INTO agate_cases AS c(seq, id, tenant_id, state, open_key, "
                                "body, redeemed_at) VALUES ($1::bigint, $2, $3, $4, $5, $6, "
                                "CASE WHEN $7::bool THEN now() END) "
                                "ON CONFLICT (seq) DO UPDATE SET id = excluded.id, "
                                "tenant_id = excluded.tenant_id, state = excluded.state, "
                                "open_key = excluded.open_key, body = excluded.body, "
                                "redeemed_at = CASE WHEN $7::bool "
                                "THEN coalesce(c.redeemed_at, now()) END "
                                "WHERE c.state = 'OPEN' OR c.state = excluded.state"));
  if (n == 0) return refused("changing it");
  return absl::OkStatus();
}

absl::Status PostgresStore::WriteBatch(const cases::JournalBatch& batch) {
  PGconn* c = conn_->conn;
  for (const store::v1::StoredCase& stored : batch.cases) RETURN_IF_ERROR(WriteCase(stored, batch));
  std::string body;
  for (const cases::JournalTransition& t : batch.transitions) {
    body.clear();
    t.transition.SerializeToString(&body);
    RETURN_IF_ERROR(Exec(c, where_, "cannot write a transition",
                         "INSERT INTO agate_transitions(case_seq, body) VALUES ($1::bigint, $2)",
                         {Int(static_cast<int64_t>(t.case_seq)), Bytes(body)}));
  }
  for (uint64_t seq : batch.forgotten) {
    RETURN_IF_ERROR(Exec(c, where_, "cannot forget a closed case",
                         "DELETE FROM agate_cases WHERE seq = $1::bigint",
                         {Int(static_cast<int64_t>(seq))}));
    RETURN_IF_ERROR(Exec(c, where_, "cannot forget a closed case",
                         "DELETE FROM agate_transitions WHERE case_seq = $1::bigint",
                         {Int(static_cast<int64_t>(seq))}));
  }
  for (const store::v1::StoredTriggerStats& s : batch.trigger_stats) {
    body.clear();
    s.SerializeToString(&body);
    RETURN_IF_ERROR(Exec(c, where_, "cannot write trigger statistics",
                         "INSERT INTO agate_trigger_stats(trigger_id, tenant_id, body) "
                         "VALUES ($1, $2, $3) ON CONFLICT (trigger_id, tenant_id) "
                         "DO UPDATE SET body = excluded.body",
                         {Text(s.stats().trigger_id()), Text(s.tenant_id()), Bytes(body)}));
  }
  for (const store::v1::StoredKillSwitch& k : batch.kill_switches) {
    body.clear();
    k.SerializeToString(&body);
    if (k.switch_().engaged()) {
      RETURN_IF_ERROR(Exec(c, where_, "cannot write a kill switch",
                           "INSERT INTO agate_kill_switches(key, body) VALUES ($1, $2) "
                           "ON CONFLICT (key) DO UPDATE SET body = excluded.body",
                           {Bytes(k.key()), Bytes(body)}));
    } else {
      RETURN_IF_ERROR(Exec(c, where_, "cannot write a kill switch",
                           "DELETE FROM agate_kill_switches WHERE key = $1", {Bytes(k.key())}));
    }
  }
  for (const cases::DecisionRow& row : batch.decisions) {
    RETURN_IF_ERROR(
        Exec(c, where_, "cannot write a decision",
             "INSERT INTO agate_decisions(key, digest, response, decided_at) "
             "VALUES ($1, $2, $3, " AGATE_PG_TIME("$4") ") "
                                                        "ON CONFLICT (key) DO NOTHING",
             {Bytes(row.key), Bytes(row.digest), Bytes(row.response), Micros(row.decided_at)}));
  }
  // The change row the other replicas absorb (a batch of decisions alone changes nothing).
  store::v1::StoredChange change;
  for (const store::v1::StoredCase& s : batch.cases) *change.add_cases() = s;
  for (const cases::JournalTransition& t : batch.transitions) {
    store::v1::StoredTransition* out = change.add_transitions();
    out->set_case_seq(t.case_seq);
    *out->mutable_transition() = t.transition;
  }
  for (uint64_t seq : batch.forgotten) change.add_forgotten(seq);
  for (const store::v1::StoredTriggerStats& s : batch.trigger_stats)
    *change.add_trigger_stats() = s;
  for (const store::v1::StoredKillSwitch& k : batch.kill_switches) *change.add_kill_switches() = k;
  if (change.ByteSizeLong() == 0) return absl::OkStatus();
  body.clear();
  change.SerializeToString(&body);
  ASSIGN_OR_RETURN(Result id,
                   Query(c, where_, "cannot write the change feed",
                         "UPDATE agate_feed SET last_id = last_id + 1 RETURNING last_id"));
  if (PQntuples(id.get()) != 1) return Error("the change feed's counter row is missing");
  const int64_t change_id = IntAt(id.get(), 0, 0);
  RETURN_IF_ERROR(
      Exec(c, where_, "cannot write the change feed",
           "INSERT INTO agate_changes(id, replica, at, body) "
           "VALUES ($1::bigint, $2, " AGATE_PG_TIME("$3") ", $4)",
           {Int(change_id), Text(options_.replica), Micros(clock_.Now()), Bytes(body)}));
  // Our own change: nothing to absorb. Only past what we have seen, so another replica's change
  // that we have not read yet is not skipped (outside a turn, last_change_ may be behind); and
  // only once COMMIT succeeded (Commit), so a failed commit never skips the id it did not take.
  if (change_id == last_change_ + 1) pending_change_ = change_id;
  return absl::OkStatus();
}

absl::Status PostgresStore::Commit(const cases::JournalBatch& batch) {
  absl::MutexLock lock(&mu_);
  absl::Time started = turn_started_;
  if (!in_turn_) {
    // A commit outside a turn is its own transaction, under the same lock.
    if (batch.empty()) return absl::OkStatus();
    started = absl::Now();
    if (absl::Status s = Ready(); !s.ok()) {
      ++stats_.commit_errors;
      return s;
    }
    PGconn* c = conn_->conn;
    const std::string lock_sql =
        absl::StrCat("BEGIN; SELECT pg_advisory_xact_lock(", kLockKey, ")");
    Result r(PQexec(c, lock_sql.c_str()), &PQclear);
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      absl::Status s = Error(absl::StrCat("cannot begin a commit: ", Message(c, r.get())));
      PQclear(PQexec(c, "ROLLBACK"));
      ++stats_.commit_errors;
      DropIfBroken();
      return s;
    }
  } else if (conn_ == nullptr || !conn_->ok()) {
    in_turn_ = false;
    conn_.reset();
    ++stats_.commit_errors;
    return Error("the connection was lost during the turn");
  }
  in_turn_ = false;
  PGconn* c = conn_->conn;
  pending_change_ = 0;
  absl::Status status = WriteBatch(batch);
  if (status.ok()) status = Exec(c, where_, "cannot commit", "COMMIT");
  if (status.ok() && pending_change_ != 0) last_change_ = pending_change_;
  if (!status.ok()) {
    PQclear(PQexec(c, "ROLLBACK"));
    ++stats_.commit_errors;
    DropIfBroken();
    return status;
  }
  // An empty batch only ended a turn: not a commit.
  if (!batch.empty()) AddCommit(absl::ToDoubleSeconds(absl::Now() - started), &stats_);
  return absl::OkStatus();
}

absl::Status PostgresStore::Poll(cases::RemoteChanges* out) {
  absl::MutexLock lock(&mu_);
  if (in_turn_) return absl::InternalError("PostgresStore::Poll inside a turn");
  RETURN_IF_ERROR(Ready());
  bool pruned = false;
  absl::Status status = ReadChanges(&pruned, out);
  if (status.ok() && pruned) {
    // The contents and the feed position in one snapshot.
    PGconn* c = conn_->conn;
    status = Exec(c, where_, "cannot reload", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (status.ok()) status = Reload(out);
    if (status.ok()) status = Exec(c, where_, "cannot reload", "COMMIT");
    if (!status.ok() && conn_->ok()) PQclear(PQexec(c, "ROLLBACK"));
  }
  if (!status.ok()) DropIfBroken();
  return status;
}

absl::StatusOr<cases::JournalContents> PostgresStore::LoadCases() {
  absl::MutexLock lock(&mu_);
  if (in_turn_) return absl::InternalError("PostgresStore::LoadCases inside a turn");
  RETURN_IF_ERROR(Ready());
  PGconn* c = conn_->conn;
  cases::RemoteChanges out;
  absl::Status status =
      Exec(c, where_, "cannot read the cases", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (status.ok()) status = Reload(&out);
  if (status.ok()) status = Exec(c, where_, "cannot read the cases", "COMMIT");
  if (!status.ok()) {
    if (conn_->ok()) PQclear(PQexec(c, "ROLLBACK"));
    DropIfBroken();
    return status;
  }
  return std::move(out.contents);
}

absl::Status PostgresStore::WriterReady() {
  if (writer_conn_ != nullptr && writer_conn_->ok()) return absl::OkStatus();
  writer_conn_.reset();
  ASSIGN_OR_RETURN(writer_conn_, Connect(" writer"));
  return absl::OkStatus();
}

void PostgresStore::EnqueueDecision(cases::DecisionRow row) {
  absl::MutexLock lock(&queue_mu_);
  if (queue_.size() >= options_.max_queued_decisions) {
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back(std::move(row));
}

absl::Status PostgresStore::WriteQueued() {
  std::deque<cases::DecisionRow> rows;
  {
    absl::MutexLock lock(&queue_mu_);
    rows.swap(queue_);
  }
  if (rows.empty()) return absl::OkStatus();
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(WriterReady());
    PGconn* c = writer_conn_->conn;
    RETURN_IF_ERROR(Exec(c, where_, "cannot write decisions", "BEGIN"));
    for (const cases::DecisionRow& row : rows) {
      absl::Status s = Exec(c, where_, "cannot write a decision",
                            "INSERT INTO agate_decisions(key, digest, response, decided_at) "
                            "VALUES ($1, $2, $3, " AGATE_PG_TIME("$4") ") "
                            "ON CONFLICT (key) DO NOTHING",
                            {Bytes(row.key), Bytes(row.digest), Bytes(row.response),
                             Micros(row.decided_at)});
      if (!s.ok()) {
        PQclear(PQexec(c, "ROLLBACK"));
        return s;
      }
    }
    if (absl::Status s = Exec(c, where_, "cannot write decisions", "COMMIT"); !s.ok()) {
      PQclear(PQexec(c, "ROLLBACK"));
      return s;
    }
    return absl::OkStatus();
  }();
  absl::MutexLock queue_lock(&queue_mu_);
  if (status.ok()) {
    decisions_written_ += rows.size();
    return status;
  }
  if (writer_conn_ != nullptr && !writer_conn_->ok()) writer_conn_.reset();
  ++decision_write_errors_;
  // Keep the rows for the next flush (the newest, up to the bound).
  while (!rows.empty() && queue_.size() < options_.max_queued_decisions) {
    queue_.push_front(std::move(rows.back()));
    rows.pop_back();
  }
  dropped_ += rows.size();
  return status;
}

absl::Status PostgresStore::Prune() {
  RETURN_IF_ERROR(WriterReady());
  PGconn* c = writer_conn_->conn;
  const absl::Time now = clock_.Now();
  absl::Status status = Exec(c, where_, "cannot prune decisions",
                             "DELETE FROM agate_decisions WHERE decided_at < " AGATE_PG_TIME("$1"),
                             {Micros(now - options_.decision_retention)});
  // The feed: the rows and the mark in one transaction. No turn lock is needed: a reader reads
  // the rows, then the mark (ReadChanges), so a prune that took rows it needed shows in the mark.
  // Rows are pruned by the time their replica wrote them, so not always in id order: the mark is
  // the newest id pruned, and a replica behind it reloads (perhaps needlessly).
  if (status.ok()) {
    status = Exec(c, where_, "cannot prune the change feed",
                  "WITH gone AS (DELETE FROM agate_changes WHERE at < " AGATE_PG_TIME("$1")
                  " RETURNING id) UPDATE agate_feed SET pruned_upto = "
                  "greatest(pruned_upto, (SELECT coalesce(max(id), 0) FROM gone))",
                  {Micros(now - options_.feed_retention)});
  }
  if (!status.ok() && !writer_conn_->ok()) writer_conn_.reset();
  return status;
}

absl::Status PostgresStore::Flush() {
  absl::MutexLock lock(&writer_mu_);
  absl::Status written = WriteQueued();
  absl::Status pruned = Prune();
  return written.ok() ? pruned : written;
}

void PostgresStore::Run() {
  absl::Time next_prune = clock_.Now();
  for (;;) {
    bool stop = false;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.flush_interval);
      stop = stop_;
    }
    if (stop) return;  // the destructor flushes
    absl::MutexLock lock(&writer_mu_);
    // A failed write keeps the rows queued (bounded) and is counted in stats.
    WriteQueued().IgnoreError();
    const absl::Time now = clock_.Now();
    if (now >= next_prune) {
      next_prune = now + absl::Seconds(10);
      Prune().IgnoreError();
    }
  }
}

absl::StatusOr<std::vector<cases::DecisionRow>> PostgresStore::LoadDecisions(absl::Time since,
                                                                             size_t limit) {
  absl::MutexLock lock(&writer_mu_);
  RETURN_IF_ERROR(WriterReady());
  absl::StatusOr<Result> r =
      Query(writer_conn_->conn, where_, "cannot read the decisions",
            "SELECT key, digest, response, " AGATE_PG_MICROS("decided_at")
            " FROM agate_decisions WHERE decided_at >= " AGATE_PG_TIME("$1")
            " ORDER BY decided_at DESC LIMIT $2::bigint",
            {Micros(since), Int(static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)))});
  if (!r.ok()) {
    if (!writer_conn_->ok()) writer_conn_.reset();
    return r.status();
  }
  std::vector<cases::DecisionRow> rows;
  for (int i = PQntuples(r->get()) - 1; i >= 0; --i) {
    cases::DecisionRow& row = rows.emplace_back();
    row.key = std::string(BytesAt(r->get(), i, 0));
    row.digest = std::string(BytesAt(r->get(), i, 1));
    row.response = std::string(BytesAt(r->get(), i, 2));
    row.decided_at = absl::FromUnixMicros(IntAt(r->get(), i, 3));
  }
  return rows;
}

absl::Status PostgresStore::SaveSignals(const std::vector<store::v1::StoredSignalSeries>& series) {
  store::v1::StoredSignals all;
  for (const store::v1::StoredSignalSeries& s : series) *all.add_series() = s;
  std::string body;
  all.SerializeToString(&body);
  absl::MutexLock lock(&writer_mu_);
  RETURN_IF_ERROR(WriterReady());
  absl::Status s = Exec(writer_conn_->conn, where_, "cannot write the count() windows",
                        "INSERT INTO agate_signals(replica, body) VALUES ($1, $2) "
                        "ON CONFLICT (replica) DO UPDATE SET body = excluded.body",
                        {Text(options_.replica), Bytes(body)});
  if (!s.ok() && !writer_conn_->ok()) writer_conn_.reset();
  return s;
}

absl::StatusOr<std::vector<store::v1::StoredSignalSeries>> PostgresStore::LoadSignals() {
  return ReadSignals("SELECT replica, body FROM agate_signals WHERE replica = $1");
}

absl::StatusOr<std::vector<store::v1::StoredSignalSeries>> PostgresStore::LoadOtherSignals() {
  return ReadSignals("SELECT replica, body FROM agate_signals WHERE replica <> $1");
}

absl::StatusOr<std::vector<store::v1::StoredSignalSeries>> PostgresStore::ReadSignals(
    const char* sql) {
  absl::MutexLock lock(&writer_mu_);
  RETURN_IF_ERROR(WriterReady());
  absl::StatusOr<Result> r = Query(writer_conn_->conn, where_, "cannot read the count() windows",
                                   sql, {Text(options_.replica)});
  if (!r.ok()) {
    if (!writer_conn_->ok()) writer_conn_.reset();
    return r.status();
  }
  std::vector<store::v1::StoredSignalSeries> out;
  for (int row = 0; row < PQntuples(r->get()); ++row) {
    store::v1::StoredSignals all;
    RETURN_IF_ERROR(Parse(
        BytesAt(r->get(), row, 1), &all, where_,
        absl::StrCat("the count() windows of replica ", std::string(BytesAt(r->get(), row, 0)))));
    out.insert(out.end(), std::make_move_iterator(all.mutable_series()->begin()),
               std::make_move_iterator(all.mutable_series()->end()));
  }
  return out;
}

PostgresStore::Stats PostgresStore::stats() const {
  Stats out;
  {
    absl::MutexLock lock(&mu_);
    out = stats_;
  }
  absl::MutexLock lock(&queue_mu_);
  out.decisions_written = decisions_written_;
  out.decision_write_errors = decision_write_errors_;
  out.decisions_dropped = dropped_;
  return out;
}

}  // namespace agate::store
