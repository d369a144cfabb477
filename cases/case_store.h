// CaseStore: the escalation lifecycle. Every non-ALLOW verdict becomes an owned, timed case.
//
// Apply takes a decision the evaluator made and settles it against the cases, amending it where
// cases change the answer (engine/decision.h):
//   - each fired lane opens a case, or joins the OPEN case of the same lane and scope key (item:
//     tenant+workflow+item; workflow: tenant+workflow; credential: tenant+credential), appending
//     the fired triggers, the request id and the evidence. The decision gets the reported lane's
//     case_id and the ids of every case it touched.
//   - redemption: a request naming an APPROVED HOLD/PARK_ITEM/BLOCK case in approval.case_id gets
//     ALLOW once, if its tenant and action (see engine/fingerprint.h) are the approved ones, every
//     case the approved action opened is approved, and nothing else fires now. Otherwise the
//     normal verdict with a reason.
//   - scopes in force (cases/scopes_in_force.h): a more restrictive verdict a scope imposes
//     replaces the evaluated one, reporting the imposing case's lane, with a reason.
// Acknowledge moves an OPEN case to APPROVED, REJECTED or RESOLVED: only a member of the case's
// owner, backup or (route_to_fallback lanes) fallback group for the case's tenant, never an agent
// whose request opened or joined it, never the person the agent acted for when the lane says
// requester_may_approve: false; a lane with approvals: N needs N distinct approvers (one REJECT
// rejects). An approval is redeemable by the agent that asked, for the same item and action,
// until the lane's approval_ttl passes. Kill switches (SetKillSwitch, admins only: the server
// checks) deny every action in their scope. RunDueTimers runs the lane's on_timeout for every case
// whose SLA deadline passed: notify_backup / route_to_fallback (the backup / fallback owns the
// case, with a new deadline of one SLA), pause_workflow, disable_credential, expire (EXPIRED).
// Every transition is an event for watchers (cases/watchers.h) and, but joins, a record for the
// audit sink (cases/audit.h). Reads take a TenantScope: another tenant's case is NOT_FOUND.
//
// Time comes from the injected Clock: tests run timers in virtual time. There is one timer heap;
// the server calls RunDueTimers from one thread at NextDeadline.
//
// Durability: with a CaseJournal (cases/case_journal.h) every operation that changes a case
// commits what it changed, and the decision that changed it (DecisionSealer), before it returns,
// under the store's lock (so the journal sees changes in the order they happened). A failed commit
// fails the operation with the journal's status; the change stays in memory, unsynced, and is
// committed with the next batch or by Sync.
//
// Shared journal (many servers on one database, store/postgres_store.h): the store is a
// projection of the journal. Each operation that may change a case runs as a turn (Begin: it
// waits for the other servers' turns and absorbs what they committed, then the operation runs as
// above and Commits, or Aborts); the server calls Refresh between turns so that scopes in force,
// reads and watchers follow the other servers. Absorbed transitions are published to watchers
// (the server that made them audited them). A failed commit or a turn that cannot begin fails the
// operation (UNAVAILABLE: the client fails closed); after a failed commit the next turn or
// Refresh reloads the whole store from the journal. With a shared journal the request's decision
// row is looked up first (DecisionSealer::key): a request another server decided is answered from
// it, one with the same request_id and other contents is ALREADY_EXISTS.
//
// Thread-safe. The ALLOW path (nothing fired, no approval, no scope in force anywhere) takes no
// lock and allocates nothing; with scopes in force it takes a reader lock.
//
// Example:
//   ASSIGN_OR_RETURN(std::unique_ptr<CaseStore> store, CaseStore::Create(clock));
//   engine::Decision d = engine::Evaluate(matrix, request, clock.Now());
//   RETURN_IF_ERROR(store->Apply(request, &d));   // d.case_id is the case
//   store->Acknowledge({.case_id = d.case_id, .decision = v1::DECISION_APPROVE,
//                       .actor = Actor::Unverified("finance-approver")});
#ifndef AGATE_CASES_CASE_STORE_H_
#define AGATE_CASES_CASE_STORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agate/v1/agate.pb.h"
#include "cases/actor.h"
#include "cases/audit.h"
#include "cases/case_index.h"
#include "cases/case_journal.h"
#include "cases/journal_buffer.h"
#include "cases/scopes_in_force.h"
#include "cases/trigger_stats.h"
#include "cases/watchers.h"
#include "common/clock.h"
#include "engine/decision.h"
#include "engine/matrix.h"
#include "engine/request.h"

