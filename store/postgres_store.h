// PostgresStore: the shared durable store. Many agate-servers (replicas) on one PostgreSQL
// database see one set of cases: an approval granted through one replica is redeemable through
// another, exactly once; a scope in force reaches every replica; an SLA timeout runs once.
//
// It is a shared cases::CaseJournal (cases/case_journal.h): each replica's CaseStore is a
// projection of the database, and every operation that may change a case is a turn, one database
// transaction:
//   Begin   BEGIN; SELECT pg_advisory_xact_lock(kLockKey)   -- one turn at a time, all replicas
//           SELECT id, replica, body FROM agate_changes WHERE id > $last ORDER BY id
//                   -- others' changes (or, with reload or behind the pruned feed, everything)
//   (the case store absorbs them, looks the request's decision row up, runs the operation)
//   Commit  the batch's rows (guarded, below) + one agate_changes row carrying it; COMMIT
// Change ids are taken under the lock, so they commit in id order: a poller that sees id N has
// seen every id below it. A replica killed mid-turn loses its connection and PostgreSQL rolls the
// transaction back and releases the lock (the transaction is the lease); a replica cut off from
// the database is bounded by idle_in_transaction_session_timeout and TCP keepalives.
//
// The database enforces the invariants itself, so a protocol bug is refused, not committed:
//   - agate_cases has a unique partial index on open_key WHERE state = 'OPEN': one OPEN case per
//     (tenant, lane, scope key);
//   - a batch that redeems a case (a "redeemed" transition) updates it WHERE seq = $1 AND
//     state = 'APPROVED' AND redeemed_at IS NULL; a batch that closes one (any other transition
//     to a closed state) WHERE seq = $1 AND state = 'OPEN' (or inserts it, opened and closed in
//     one batch); any other update never changes a closed case's state. No row updated: the
//     transaction is rolled back and Commit returns ABORTED naming the case and its state.
//
// Schema: created and migrated by Open (agate_schema holds the version; a database written by a
// newer agate is refused with both versions in the error). Tables: agate_cases, agate_transitions,
// agate_trigger_stats, agate_kill_switches, agate_decisions (idempotency rows, pruned past the
// retention), agate_changes (the feed, pruned past feed_retention), agate_feed (one row: the last
// change id handed out, and the newest id pruned: a replica that has not read past it reloads in
// full), agate_signals (count() windows, per replica).
//
// Errors: Open fails with UNAVAILABLE naming the URL (password removed) when the database cannot be
// reached, FAILED_PRECONDITION for a newer schema or a replica name another running server holds
// (the turn connection keeps a session lock on it), INVALID_ARGUMENT for an empty replica name.
// Begin/Commit/Poll return UNAVAILABLE ("postgres <url>: <what>: <libpq's message>") when the
// connection fails (it is re-established at the next call) or the turn lock is not granted within
// turn_timeout, ABORTED for a guard (the batch is rolled back whole), DATA_LOSS for a row that does
// not parse.
//
// Thread-safe: one connection for turns, polls and LoadCases behind a mutex (a turn spans calls:
// Begin, FindDecision, Commit or Abort; Begin, Poll or LoadCases within a turn are INTERNAL
// errors), one for the background writer (EnqueueDecision rows, prunes) that also serves
// LoadDecisions and the count() windows, so they never run inside a turn's transaction.
#ifndef AGATE_STORE_POSTGRES_STORE_H_
#define AGATE_STORE_POSTGRES_STORE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agate/store/v1/store.pb.h"
#include "cases/case_journal.h"
#include "common/clock.h"
#include "store/durable_store.h"

namespace agate::store {

struct PostgresStoreOptions {
  // A libpq connection string or URL, e.g. "postgresql://agate@db:5432/agate" or
  // "host=/tmp port=5433 dbname=agate".
  std::string url;
  // This replica's name: its count() windows are kept under it, and the feed rows it writes carry
  // it (a replica skips its own). Unique per running replica.
  std::string replica;
  // Queued decision rows are written at least this often.
  absl::Duration flush_interval = absl::Milliseconds(50);
  // Decision rows older than this are pruned (the idempotency window).
  absl::Duration decision_retention = absl::Minutes(10);
  size_t max_queued_decisions = 100'000;
  // Feed rows older than this are pruned; a replica that polls less often reloads in full.
  absl::Duration feed_retention = absl::Minutes(10);
  // How long a turn may wait for the lock and run (statement_timeout,
  // idle_in_transaction_session_timeout): past it the turn fails UNAVAILABLE.
  absl::Duration turn_timeout = absl::Seconds(5);
};

class PostgresStore : public DurableStore {
 public:
  // The schema version this agate writes.
  static constexpr int kSchemaVersion = 1;

