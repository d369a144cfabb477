// CaseStore: the escalation lifecycle. Every non-ALLOW verdict becomes an owned, timed case.
//
// After the Evaluator decided a request and the decision was encoded into an EvaluateResponse,
// Apply turns it into cases:
//   - each fired lane opens a case, or joins the OPEN case of the same lane and scope key (item:
//     tenant+workflow+item; workflow: tenant+workflow; credential: tenant+credential), appending
//     the fired triggers, the request id and the evidence. The response gets the winning lane's
//     case_id and the ids of every case the decision touched.
//   - redemption: a request naming an APPROVED HOLD/PARK_ITEM/BLOCK case in approval.case_id gets
//     ALLOW once, if its tenant and action (see fingerprint.h) are the approved ones, every case
//     the approved action opened is approved, and nothing else fires now. Otherwise the normal
//     verdict with a reason.
//   - scopes in force: an OPEN SAFE_MODE case gives non-critical actions of its workflow
//     SAFE_MODE; a case that timed out with pause_workflow holds (HOLD) every action of its
//     workflow; one that timed out with disable_credential denies (DENY) every action with its
//     credential; until the case is acknowledged.
// Acknowledge moves an OPEN case to APPROVED, REJECTED or RESOLVED (only its owner, backup, or for
// route_to_fallback lanes its fallback). RunDueTimers runs the lane's on_timeout for every case
// whose SLA deadline passed: notify_backup / route_to_fallback (the backup / fallback owns the
// case, with a new deadline of one SLA), pause_workflow, disable_credential, expire (EXPIRED).
// Every transition is an event for watchers (bounded buffers; a slow watcher loses events, it
// never slows Evaluate: see CaseWatcher).
//
// Time comes from the injected Clock: tests run timers in virtual time. There is one timer heap;
// the server calls RunDueTimers from one thread at NextDeadline.
//
// Durability: with a CaseJournal (engine/case_journal.h) every operation that changes a case
// commits what it changed before it returns, under the store's lock (so the journal sees changes
// in the order they happened). A failed commit fails the operation with the journal's status;
// the change stays in memory, marked unsynced, and is committed with the next batch or by Sync.
// Restore rebuilds the store from what the journal kept, before the store is used.
//
// Thread-safe. The ALLOW path (nothing fired, no approval, no scope in force anywhere) takes no
// lock and allocates nothing; with scopes in force it takes a reader lock.
//
// Example:
//   CaseStore store(clock);
//   Decision d = evaluator.Evaluate(request);
//   EncodeDecision(d, &response);
//   RETURN_IF_ERROR(store.Apply(request, d, &response));   // response.case_id() is the case
//   store.Acknowledge({.case_id = id, .decision = v1::DECISION_APPROVE, .approver = "lead"});
#ifndef AGATE_ENGINE_CASE_STORE_H_
#define AGATE_ENGINE_CASE_STORE_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agate/v1/agate.pb.h"
#include "engine/case_journal.h"
#include "engine/clock.h"
#include "engine/decision.h"
#include "engine/matrix.h"
#include "engine/request.h"

namespace agate::engine {

struct CaseStoreOptions {
  // Past this many OPEN cases a decision that would open one fails with RESOURCE_EXHAUSTED (the
  // client fails closed): an escalation is never silently dropped.
  size_t max_open_cases = 1'000'000;
  // Closed cases kept for GetCase/ListCases (and in the durable store): at most this many, and
  // at most this many bytes of them (protobuf's SpaceUsedLong of each, taken when it closes; a
  // case that dozens of requests joined weighs tens of kilobytes: in tests/soak.sh each added
  // about 80 KB of RSS, more than the estimate). The oldest closed are forgotten first; the
  // newest one is always kept.
  size_t max_closed_cases = 100'000;
  size_t max_closed_case_bytes = size_t{16} << 20;
  // Per case: fired entries, request ids, recent-history lines and links kept (the newest
  // request ids and history, the first fired entries and links; counts go on).
  size_t max_fired_per_case = 100;
  size_t max_request_ids_per_case = 100;
  size_t max_history_lines = 20;
  // Events buffered per watcher before it starts losing them.
  size_t watcher_buffer = 1024;
};

// A human decision on a case.
struct Acknowledgement {
  std::string case_id;
  v1::Decision decision = v1::DECISION_UNSPECIFIED;
  std::string approver;
  std::string comment;
};

// CaseWatcher receives the case events matching its filter. A full buffer drops the newest event
// and counts it; the next event delivered carries the count in `dropped` (sequence numbers show
// the gap too). Thread-safe.
class CaseWatcher {
 public:
  CaseWatcher(v1::WatchCasesRequest filter, size_t capacity, std::function<void()> notify);