namespace agate::cases {

// OpenKeyOf returns the key under which a decision of lane (with scope) for request opens or
// joins a case: the OPEN case of the same lane and scope key is joined. Shadow mode
// (service/live_shadow.h) estimates a candidate's cases with the same rule.
std::string OpenKeyOf(absl::string_view lane, engine::Scope scope, const engine::Request& request);
// OpenKeyOf returns the key an OPEN case is filed under (the same as for the request that opened
// it); the shared store's unique index is on it.
std::string OpenKeyOf(const v1::Case& c);

struct CaseStoreOptions {
  // Past this many OPEN cases a decision that would open one fails with RESOURCE_EXHAUSTED (the
  // client fails closed): an escalation is never silently dropped.
  size_t max_open_cases = 1'000'000;
  // Past this many OPEN cases of one tenant, a decision that would open another for that tenant
  // fails with RESOURCE_EXHAUSTED naming the tenant and its quota (0: no quota). One tenant cannot
  // fill the store for all.
  size_t max_open_cases_per_tenant = 100'000;
  // Once the OPEN cases hold this many bytes (protobuf's SpaceUsedLong of each, taken at each
  // change), a decision that would open a case fails with RESOURCE_EXHAUSTED; joins still append
  // to open cases (each is bounded below). The total may pass it by one case's growth.
  size_t max_open_case_bytes = size_t{512} << 20;
  // Evidence a case keeps: of each entry, the first max_evidence_entry_bytes (cut at a UTF-8
  // character boundary), of all its entries together max_evidence_case_bytes; a cut entry is
  // listed in evidence.truncated with its whole size and SHA-256.
  size_t max_evidence_entry_bytes = size_t{16} << 10;
  size_t max_evidence_case_bytes = size_t{256} << 10;
  // Closed cases kept for GetCase/ListCases (and in the durable store): at most this many, and
  // at most this many bytes of them (protobuf's SpaceUsedLong of each, taken when it closes). The
  // oldest closed are forgotten first; the newest one is always kept.
  size_t max_closed_cases = 100'000;
  size_t max_closed_case_bytes = size_t{16} << 20;
  // Per case: fired entries, request ids, recent-history lines kept (the newest request ids and
  // history, the first fired entries; counts go on).
  size_t max_fired_per_case = 100;
  size_t max_request_ids_per_case = 100;
  size_t max_history_lines = 20;
  // Each watcher's buffer.
  WatcherLimits watcher;
  // Where transitions and kill switch changes are audited; null: nowhere. Must outlive the
  // store.
  AuditSink* audit = nullptr;
};

// A human decision on a case.
struct Acknowledgement {
  std::string case_id;
  v1::Decision decision = v1::DECISION_UNSPECIFIED;
  Actor actor;
  std::string comment;
};

class CaseStore {
 public:
  // Create returns a store that commits to journal (may be null: memory only; it must outlive
  // the store), with restore's cases, SLA timers (deadlines already passed run at the next
  // RunDueTimers), scopes in force and trigger statistics when restore is not null.
  // INVALID_ARGUMENT for restored contents that do not fit together (a duplicate seq or id).
  static absl::StatusOr<std::unique_ptr<CaseStore>> Create(
      const Clock& clock, CaseStoreOptions options = {}, CaseJournal* journal = nullptr,
      const JournalContents* restore = nullptr);
  ~CaseStore();
  CaseStore(const CaseStore&) = delete;
  CaseStore& operator=(const CaseStore&) = delete;