  static absl::StatusOr<std::unique_ptr<PostgresStore>> Open(PostgresStoreOptions options,
                                                             const Clock& clock = RealClock());
  // The destructor rolls back a turn left open, writes the queued decision rows and closes the
  // connections.
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // cases::CaseJournal.
  absl::Status Commit(const cases::JournalBatch& batch) override;
  void EnqueueDecision(cases::DecisionRow row) override;
  bool shared() const override { return true; }
  absl::Status Begin(bool reload, cases::RemoteChanges* out) override;
  void Abort() override;
  absl::Status Poll(cases::RemoteChanges* out) override;
  absl::StatusOr<std::optional<cases::DecisionRow>> FindDecision(absl::string_view key) override;

  // store::DurableStore. LoadCases also sets the feed position (the next Poll returns what was
  // committed after it).
  absl::StatusOr<cases::JournalContents> LoadCases() override;
  absl::StatusOr<std::vector<cases::DecisionRow>> LoadDecisions(absl::Time since,
                                                                size_t limit) override;
  absl::Status SaveSignals(const std::vector<store::v1::StoredSignalSeries>& series) override;
  absl::StatusOr<std::vector<store::v1::StoredSignalSeries>> LoadSignals() override;
  absl::StatusOr<std::vector<store::v1::StoredSignalSeries>> LoadOtherSignals() override;
  Stats stats() const override;
  const std::string& where() const override { return where_; }

  // Flush writes the queued decision rows now, then prunes the decision rows and feed rows past
  // their retention (the background thread does both on its own: writes every flush_interval,
  // prunes every 10 s).
  absl::Status Flush();

 private:
  struct Connection;
  PostgresStore(PostgresStoreOptions options, const Clock& clock, std::string where);
  // Connect opens a connection with the session's timeouts set; its application_name is
  // "agate <replica><role>" (pg_stat_activity tells the turn's and the writer's apart).
  absl::StatusOr<std::unique_ptr<Connection>> Connect(absl::string_view role = "") const;
  absl::Status Error(absl::string_view what) const;
  // Ready (re)connects conn_ when it is missing or broken; DropIfBroken forgets a broken one.
  absl::Status Ready() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ClaimReplica takes the replica name's session lock on conn (FAILED_PRECONDITION when another
  // running server holds it past turn_timeout).
  absl::Status ClaimReplica(const Connection& conn) const;
  void DropIfBroken() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ReadChanges appends the other replicas' changes past last_change_ to *out, or sets *pruned
  // (and reads nothing) when the feed was pruned past last_change_. Reload reads the contents
  // and the feed position instead. Both in the caller's transaction.
  absl::Status ReadChanges(bool* pruned, cases::RemoteChanges* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Reload(cases::RemoteChanges* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteBatch(const cases::JournalBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteCase(const store::v1::StoredCase& stored, const cases::JournalBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriterReady() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // ReadSignals runs sql (replica = $1 or <> $1) and returns the series of every row.
  absl::StatusOr<std::vector<store::v1::StoredSignalSeries>> ReadSignals(const char* sql);
  absl::Status WriteQueued() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  absl::Status Prune() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  void Run();

  const PostgresStoreOptions options_;
  const Clock& clock_;
  const std::string where_;  // the URL without its password

  mutable absl::Mutex mu_;
  std::unique_ptr<Connection> conn_ ABSL_GUARDED_BY(mu_);
  bool in_turn_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time turn_started_ ABSL_GUARDED_BY(mu_);
  int64_t last_change_ ABSL_GUARDED_BY(mu_) = 0;     // the newest feed id absorbed
  int64_t pending_change_ ABSL_GUARDED_BY(mu_) = 0;  // our change's id, until COMMIT
  Stats stats_ ABSL_GUARDED_BY(mu_);

  // The writer's connection: queued decision rows, prunes, decisions and count() windows read
  // and written outside turns.
  mutable absl::Mutex writer_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::unique_ptr<Connection> writer_conn_ ABSL_GUARDED_BY(writer_mu_);

  mutable absl::Mutex queue_mu_ ABSL_ACQUIRED_AFTER(writer_mu_);
  std::deque<cases::DecisionRow> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stop_ ABSL_GUARDED_BY(queue_mu_) = false;
  uint64_t dropped_ ABSL_GUARDED_BY(queue_mu_) = 0;
  uint64_t decisions_written_ ABSL_GUARDED_BY(queue_mu_) = 0;
  uint64_t decision_write_errors_ ABSL_GUARDED_BY(queue_mu_) = 0;
  std::thread writer_;
};

}  // namespace agate::store

#endif  // AGATE_STORE_POSTGRES_STORE_H_