  // Next pops the oldest buffered event into *event; false if there is none.
  bool Next(v1::CaseEvent* event);
  // dropped_total returns how many events this watcher lost.
  uint64_t dropped_total() const;

 private:
  friend class CaseStore;
  bool Matches(const v1::Case& c) const;
  // Push buffers event (or drops it) and calls notify.
  void Push(const v1::CaseEvent& event);

  const v1::WatchCasesRequest filter_;
  const size_t capacity_;
  const std::function<void()> notify_;
  mutable absl::Mutex mu_;
  std::deque<v1::CaseEvent> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t pending_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_total_ ABSL_GUARDED_BY(mu_) = 0;
};

class CaseStore {
 public:
  // journal (may be null: memory only) must outlive the store.
  explicit CaseStore(const Clock& clock, CaseStoreOptions options = {},
                     CaseJournal* journal = nullptr);
  ~CaseStore();
  CaseStore(const CaseStore&) = delete;
  CaseStore& operator=(const CaseStore&) = delete;

  // Apply records decision (made for request, already encoded into *response) and updates
  // *response: case_id, case_ids, and verdict/lane/owner/backup/sla_deadline/actions/reason when
  // a redemption or a scope in force changes the verdict. RESOURCE_EXHAUSTED when a case should
  // open but max_open_cases are open (nothing is changed then); the journal's error when the
  // change could not be made durable.
  // When the decision changes a case and row is not null, row->response is set to the final
  // response and the row is committed with the cases (row->committed = true); otherwise row is
  // left for the caller (an ALLOW: CaseJournal::EnqueueDecision).
  absl::Status Apply(const Request& request, const Decision& decision,
                     v1::EvaluateResponse* response, DecisionRow* row = nullptr);

  // Acknowledge applies a human decision. INVALID_ARGUMENT (missing case_id, decision or
  // approver; approver over 256 bytes, comment over 4096), NOT_FOUND (unknown case),
  // FAILED_PRECONDITION (case not OPEN; APPROVE of a DENY case), PERMISSION_DENIED (approver is
  // not the owner, backup or, for route_to_fallback lanes, fallback). Returns the updated case.
  absl::StatusOr<v1::Case> Acknowledge(const Acknowledgement& ack);

  // Get returns a case (NOT_FOUND if unknown or forgotten).
  absl::StatusOr<v1::Case> Get(absl::string_view case_id) const;

  // List returns cases matching request's filters, newest first. INVALID_ARGUMENT for a
  // page_size outside [0, 1000] or a page_token this store did not issue.
  absl::StatusOr<v1::ListCasesResponse> List(const v1::ListCasesRequest& request) const;

  // Watch subscribes to events from now on. notify is called (possibly under the store's lock,
  // from any thread) after an event was buffered: it must not block nor call the CaseStore.
  std::shared_ptr<CaseWatcher> Watch(const v1::WatchCasesRequest& filter,
                                     std::function<void()> notify);
  // Unwatch ends a subscription; the watcher receives nothing more.
  void Unwatch(const std::shared_ptr<CaseWatcher>& watcher);
  // watchers returns the number of subscriptions.
  size_t watchers() const;

  // RunDueTimers runs the on_timeout of every OPEN case whose deadline is at or before the
  // clock's now, in deadline order. Returns how many ran.
  int RunDueTimers();
  // NextDeadline returns the earliest armed deadline, if any.
  std::optional<absl::Time> NextDeadline() const;

  // Stats reports per trigger: every trigger of matrix (if not null) in order, then any other
  // trigger with counts.
  v1::GetStatsResponse Stats(const Matrix* matrix) const;

  // open_cases returns how many cases are OPEN.
  size_t open_cases() const;