  // Apply settles *decision (the evaluator's, made for request) against the cases and amends it:
  // case_id, case_ids, and for a redemption or a scope in force the verdict, reported lane,
  // deadline, missing evidence and reason. caller is the verified principal that asked (an
  // agent's subject; empty in development mode): it may never acknowledge the cases it opens or
  // joins. When the decision changes a case and sealer is not null, the sealer's row is
  // committed with the cases. RESOURCE_EXHAUSTED when a case should open but max_open_cases are
  // open (nothing is changed then); the journal's error when the change could not be made
  // durable.
  absl::Status Apply(const engine::Request& request, engine::Decision* decision,
                     DecisionSealer* sealer = nullptr, absl::string_view caller = {});

  // Acknowledge applies a human decision. INVALID_ARGUMENT (missing case_id or decision; no
  // actor subject, or one over 256 bytes; comment over 4096), NOT_FOUND (unknown, or another
  // tenant's case), FAILED_PRECONDITION (case not OPEN; APPROVE of a DENY case; the same person
  // approving twice toward a quorum), PERMISSION_DENIED (an agent; a requester of the case; not a
  // member of the owner, backup or fallback group for the tenant; the person the agent acted for,
  // where the lane forbids it). Returns the updated case.
  absl::StatusOr<v1::Case> Acknowledge(const Acknowledgement& ack);

  // Get returns a case (NOT_FOUND if unknown, forgotten, or outside scope; INVALID_ARGUMENT for
  // an empty case_id or one over 256 bytes, which the error does not quote).
  absl::StatusOr<v1::Case> Get(absl::string_view case_id,
                               const TenantScope& scope = TenantScope::All()) const;

  // List returns cases matching request's filters within scope, newest first. It reads the
  // index of the state, lane and tenant filters (cases/case_index.h) and examines at most
  // kMaxListExamined cases: when the owner filter or scope skip that many, the page is short (even
  // empty) and next_page_token continues. INVALID_ARGUMENT naming the field for an unknown state, a
  // filter over 256 bytes, a page_size outside [0, 1000] or a page_token this store did not
  // issue.
  static constexpr int kMaxListExamined = 10'000;
  absl::StatusOr<v1::ListCasesResponse> List(const v1::ListCasesRequest& request,
                                             const TenantScope& scope = TenantScope::All()) const;

  // CheckWatchFilter: INVALID_ARGUMENT naming the field for a filter Watch would not take (an id
  // longer than 256 bytes, a batch_window outside [0, 10 s], a view that is not a CaseView).
  static absl::Status CheckWatchFilter(const v1::WatchCasesRequest& filter);
  // Watch subscribes to events of scope's cases from now on. notify is called (possibly under the
  // store's lock, from any thread) after an event was buffered: it must not block nor call the
  // CaseStore.
  // local_only: only this server's transitions, not those absorbed from a shared journal.
  std::shared_ptr<CaseWatcher> Watch(const v1::WatchCasesRequest& filter, TenantScope scope,
                                     std::function<void()> notify, bool local_only = false);
  // Unwatch ends a subscription; the watcher receives nothing more.
  void Unwatch(const std::shared_ptr<CaseWatcher>& watcher);
  // watchers returns the number of subscriptions.
  size_t watchers() const;

  // RunDueTimers runs the on_timeout of every OPEN case whose deadline is at or before the
  // clock's now, in deadline order. Returns how many ran.
  int RunDueTimers();
  // NextDeadline returns the earliest armed deadline, if any.
  std::optional<absl::Time> NextDeadline() const;

  // Stats appends per trigger (every trigger of matrix, if not null, in order, then any other
  // trigger with counts) to *out and sets its open_cases, counting scope's tenants only.
  void Stats(const engine::Matrix* matrix, const TenantScope& scope,
             v1::GetStatsResponse* out) const;
  // OwnerLoads appends the review load of scope's tenants to out->owners: per (tenant, current
  // owner) of the OPEN cases, how many and their median and largest age. O(open cases) under the
  // store's lock (an operator's call, not the decision path).
  void OwnerLoads(const TenantScope& scope, v1::GetStatsResponse* out) const;

