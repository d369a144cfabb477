// CaseJournal: where the case store makes its changes durable (the port store/ implements).
//
// Every CaseStore operation that changes a case (a decision that opens or joins one, a
// redemption, Acknowledge, a timeout) ends by committing one JournalBatch, under the store's lock
// and before the operation's result is returned: a case a client hears of is durable (it survives
// kill -9). When Commit fails the operation fails (UNAVAILABLE: the client fails closed); the
// change stays in memory and is committed again with the next batch or by CaseStore::Sync.
//
// The decision that changed the cases is committed in the same batch (a DecisionRow that the
// caller's DecisionSealer produces from the final decision), so a replayed request finds the
// answer its case belongs to. Decisions that changed no case (ALLOW) reach the journal through
// EnqueueDecision: batched off the request thread, so the ALLOW path does no disk I/O. The decision
// rows make idempotency (same tenant_id + request_id -> same decision) survive a restart.
//
// A null journal (`--store memory`) keeps everything in memory only.
//
// A shared journal (shared() true: store/postgres_store.h, one database behind many servers) makes
// the case store a projection of the database. Every operation that may change a case runs as a
// turn: Begin serializes it against every other server and hands over what they committed since
// this server last looked, the case store absorbs that, runs the operation and Commits (ending the
// turn) or Aborts. Between turns Poll hands over the other servers' changes (scopes in force,
// watchers and reads follow them). A shared journal never keeps a failed change for a retry: the
// case store asks Begin for a full reload instead.
//
// Implementations must be thread-safe. store/sqlite_store.h is the embedded durable one.
#ifndef AGATE_CASES_CASE_JOURNAL_H_
#define AGATE_CASES_CASE_JOURNAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agate/store/v1/store.pb.h"
#include "agate/v1/agate.pb.h"
#include "engine/decision.h"

namespace agate::cases {

// One decision, kept for idempotency. key is tenant_id '\0' request_id; digest identifies the
// request's contents (a reused request_id with other contents is refused); response is the
// serialized EvaluateResponse the client received.
struct DecisionRow {
  std::string key;
  std::string digest;
  std::string response;
  absl::Time decided_at;
};

// DecisionSealer: the caller's half of committing a decision with the cases it changed. The case
// store calls Seal once it has amended the decision (it is final then), under its lock, when the
// decision changed a case; the row it returns is committed in the same batch. Seal is called at
// most once per decision and must not call the case store.
class DecisionSealer {
 public:
  virtual ~DecisionSealer() = default;
  virtual DecisionRow Seal(const engine::Decision& decision) = 0;
  // With a shared journal the case store first looks the request up among the decisions every
  // server committed with cases: key and digest identify it (empty key: no lookup). Found is
  // called (instead of Seal) when the same request was decided already; nothing is changed then.
  virtual absl::string_view key() const { return {}; }
  virtual absl::string_view digest() const { return {}; }
  virtual void Found(DecisionRow row) { (void)row; }
};

// A transition appended to a case's history (the journal keeps every one, also the joins past the
// history cap of the case itself).
struct JournalTransition {
  uint64_t case_seq = 0;
  v1::Transition transition;
};

// What one operation changed.
struct JournalBatch {
  // The full current state of every case the operation changed (upsert by seq).
  std::vector<store::v1::StoredCase> cases;
  std::vector<JournalTransition> transitions;
  // Closed cases past the retention limit, forgotten with their transitions.
  std::vector<uint64_t> forgotten;
  // Current statistics of every trigger the operation counted.
  std::vector<store::v1::StoredTriggerStats> trigger_stats;
  // The decision that caused the change, if any (committed atomically with the cases).
  std::vector<DecisionRow> decisions;
  // Kill switches engaged (kept) or lifted (engaged = false: deleted), by their key.
  std::vector<store::v1::StoredKillSwitch> kill_switches;

  bool empty() const {
    return cases.empty() && transitions.empty() && forgotten.empty() && trigger_stats.empty() &&
           decisions.empty() && kill_switches.empty();
  }
};

// What a journal holds, read back at start-up (CaseStore::Create restores it).
struct JournalContents {
  std::vector<store::v1::StoredCase> cases;
  std::vector<store::v1::StoredTriggerStats> trigger_stats;
  std::vector<store::v1::StoredKillSwitch> kill_switches;
};

// What other servers committed to a shared journal: their changes in commit order, or (reload)
// the journal's whole contents, which replace the case store's.
struct RemoteChanges {
  std::vector<store::v1::StoredChange> changes;
  bool reload = false;
  JournalContents contents;
};

class CaseJournal {
 public:
  virtual ~CaseJournal() = default;

  // Commit makes batch durable atomically (all or nothing). UNAVAILABLE (or RESOURCE_EXHAUSTED
  // for a full disk) with the file and the reason when it cannot.
  virtual absl::Status Commit(const JournalBatch& batch) = 0;

  // EnqueueDecision queues a decision row to be written in the background (within a short
  // interval). Never blocks on I/O; a row lost to a crash before it was written only means that
  // request is evaluated again if retried after the restart.
  virtual void EnqueueDecision(DecisionRow row) = 0;

  // Shared journals only (the defaults are a private journal's).
  virtual bool shared() const { return false; }
  // Begin starts a turn (it waits while another server's turn runs) and appends to *out what other
  // servers committed since this one's last Begin or Poll; with reload, the whole contents
  // instead. UNAVAILABLE when the database cannot be reached (the operation fails closed). The
  // turn ends with Commit (committed or, on error, rolled back) or Abort.
  virtual absl::Status Begin(bool reload, RemoteChanges* out) {
    (void)reload;
    (void)out;
    return absl::OkStatus();
  }
  // Abort ends the current turn without a change (nothing when no turn is open).
  virtual void Abort() {}
  // Poll appends what other servers committed since this one's last Begin or Poll (no turn).
  virtual absl::Status Poll(RemoteChanges* out) {
    (void)out;
    return absl::OkStatus();
  }
  // FindDecision returns the decision row committed with cases under key (tenant_id '\0'
  // request_id), within a turn.
  virtual absl::StatusOr<std::optional<DecisionRow>> FindDecision(absl::string_view key) {
    (void)key;
    return std::nullopt;
  }
};

}  // namespace agate::cases

#endif  // AGATE_CASES_CASE_JOURNAL_H_