  // Restore loads what a journal kept (CaseJournal implementations read it back at start-up):
  // cases with their indexes, SLA timers (deadlines already passed run at the next
  // RunDueTimers), scopes in force and trigger statistics. Call it once, on an empty store,
  // before any other method. INVALID_ARGUMENT for contents that do not fit together (duplicate
  // seq or id).
  absl::Status Restore(const JournalContents& contents);

  // Sync commits the changes a failed commit left unsynced (the server calls it periodically).
  // OK when there is nothing to commit.
  absl::Status Sync();
  // unsynced returns how many cases have changes not yet committed to the journal.
  size_t unsynced() const;

 private:
  struct Record;
  struct TriggerCounts;
  struct Timer {
    absl::Time deadline;
    uint64_t seq;
    uint64_t generation;
    bool operator>(const Timer& o) const { return deadline > o.deadline; }
  };
  // What a scope in force does to a request.
  enum InForce { kSafeMode = 0, kPaused = 1, kDisabled = 2 };
  struct Forced {
    uint64_t seq = 0;
    InForce kind = kSafeMode;
    Verdict verdict = v1::VERDICT_UNSPECIFIED;
  };

  std::optional<Forced> FindInForce(const Request& request) const;
  void CountDecision(Verdict verdict);
  bool TryRedeem(const Request& request, const Decision& decision, v1::EvaluateResponse* response,
                 std::string* why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Record* OpenOrJoin(const Request& request, const Decision& decision, int lane,
                     const v1::EvaluateResponse& response, std::vector<Record*>* opened)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunTimeout(Record& record, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // KeepClosed counts record (just closed, or restored closed) among the closed cases and
  // forgets the oldest past max_closed_cases or max_closed_case_bytes.
  void KeepClosed(Record& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Close(Record& record, v1::CaseState state, absl::Time now, absl::string_view event,
             absl::string_view actor, absl::string_view comment) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Transition(Record& record, absl::Time now, absl::string_view event, absl::string_view actor,
                  absl::string_view comment) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Arm(Record& record, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish(const Record& record, const v1::Transition& transition)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetInForce(Record& record, InForce kind, bool on) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Touch(const Record& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  TriggerCounts& CountsFor(const std::string& trigger_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Commit sends what the operation changed (and anything unsynced) to the journal, with row.
  absl::Status Commit(const v1::EvaluateResponse* response, DecisionRow* row)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  store::v1::StoredCase ToStored(const Record& record) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Record* FindRecord(absl::string_view case_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;
  const CaseStoreOptions options_;
  CaseJournal* const journal_;

  mutable absl::Mutex mu_;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_event_ ABSL_GUARDED_BY(mu_) = 1;
  // Every case kept, by creation sequence (ListCases pages by it, newest first).
  std::map<uint64_t, std::unique_ptr<Record>> by_seq_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> by_id_ ABSL_GUARDED_BY(mu_);
  // OPEN cases by lane and scope key.
  absl::flat_hash_map<std::string, uint64_t> open_by_key_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> closed_order_ ABSL_GUARDED_BY(mu_);
  size_t closed_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // the closed cases' Record::closed_bytes
  std::atomic<size_t> open_count_{0};
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, TriggerCounts> trigger_counts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<CaseWatcher>> watchers_ ABSL_GUARDED_BY(mu_);

  // What the current operation changed, and what failed commits left unsynced: both go into the
  // next JournalBatch.
  struct Changes {
    absl::flat_hash_set<uint64_t> cases;
    std::vector<JournalTransition> transitions;
    std::vector<uint64_t> forgotten;
    absl::flat_hash_set<std::string> triggers;
  };
  Changes changes_ ABSL_GUARDED_BY(mu_);
  Changes unsynced_ ABSL_GUARDED_BY(mu_);

  // Scopes in force: key -> sequence numbers of the cases putting it in force. Written under
  // mu_ then in_force_mu_; read under in_force_mu_ alone (the ALLOW path).
  mutable absl::Mutex in_force_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::array<absl::flat_hash_map<std::string, std::vector<uint64_t>>, 3> in_force_
      ABSL_GUARDED_BY(in_force_mu_);
  std::atomic<int64_t> in_force_count_{0};

  std::array<std::atomic<uint64_t>, 7> decisions_{};  // by Verdict number
};

}  // namespace agate::engine

#endif  // AGATE_ENGINE_CASE_STORE_H_