  // SetKillSwitch engages or lifts a kill switch, durably, effective for the next request on
  // every thread. The caller checked that by is an admin. INVALID_ARGUMENT naming the field (no
  // scope or tenant; no value for an agent, workflow or credential switch, or one for a tenant
  // switch; no reason to engage), NOT_FOUND lifting a switch that is not engaged,
  // ALREADY_EXISTS engaging one that is; the journal's error when it cannot be made durable.
  absl::StatusOr<v1::KillSwitch> SetKillSwitch(const v1::SetKillSwitchRequest& request,
                                               const v1::Principal& by);
  // KillSwitches returns the engaged switches of scope's tenants, oldest first.
  std::vector<v1::KillSwitch> KillSwitches(const TenantScope& scope) const;

  // open_cases returns how many cases are OPEN; open_case_bytes what they hold.
  size_t open_cases() const;
  size_t open_case_bytes() const;
  // OpenCasesByLane returns how many cases are OPEN in each of lanes (in that order).
  std::vector<size_t> OpenCasesByLane(const std::vector<std::string>& lanes) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Timeouts returns how many SLA timeouts ran, by lane and on_timeout, sorted; since the start.
  std::vector<std::tuple<std::string, v1::TimeoutBehavior, uint64_t>> Timeouts() const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Sync commits the changes a failed commit left unsynced (the server calls it periodically).
  // OK when there is nothing to commit.
  absl::Status Sync();
  // Refresh absorbs what other servers committed to a shared journal since the last turn or
  // Refresh (the server calls it every --postgres-poll); the journal's error when it cannot be
  // read. OK (and nothing) with a private journal or none.
  absl::Status Refresh();
  // unsynced returns how many cases have changes not yet committed to the journal.
  size_t unsynced() const;

 private:
  struct Record;
  class Turn;
  struct Timer {
    absl::Time deadline;
    uint64_t seq;
    uint64_t generation;
    bool operator>(const Timer& o) const { return deadline > o.deadline; }
  };

