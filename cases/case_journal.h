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
// Implementations must be thread-safe. store/sqlite_store.h is the durable one.
#ifndef AGATE_CASES_CASE_JOURNAL_H_
#define AGATE_CASES_CASE_JOURNAL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
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
};

}  // namespace agate::cases

#endif  // AGATE_CASES_CASE_JOURNAL_H_
