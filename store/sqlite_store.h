// SqliteStore: agate's embedded durable store (SQLite, WAL mode) in a data directory.
//
// It keeps the cases with every transition (cases::CaseJournal: a case is committed before the
// client hears of it), the per-trigger statistics, the decision rows that make idempotency survive
// a restart, and snapshots of the count() windows. At start-up the server reads it all back.
//
// Layout of the data dir: `agate.db` (+ `-wal`, `-shm`), `LOCK` (flock'ed by the one server
// using the dir; it holds that server's pid). Durability: synchronous=NORMAL in WAL mode survives
// a crash of the process (kill -9) at any moment; `fsync = true` (synchronous=FULL) also survives
// a power loss, at the cost of an fsync per commit.
//
// Thread-safe: one connection behind a mutex. Decision rows queued with EnqueueDecision are
// written by a background thread in one transaction per flush interval; so are the prunes of rows
// older than the idempotency window.
//
// Errors: Open fails with a clear status naming the path for a data dir that cannot be created,
// is locked by another server (FAILED_PRECONDITION), holds a corrupt database (DATA_LOSS) or one
// written by a newer agate. Commit returns UNAVAILABLE ("durable store ...: database or disk is
// full") when SQLite cannot write; the transaction is rolled back.
//
// Example:
//   ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> store, SqliteStore::Open({.dir = "agate-data"}));
//   ASSIGN_OR_RETURN(cases::JournalContents contents, store->LoadCases());
//   cases::CaseStore cases(clock, {}, store.get());
//   RETURN_IF_ERROR(cases.Restore(contents));
#ifndef AGATE_STORE_SQLITE_STORE_H_
#define AGATE_STORE_SQLITE_STORE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
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

struct sqlite3;

namespace agate::store {

class StatementCache;

struct SqliteStoreOptions {
  // The data directory; created (with parents) if missing.
  std::string dir = "agate-data";
  // synchronous=FULL: every commit is fsync'ed (power-loss durability). Default NORMAL: a commit
  // survives the process being killed, not the machine losing power.
  bool fsync = false;
  // Queued decision rows are written at least this often.
  absl::Duration flush_interval = absl::Milliseconds(50);
  // Decision rows older than this, or past the newest max_decisions, are pruned (the idempotency
  // window and its memory bound: older rows could not be replayed anyway).
  absl::Duration decision_retention = absl::Minutes(10);
  size_t max_decisions = 200'000;
  // Decision rows waiting to be written at most; past it the oldest are dropped (and counted):
  // a dropped row only means a retry after a restart is evaluated again.
  size_t max_queued_decisions = 100'000;
  // The database may grow to at most this many bytes (0: no limit). Past it commits fail as on
  // a full disk: for tests and for a hard cap on a shared volume.
  uint64_t max_bytes = 0;
};

class SqliteStore : public DurableStore {
 public:
  // Open opens (or creates) the store in options.dir and takes the dir's lock.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(SqliteStoreOptions options,
                                                           const Clock& clock = RealClock());
  // The destructor writes the queued decision rows, stops the background thread and releases
  // the lock.
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // cases::CaseJournal.
  absl::Status Commit(const cases::JournalBatch& batch) override;
  void EnqueueDecision(cases::DecisionRow row) override;

  // store::DurableStore.
  absl::StatusOr<cases::JournalContents> LoadCases() override;
  absl::StatusOr<std::vector<cases::DecisionRow>> LoadDecisions(absl::Time since,
                                                                size_t limit = SIZE_MAX) override;
  absl::Status SaveSignals(const std::vector<store::v1::StoredSignalSeries>& series) override;
  absl::StatusOr<std::vector<store::v1::StoredSignalSeries>> LoadSignals() override;
  Stats stats() const override;
  const std::string& where() const override { return path_; }
  // LoadTransitions reads the journaled transitions of one case, oldest first (every one, also
  // the joins past the case's own history cap).
  absl::StatusOr<std::vector<::agate::v1::Transition>> LoadTransitions(uint64_t case_seq);

  // Flush writes the queued decision rows now.
  absl::Status Flush();

  // path returns the database file's path.
  const std::string& path() const { return path_; }

 private:
  SqliteStore(SqliteStoreOptions options, const Clock& clock, sqlite3* db, int lock_fd,
              std::string path);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(absl::string_view what) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteDecisions(const std::deque<cases::DecisionRow>& rows)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run();

  const SqliteStoreOptions options_;
  const Clock& clock_;
  const int lock_fd_;
  const std::string path_;

  mutable absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<StatementCache> statements_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);

  mutable absl::Mutex queue_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::deque<cases::DecisionRow> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stop_ ABSL_GUARDED_BY(queue_mu_) = false;
  uint64_t dropped_ ABSL_GUARDED_BY(queue_mu_) = 0;
  std::thread writer_;
};

}  // namespace agate::store

#endif  // AGATE_STORE_SQLITE_STORE_H_