  CaseStore(const Clock& clock, CaseStoreOptions options, CaseJournal* journal);
  absl::Status Restore(const JournalContents& contents);
  absl::Status RestoreLocked(const JournalContents& contents) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // File adds a stored case to every index (and arms its timer, puts its scopes in force); a
  // closed one is not yet counted among the closed (KeepClosed).
  Record& File(const store::v1::StoredCase& stored) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Unfile removes a case from every index, as if it had never been filed.
  void Unfile(Record& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Absorb applies what other servers committed (a shared journal's RemoteChanges).
  void Absorb(const RemoteChanges& remote) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AbsorbCase(const store::v1::StoredCase& stored) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // EngageKillSwitch engages (a new id, in force) or lifts a kill switch in memory.
  void EngageKillSwitch(const store::v1::StoredKillSwitch& stored)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::map<uint64_t, v1::KillSwitch>::iterator FindKillSwitch(const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Redeem amends *decision into the approval's ALLOW when request may redeem the case it names;
  // otherwise it sets *why and returns false.
  bool Redeem(const engine::Request& request, engine::Decision* decision, std::string* why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Impose amends *decision with a scope in force (a kill switch first), when one applies and is
  // more restrictive.
  void Impose(const engine::Request& request, engine::Decision* decision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Record* OpenOrJoin(const engine::Request& request, const engine::Decision& decision, int lane,
                     absl::string_view caller, std::vector<Record*>* opened)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Authorize returns why actor may not acknowledge record with decision, or OK.
  absl::Status Authorize(const Record& record, const Acknowledgement& ack) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunTimeout(Record& record, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // KeepClosed counts record (just closed, or restored closed) among the closed cases and
  // forgets the oldest past max_closed_cases or max_closed_case_bytes.
  void KeepClosed(Record& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Close(Record& record, v1::CaseState state, absl::Time now, absl::string_view event,
             const v1::Principal& by, absl::string_view comment) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Transition appends to the case's history (unless past the cap, for joins), journals the
  // transition, publishes it and (but joins) audits it.
  void Transition(Record& record, absl::Time now, absl::string_view event, const v1::Principal& by,
                  absl::string_view comment, bool in_history = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Announce publishes a transition of case c to the watchers and (but joins) audits it.
  void Announce(const v1::Case& c, const v1::Transition& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Arm(Record& record, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetInForce(Record& record, ScopesInForce::Kind kind, bool on)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CountOpen counts record, just opened or restored OPEN, among the open cases of its tenant.
  void CountOpen(Record& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // UncountOpen undoes CountOpen (and MeasureOpen) for a case leaving OPEN or the store: its open
  // key, per-tenant count, bytes, review load and scopes in force.
  void UncountOpen(Record& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Load / Unload file an OPEN case under its (tenant, current owner) in owner_load_.
  void Load(const Record& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unload(const Record& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OwnerOpen returns how many OPEN cases owner holds for tenant.
  size_t OwnerOpen(absl::string_view tenant, absl::string_view owner) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // MeasureOpen retakes the bytes an OPEN record holds.
  void MeasureOpen(Record& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CheckRoom refuses opening to_open cases for tenant past a limit (RESOURCE_EXHAUSTED).
  absl::Status CheckRoom(size_t to_open, absl::string_view tenant) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // KeepEvidence appends the request's evidence to the case, within the evidence bounds.
  void KeepEvidence(const engine::Request& request, v1::EvidencePacket* packet) const;
  // Commit sends what the operation changed (and anything unsynced) to the journal, with the
  // sealer's row for decision when both are given.
  absl::Status Commit(const engine::Decision* decision, DecisionSealer* sealer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  store::v1::StoredCase ToStored(const Record& record) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Record* FindRecord(absl::string_view case_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;
  const CaseStoreOptions options_;
  CaseJournal* const journal_;

  mutable absl::Mutex mu_;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  // Timer generations are unique in the store: a case absorbed again never matches an old timer.
  uint64_t generations_ ABSL_GUARDED_BY(mu_) = 0;
  // A commit to a shared journal failed: the next turn or Refresh reloads the store from it.
  bool resync_ ABSL_GUARDED_BY(mu_) = false;
  // In a shared journal's turn the transitions are published and audited once the turn
  // committed (a change the database refused never reaches a watcher, the webhook or the log).
  bool defer_events_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<v1::Case, v1::Transition>> deferred_ ABSL_GUARDED_BY(mu_);
  // Every case kept, by creation sequence (ListCases pages by it, newest first).
  std::map<uint64_t, std::unique_ptr<Record>> by_seq_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> by_id_ ABSL_GUARDED_BY(mu_);
  // OPEN cases by lane and scope key.
  absl::flat_hash_map<std::string, uint64_t> open_by_key_ ABSL_GUARDED_BY(mu_);
  // Every case kept, by state, lane and tenant (ListCases reads it).
  CaseIndex index_ ABSL_GUARDED_BY(mu_);
  // OPEN cases per tenant, and the bytes they hold (Record::open_bytes).
  absl::flat_hash_map<std::string, size_t> open_per_tenant_ ABSL_GUARDED_BY(mu_);
  size_t open_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // The review load: when each OPEN case opened, by (tenant, current owner), in that order.
  std::map<std::pair<std::string, std::string>, std::multiset<absl::Time>> owner_load_
      ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> closed_order_ ABSL_GUARDED_BY(mu_);
  size_t closed_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // the closed cases' Record::closed_bytes
  std::atomic<size_t> open_count_{0};
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_ ABSL_GUARDED_BY(mu_);
  TriggerStats trigger_stats_ ABSL_GUARDED_BY(mu_);
  // SLA timeouts run, by lane and on_timeout (Timeouts).
  std::map<std::pair<std::string, v1::TimeoutBehavior>, uint64_t> timeouts_ ABSL_GUARDED_BY(mu_);
  WatcherSet watchers_ ABSL_GUARDED_BY(mu_);
  // Engaged kill switches by id (ids count up from 1; restored ones keep their order).
  std::map<uint64_t, v1::KillSwitch> kill_switches_ ABSL_GUARDED_BY(mu_);
  uint64_t next_kill_id_ ABSL_GUARDED_BY(mu_) = 1;
  JournalBuffer journal_buffer_ ABSL_GUARDED_BY(mu_);
  // Written under mu_ (then its own lock); read by Apply's ALLOW path without mu_.
  ScopesInForce scopes_;
};

}  // namespace agate::cases

#endif  // AGATE_CASES_CASE_STORE_H_
