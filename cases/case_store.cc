#include "cases/case_store.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "engine/decision_codec.h"
#include "engine/fingerprint.h"
#include "google/protobuf/util/json_util.h"

namespace agate::cases {

using engine::Decision;
using engine::Lane;
using engine::Matrix;
using engine::Request;
using engine::Trigger;
using engine::Verdict;

// One case and what the store needs to run it.
struct CaseStore::Record {
  uint64_t seq = 0;
  v1::Case c;
  // The lane as the case keeps it (its definition when the case opened): owner, backup,
  // fallback, SLA, on_timeout, actions, required evidence.
  std::shared_ptr<const Lane> lane;
  std::string open_key;           // lane '\0' scope key: the OPEN-case index
  std::string canonical_action;   // what an approval is bound to
  std::string workflow_key;       // ScopesInForce::WorkflowKey
  std::string credential_key;     // ScopesInForce::CredentialKey
  std::vector<uint64_t> related;  // the cases the opening decision touched (itself included)
  absl::flat_hash_set<std::string> triggers;
  std::array<bool, ScopesInForce::kKinds> in_force{};
  uint64_t generation = 0;  // of the armed timer
  bool timer_armed = false;
  size_t closed_bytes = 0;  // counted in closed_bytes_ once closed
  size_t open_bytes = 0;    // counted in open_bytes_ while OPEN
};

namespace {

constexpr size_t kMaxApproverBytes = 256;
// Case ids are agate's ("case_" and a ULID); a filter names a lane, tenant or owner: 256 bytes
// bound them like request ids, and an error quotes at most this much.
constexpr size_t kMaxIdBytes = 256;
constexpr size_t kMaxCommentBytes = 4096;
constexpr size_t kMaxAttached = 64;
constexpr size_t kMaxLinks = 20;
constexpr size_t kMaxJoinsInHistory = 50;
// The server itself, as the history shows it.
const v1::Principal& ServerPrincipal() {
  static const v1::Principal* const kServer = [] {
    auto* p = new v1::Principal();
    p->set_subject("agate");
    p->set_kind(v1::PRINCIPAL_KIND_SERVER);
    return p;
  }();
  return *kServer;
}
// Agents whose requests opened or joined a case, kept per case at most.
constexpr size_t kMaxRequesters = 32;

// CheckId refuses an empty (when required) or over-long id, naming the field.
absl::Status CheckId(absl::string_view field, absl::string_view value, bool required) {
  if (required && value.empty())
    return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (value.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": longer than ", kMaxIdBytes, " bytes (", value.size(), ")"));
  }
  return absl::OkStatus();
}

constexpr absl::string_view kSep("\0", 1);

bool IsRedeemable(Verdict v) {
  return v == v1::VERDICT_HOLD || v == v1::VERDICT_PARK_ITEM || v == v1::VERDICT_BLOCK;
}

// A link longer than this is kept as an attached entry only.
constexpr size_t kMaxLinkBytes = 2048;

bool IsLink(absl::string_view value) {
  return value.size() <= kMaxLinkBytes &&
         (absl::StartsWith(value, "https://") || absl::StartsWith(value, "http://"));
}

// Utf8Prefix returns value's first bytes, at most limit, ending at a character boundary (value is
// valid UTF-8: the request was validated).
absl::string_view Utf8Prefix(absl::string_view value, size_t limit) {
  if (value.size() <= limit) return value;
  size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(value[n]) & 0xC0) == 0x80) --n;
  return value.substr(0, n);
}

std::string ScopeKeyOf(engine::Scope scope, const Request& request) {
  switch (scope) {
    case v1::SCOPE_WORKFLOW:
      return absl::StrCat(request.tenant_id(), "/", request.workflow_id());
    case v1::SCOPE_CREDENTIAL:
      return absl::StrCat(request.tenant_id(), "/", request.actor().credential_id());
    default:
      return absl::StrCat(request.tenant_id(), "/", request.workflow_id(), "/", request.item_id());
  }
}

// OpenKey is unambiguous (NUL-separated ids), unlike the displayed scope key.
std::string OpenKeyOf(absl::string_view lane, engine::Scope scope, absl::string_view tenant,
                      absl::string_view workflow, absl::string_view item,
                      absl::string_view credential) {
  switch (scope) {
    case v1::SCOPE_WORKFLOW:
      return absl::StrCat(lane, kSep, "w", kSep, tenant, kSep, workflow);
    case v1::SCOPE_CREDENTIAL:
      return absl::StrCat(lane, kSep, "c", kSep, tenant, kSep, credential);
    default:
      return absl::StrCat(lane, kSep, "i", kSep, tenant, kSep, workflow, kSep, item);
  }
}

absl::string_view StateName(v1::CaseState state) {
  switch (state) {
    case v1::CASE_STATE_OPEN:
      return "OPEN";
    case v1::CASE_STATE_APPROVED:
      return "APPROVED";
    case v1::CASE_STATE_REJECTED:
      return "REJECTED";
    case v1::CASE_STATE_RESOLVED:
      return "RESOLVED";
    case v1::CASE_STATE_EXPIRED:
      return "EXPIRED";
    default:
      return "UNSPECIFIED";
  }
}

absl::string_view KillScopeName(v1::KillScope scope) {
  switch (scope) {
    case v1::KILL_SCOPE_TENANT:
      return "tenant";
    case v1::KILL_SCOPE_AGENT:
      return "agent";
    case v1::KILL_SCOPE_WORKFLOW:
      return "workflow";
    case v1::KILL_SCOPE_CREDENTIAL:
      return "credential";
    default:
      return "unknown scope";
  }
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

// RestoredLane rebuilds the lane a stored case keeps.
std::shared_ptr<const Lane> RestoredLane(const store::v1::StoredCase& stored) {
  const v1::Case& c = stored.case_();
  auto lane = std::make_shared<Lane>();
  lane->name = c.lane();
  lane->owner = c.owner();
  lane->backup = c.backup();
  lane->fallback = c.fallback();
  lane->sla = absl::Nanoseconds(stored.sla_nanos());
  lane->verdict = c.verdict();
  lane->scope = c.scope();
  lane->agent_action = stored.agent_action();
  lane->operator_action = stored.operator_action();
  lane->evidence.assign(stored.required_evidence().begin(), stored.required_evidence().end());
  lane->on_timeout = c.on_timeout();
  lane->approvals = std::max(1, c.approvals_required());
  lane->requester_may_approve = !stored.requester_may_not_approve();
  lane->approval_ttl = absl::Nanoseconds(stored.approval_ttl_nanos());
  lane->fingerprint.assign(stored.fingerprint().begin(), stored.fingerprint().end());
  return lane;
}

}  // namespace

std::string OpenKeyOf(absl::string_view lane, engine::Scope scope, const Request& request) {
  return OpenKeyOf(lane, scope, request.tenant_id(), request.workflow_id(), request.item_id(),
                   request.actor().credential_id());
}

std::string OpenKeyOf(const v1::Case& c) {
  return OpenKeyOf(c.lane(), c.scope(), c.tenant_id(), c.workflow_id(), c.item_id(),
                   c.credential_id());
}

// Turn: one operation's turn on a shared journal (cases/case_journal.h). It begins (absorbing the
// other servers' changes, or reloading after a failed commit) when constructed and aborts when
// destroyed; a Commit in between ends the journal's turn, and the abort is then a no-op. With a
// private journal or none it does nothing.
class CaseStore::Turn {
 public:
  explicit Turn(CaseStore& store) ABSL_EXCLUSIVE_LOCKS_REQUIRED(store.mu_) : store_(store) {
    if (store.journal_ == nullptr || !store.journal_->shared()) return;
    shared_ = true;
    RemoteChanges remote;
    status_ = store.journal_->Begin(store.resync_, &remote);
    if (!status_.ok()) return;
    store.Absorb(remote);
    if (remote.reload) store.resync_ = false;
    store.defer_events_ = true;
  }
  ~Turn() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // the store's lock is held for the Turn's life
    if (!shared_) return;
    store_.journal_->Abort();
    store_.defer_events_ = false;
    store_.deferred_.clear();  // a turn that did not commit announces nothing
  }
  Turn(const Turn&) = delete;
  Turn& operator=(const Turn&) = delete;

  const absl::Status& status() const { return status_; }
  bool shared() const { return shared_; }

 private:
  CaseStore& store_;
  bool shared_ = false;
  absl::Status status_;
};

CaseStore::CaseStore(const Clock& clock, CaseStoreOptions options, CaseJournal* journal)
    : clock_(clock), options_(options), journal_(journal), watchers_(options.watcher) {}

CaseStore::~CaseStore() = default;

absl::StatusOr<std::unique_ptr<CaseStore>> CaseStore::Create(const Clock& clock,
                                                             CaseStoreOptions options,
                                                             CaseJournal* journal,
                                                             const JournalContents* restore) {
  std::unique_ptr<CaseStore> store(new CaseStore(clock, options, journal));
  if (restore != nullptr) RETURN_IF_ERROR(store->Restore(*restore));
  return store;
}

void CaseStore::SetInForce(Record& record, ScopesInForce::Kind kind, bool on) {
  if (record.in_force[kind] == on) return;
  record.in_force[kind] = on;
  scopes_.Set(kind, kind == ScopesInForce::kDisabled ? record.credential_key : record.workflow_key,
              record.seq, on);
}

CaseStore::Record* CaseStore::FindRecord(absl::string_view case_id) const {
  auto id = by_id_.find(case_id);
  if (id == by_id_.end()) return nullptr;
  auto it = by_seq_.find(id->second);
  return it == by_seq_.end() ? nullptr : it->second.get();
}

absl::Status CaseStore::Apply(const Request& request, Decision* decision, DecisionSealer* sealer,
                              absl::string_view caller) {
  const bool wants_redemption = !request.approval().case_id().empty();
  if (decision->verdict == v1::VERDICT_ALLOW && !wants_redemption &&
      (scopes_.empty() || !scopes_.Find(request).has_value())) {
    return absl::OkStatus();  // the hot path: no lock, no allocation
  }

  absl::MutexLock lock(&mu_);
  if (!wants_redemption && decision->fired.empty()) {
    // Nothing fired: only a scope in force may change the answer, which changes no case (no
    // commit, and with a shared journal no turn: a stopped agent's requests do not queue at the
    // database's lock).
    Impose(request, decision);
    return absl::OkStatus();
  }
  Turn turn(*this);
  RETURN_IF_ERROR(turn.status());
  if (turn.shared() && sealer != nullptr && !sealer->key().empty()) {
    // Another server may have decided this request: insert-or-read of its decision row.
    ASSIGN_OR_RETURN(std::optional<DecisionRow> row, journal_->FindDecision(sealer->key()));
    if (row.has_value()) {
      if (row->digest != sealer->digest()) {
        return absl::AlreadyExistsError(absl::StrCat(
            "request_id: ", request.request_id(), " of tenant ", request.tenant_id(),
            " was already decided at ", absl::FormatTime(row->decided_at, absl::UTCTimeZone()),
            " for a request with other contents; use a new request_id for a new request"));
      }
      sealer->Found(*std::move(row));
      return absl::OkStatus();
    }
  }
  std::string redemption_failure;
  if (wants_redemption && Redeem(request, decision, &redemption_failure)) {
    absl::Status committed = Commit(decision, sealer);
    // Shared: the failed commit makes the next turn reload the store (the redemption with it).
    if (committed.ok() || turn.shared()) return committed;
    // The client will not hear of the redemption: it must stay possible. The journal gets the
    // undo with the next commit.
    const absl::Time now = clock_.Now();
    for (const std::string& id : decision->case_ids) {
      Record* r = FindRecord(id);
      r->c.set_redeemed(false);
      Transition(*r, now, "redemption-undone", ServerPrincipal(),
                 absl::StrCat("the store could not record the redemption by request ",
                              request.request_id(), ": ", committed.message()));
    }
    journal_buffer_.KeepUnsynced(journal_buffer_.TakeAll());
    return committed;
  }

  const Matrix& matrix = *decision->matrix;
  absl::InlinedVector<int, 8> lanes;  // fired lanes, in the order they first fired
  for (const engine::FiredTrigger& f : decision->fired) {
    const int lane = matrix.triggers()[f.trigger].lane;
    if (std::find(lanes.begin(), lanes.end(), lane) == lanes.end()) lanes.push_back(lane);
  }
  size_t to_open = 0;
  for (int lane : lanes) {
    const Lane& l = matrix.lanes()[lane];
    if (!open_by_key_.contains(OpenKeyOf(l.name, l.scope, request))) ++to_open;
  }
  if (to_open > 0) RETURN_IF_ERROR(CheckRoom(to_open, request.tenant_id()));

  std::vector<Record*> touched;
  std::vector<Record*> opened;
  for (int lane : lanes) {
    Record* record = OpenOrJoin(request, *decision, lane, caller, &opened);
    touched.push_back(record);
    if (lane == decision->lane) decision->case_id = record->c.id();
    decision->case_ids.push_back(record->c.id());
  }
  for (Record* r : opened) {
    for (const Record* t : touched) r->related.push_back(t->seq);
  }
  for (const engine::FiredTrigger& f : decision->fired) {
    const Trigger& trigger = matrix.triggers()[f.trigger];
    const TriggerStats::Key key(trigger.id, request.tenant_id());
    trigger_stats_.Fired(key, matrix.lanes()[trigger.lane].name);
    journal_buffer_.TouchTrigger(key);
  }
  Impose(request, decision);
  if (!redemption_failure.empty()) {
    decision->reason = decision->reason.empty()
                           ? std::move(redemption_failure)
                           : absl::StrCat(redemption_failure, "; ", decision->reason);
  }
  return Commit(decision, sealer);
}

void CaseStore::Impose(const Request& request, Decision* decision) {
  std::optional<ScopesInForce::Match> match = scopes_.Find(request);
  if (!match.has_value() || !engine::MoreRestrictive(match->verdict, decision->verdict)) return;
  if (match->kind == ScopesInForce::kKilled) {
    const v1::KillSwitch& k = kill_switches_.at(match->id);
    decision->verdict = v1::VERDICT_DENY;
    decision->lane = -1;
    decision->imposed.reset();
    decision->sla_deadline = absl::InfinitePast();
    decision->missing_evidence.clear();
    decision->reason = absl::StrCat("stopped by a kill switch on ", KillScopeName(k.scope()), " ",
                                    k.scope() == v1::KILL_SCOPE_TENANT
                                        ? k.tenant_id()
                                        : absl::StrCat(k.value(), " of tenant ", k.tenant_id()),
                                    " (set by ", k.set_by().subject(), " at ",
                                    Rfc3339(FromTimestamp(k.set_at())), ": ", k.reason(), ")");
    return;
  }
  const Record& f = *by_seq_.at(match->id);
  decision->verdict = match->verdict;
  decision->imposed =
      engine::Imposition{f.lane, f.c.current_owner(), FromTimestamp(f.c.sla_deadline())};
  decision->sla_deadline = decision->imposed->sla_deadline;
  decision->missing_evidence = engine::MissingEvidence(*f.lane, request);
  decision->case_id = f.c.id();
  if (std::find(decision->case_ids.begin(), decision->case_ids.end(), f.c.id()) ==
      decision->case_ids.end()) {
    decision->case_ids.push_back(f.c.id());
  }
  switch (match->kind) {
    case ScopesInForce::kDisabled:
      decision->reason =
          absl::StrCat("credential ", request.actor().credential_id(), " is disabled by case ",
                       f.c.id(), " until it is acknowledged");
      break;
    case ScopesInForce::kPaused:
      decision->reason = absl::StrCat("workflow ", request.workflow_id(), " is paused by case ",
                                      f.c.id(), " until it is acknowledged");
      break;
    case ScopesInForce::kSafeMode:
      decision->reason = absl::StrCat("workflow ", request.workflow_id(), " is in safe mode (case ",
                                      f.c.id(), "): only critical actions are evaluated normally");
      break;
    case ScopesInForce::kKilled:  // answered above
      break;
  }
}

bool CaseStore::Redeem(const Request& request, Decision* decision, std::string* why) {
  const std::string& id = request.approval().case_id();
  Record* named = FindRecord(id);
  auto fail = [&](absl::string_view message) {
    *why = absl::StrCat("approval.case_id ", id, " not redeemed: ", message);
    return false;
  };
  if (named == nullptr) return fail("no such case");
  const v1::Case& c = named->c;
  if (c.tenant_id() != request.tenant_id()) return fail("the case belongs to another tenant");
  if (!IsRedeemable(c.verdict())) {
    return fail(absl::StrCat("a ", engine::VerdictName(c.verdict()), " case is never redeemable"));
  }
  if (c.state() != v1::CASE_STATE_APPROVED) {
    return fail(absl::StrCat("the case is ", StateName(c.state()), ", not APPROVED"));
  }
  if (c.redeemed()) return fail("the approval was already redeemed");
  const absl::Time now = clock_.Now();
  if (c.has_approval_expires_at() && now > FromTimestamp(c.approval_expires_at())) {
    return fail(
        absl::StrCat("the approval expired at ", Rfc3339(FromTimestamp(c.approval_expires_at()))));
  }
  if (c.agent_id() != request.agent_id()) {
    return fail(absl::StrCat("the approval is for agent '", c.agent_id(), "', not '",
                             request.agent_id(), "'"));
  }
  if (c.scope_key() != ScopeKeyOf(c.scope(), request)) {
    return fail(absl::StrCat("the approval is for ", engine::ScopeName(c.scope()), " ",
                             c.scope_key(), ", not ", ScopeKeyOf(c.scope(), request)));
  }
  const std::vector<std::string>& fingerprint = named->lane->fingerprint;
  if (named->canonical_action != engine::CanonicalAction(request, fingerprint)) {
    return fail(absl::StrCat("the action differs from the approved one (fingerprint ",
                             engine::ActionFingerprint(request, fingerprint), ", approved ",
                             c.action_fingerprint(), ")"));
  }
  std::vector<Record*> related;
  for (uint64_t seq : named->related) {
    auto it = by_seq_.find(seq);
    if (it == by_seq_.end()) return fail("a case of the approved action was forgotten");
    Record* r = it->second.get();
    if (r->c.state() != v1::CASE_STATE_APPROVED || r->c.redeemed()) {
      return fail(absl::StrCat("case ", r->c.id(), " (lane ", r->c.lane(),
                               ") of the same action is ", StateName(r->c.state()),
                               r->c.redeemed() ? " and redeemed" : ""));
    }
    related.push_back(r);
  }
  const Matrix& matrix = *decision->matrix;
  for (const engine::FiredTrigger& f : decision->fired) {
    const Trigger& trigger = matrix.triggers()[f.trigger];
    const Lane& lane = matrix.lanes()[trigger.lane];
    if (!IsRedeemable(lane.verdict)) {
      return fail(absl::StrCat("trigger ", trigger.id, " fired (lane ", lane.name, ", ",
                               engine::VerdictName(lane.verdict), ")"));
    }
    if (std::none_of(related.begin(), related.end(),
                     [&](const Record* r) { return r->c.lane() == lane.name; })) {
      return fail(absl::StrCat("trigger ", trigger.id, " fired (lane ", lane.name,
                               "), which the approval does not cover"));
    }
  }
  if (scopes_.Find(request).has_value()) return fail("a scope in force covers this action");

  // Redeemed: ALLOW once.
  std::string approver;
  for (const v1::Transition& t : c.history()) {
    if (t.state() == v1::CASE_STATE_APPROVED) approver = t.actor();
  }
  decision->verdict = v1::VERDICT_ALLOW;
  decision->lane = -1;
  decision->sla_deadline = absl::InfinitePast();
  decision->missing_evidence.clear();
  decision->redeemed = true;
  decision->case_id = named->c.id();
  decision->case_ids.clear();
  for (Record* r : related) {
    r->c.set_redeemed(true);
    decision->case_ids.push_back(r->c.id());
    Transition(
        *r, now, "redeemed", ServerPrincipal(),
        absl::StrCat("request ", request.request_id(), " (decision ", decision->id.view(), ")"));
  }
  decision->reason =
      absl::StrCat("approved by ", approver, " in case ", named->c.id(), "; redeemed once");
  return true;
}

CaseStore::Record* CaseStore::OpenOrJoin(const Request& request, const Decision& decision,
                                         int lane_index, absl::string_view caller,
                                         std::vector<Record*>* opened) {
  const Matrix& matrix = *decision.matrix;
  const Lane& lane = matrix.lanes()[lane_index];
  const absl::Time now = decision.decided_at;
  std::string open_key = OpenKeyOf(lane.name, lane.scope, request);

  Record* record = nullptr;
  bool is_new = false;
  std::string routed;  // why a new case went to the backup, if it did
  if (auto it = open_by_key_.find(open_key); it != open_by_key_.end()) {
    record = by_seq_.at(it->second).get();
  } else {
    is_new = true;
    auto owned = std::make_unique<Record>();
    record = owned.get();
    record->seq = next_seq_++;
    record->lane = std::make_shared<const Lane>(lane);
    record->open_key = std::move(open_key);
    record->canonical_action = engine::CanonicalAction(request, lane.fingerprint);
    record->workflow_key = ScopesInForce::WorkflowKey(request.tenant_id(), request.workflow_id());
    record->credential_key =
        ScopesInForce::CredentialKey(request.tenant_id(), request.actor().credential_id());
    v1::Case& c = record->c;
    c.set_id(absl::StrCat("case_", engine::DecisionId::Next(now).view()));
    c.set_lane(lane.name);
    c.set_verdict(lane.verdict);
    c.set_state(v1::CASE_STATE_OPEN);
    c.set_scope(lane.scope);
    c.set_scope_key(ScopeKeyOf(lane.scope, request));
    c.set_tenant_id(request.tenant_id());
    c.set_workflow_id(request.workflow_id());
    c.set_item_id(request.item_id());
    c.set_credential_id(request.actor().credential_id());
    c.set_owner(lane.owner);
    c.set_backup(lane.backup);
    c.set_fallback(lane.fallback);
    // Approval fatigue: past the owner's bound a new case goes to the backup.
    c.set_current_owner(lane.owner);
    if (const size_t held = OwnerOpen(request.tenant_id(), lane.owner);
        lane.max_open_per_owner > 0 && held >= static_cast<size_t>(lane.max_open_per_owner) &&
        !lane.backup.empty()) {
      c.set_current_owner(lane.backup);
      routed = absl::StrCat("; routed to the backup ", lane.backup, ": ", lane.owner, " holds ",
                            held, " open cases (max_open_per_owner ", lane.max_open_per_owner, ")");
    }
    *c.mutable_opened_at() = ToTimestamp(now);
    c.set_action_fingerprint(engine::ActionFingerprint(request, lane.fingerprint));
    c.set_matrix_version(matrix.version());
    c.set_on_timeout(lane.on_timeout);
    c.set_agent_id(request.agent_id());
    c.set_on_behalf_of(request.actor().on_behalf_of());
    c.set_approvals_required(lane.approvals);
    std::string action_json;
    google::protobuf::util::JsonPrintOptions json;
    json.preserve_proto_field_names = true;
    if (google::protobuf::util::MessageToJsonString(request.action(), &action_json, json).ok()) {
      c.mutable_evidence()->set_proposed_action(action_json);
    }
    open_by_key_[record->open_key] = record->seq;
    by_id_[c.id()] = record->seq;
    by_seq_[record->seq] = std::move(owned);
    CountOpen(*record);
    index_.Add(record->seq, v1::CASE_STATE_OPEN, lane.name, request.tenant_id());
    opened->push_back(record);
    Arm(*record, now);
    if (lane.verdict == v1::VERDICT_SAFE_MODE) SetInForce(*record, ScopesInForce::kSafeMode, true);
  }

  // Append this decision: who asked, fired triggers of the lane, the request, the evidence.
  v1::Case& c = record->c;
  if (!caller.empty() && static_cast<size_t>(c.requested_by_size()) < kMaxRequesters &&
      std::find(c.requested_by().begin(), c.requested_by().end(), caller) ==
          c.requested_by().end()) {
    c.add_requested_by(std::string(caller));
  }
  for (const engine::FiredTrigger& fired : decision.fired) {
    const Trigger& trigger = matrix.triggers()[fired.trigger];
    if (trigger.lane != lane_index) continue;
    if (static_cast<size_t>(c.fired_size()) < options_.max_fired_per_case) {
      engine::EncodeFiredTrigger(matrix, fired, c.add_fired());
    }
    if (record->triggers.insert(trigger.id).second) {
      const TriggerStats::Key key(trigger.id, c.tenant_id());
      trigger_stats_.Opened(key, lane.name);
      journal_buffer_.TouchTrigger(key);
      c.mutable_evidence()->add_rules(absl::StrCat(trigger.id, ": ", trigger.condition->source()));
    }
  }
  c.add_request_ids(request.request_id());
  if (static_cast<size_t>(c.request_ids_size()) > options_.max_request_ids_per_case) {
    c.mutable_request_ids()->erase(c.mutable_request_ids()->begin());
  }
  v1::EvidencePacket& packet = *c.mutable_evidence();
  KeepEvidence(request, &packet);
  c.clear_missing_evidence();
  for (int i : engine::MissingEvidence(lane, request)) c.add_missing_evidence(lane.evidence[i]);
  auto* history = packet.mutable_recent_history();
  history->Add(absl::StrCat(Rfc3339(now), " ", engine::VerdictName(decision.verdict), " decision ",
                            decision.id.view(), " request ", request.request_id()));
  std::rotate(history->begin(), history->end() - 1, history->end());  // newest first
  while (static_cast<size_t>(history->size()) > options_.max_history_lines) history->RemoveLast();

  const std::string comment =
      absl::StrCat("request ", request.request_id(), " (decision ", decision.id.view(), ")");
  if (is_new) {
    Transition(*record, now, "opened", ServerPrincipal(), absl::StrCat(comment, routed));
  } else {
    int joins = 0;
    for (const v1::Transition& t : c.history()) joins += t.event() == "joined";
    // Past the cap the history stops growing; the journal and watchers still get every join.
    Transition(*record, now, "joined", ServerPrincipal(), comment,
               /*in_history=*/static_cast<size_t>(joins) < kMaxJoinsInHistory);
  }
  return record;
}

void CaseStore::CountOpen(Record& record) {
  open_count_.fetch_add(1);
  ++open_per_tenant_[record.c.tenant_id()];
  Load(record);
}

void CaseStore::UncountOpen(Record& record) {
  if (auto it = open_by_key_.find(record.open_key);
      it != open_by_key_.end() && it->second == record.seq) {
    open_by_key_.erase(it);
  }
  open_bytes_ -= record.open_bytes;
  record.open_bytes = 0;
  if (auto t = open_per_tenant_.find(record.c.tenant_id());
      t != open_per_tenant_.end() && --t->second == 0) {
    open_per_tenant_.erase(t);
  }
  Unload(record);
  for (int kind = 0; kind < ScopesInForce::kCaseKinds; ++kind) {
    SetInForce(record, static_cast<ScopesInForce::Kind>(kind), false);
  }
  open_count_.fetch_sub(1);
}

void CaseStore::Load(const Record& record) {
  owner_load_[{record.c.tenant_id(), record.c.current_owner()}].insert(
      FromTimestamp(record.c.opened_at()));
}

void CaseStore::Unload(const Record& record) {
  auto it = owner_load_.find({record.c.tenant_id(), record.c.current_owner()});
  if (it == owner_load_.end()) return;
  if (auto at = it->second.find(FromTimestamp(record.c.opened_at())); at != it->second.end()) {
    it->second.erase(at);
  }
  if (it->second.empty()) owner_load_.erase(it);
}

size_t CaseStore::OwnerOpen(absl::string_view tenant, absl::string_view owner) const {
  auto it = owner_load_.find({std::string(tenant), std::string(owner)});
  return it == owner_load_.end() ? 0 : it->second.size();
}

void CaseStore::MeasureOpen(Record& record) {
  const size_t bytes = record.c.SpaceUsedLong();
  open_bytes_ = open_bytes_ - record.open_bytes + bytes;
  record.open_bytes = bytes;
}

absl::Status CaseStore::CheckRoom(size_t to_open, absl::string_view tenant) const {
  if (open_count_.load() + to_open > options_.max_open_cases) {
    return absl::ResourceExhaustedError(
        absl::StrCat("case store full: ", open_count_.load(), " cases are open (the limit is ",
                     options_.max_open_cases, "); acknowledge cases or raise the limit"));
  }
  if (options_.max_open_cases_per_tenant > 0) {
    auto it = open_per_tenant_.find(tenant);
    const size_t open = it == open_per_tenant_.end() ? 0 : it->second;
    if (open + to_open > options_.max_open_cases_per_tenant) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "tenant ", tenant, " has ", open, " open cases, its quota is ",
          options_.max_open_cases_per_tenant, ": acknowledge its cases or raise the quota"));
    }
  }
  if (open_bytes_ >= options_.max_open_case_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("case store full: the open cases hold ", open_bytes_, " bytes (the budget is ",
                     options_.max_open_case_bytes, "); acknowledge cases or raise the budget"));
  }
  return absl::OkStatus();
}

void CaseStore::KeepEvidence(const Request& request, v1::EvidencePacket* packet) const {
  size_t kept_total = 0;  // what the case keeps of its entries, counted once per name
  for (const auto& [name, value] : packet->attached()) kept_total += value.size();
  for (const auto& [name, value] : request.evidence()) {
    if (value.empty()) continue;
    const bool attach = packet->attached().contains(name) ||
                        static_cast<size_t>(packet->attached_size()) < kMaxAttached;
    if (!attach && name != "original_input" && name != "retrieved_context" && !IsLink(value)) {
      continue;
    }
    size_t replaced = 0;
    if (auto old = packet->attached().find(name); old != packet->attached().end()) {
      replaced = old->second.size();
    }
    const size_t others = kept_total - replaced;
    const size_t room =
        options_.max_evidence_case_bytes > others ? options_.max_evidence_case_bytes - others : 0;
    const absl::string_view kept =
        Utf8Prefix(value, std::min(options_.max_evidence_entry_bytes, room));
    if (kept.size() < value.size()) {
      v1::TruncatedEvidence& cut = (*packet->mutable_truncated())[name];
      cut.set_size(value.size());
      cut.set_sha256(std::string());
      ThreadSha256().HexAppend(value, cut.mutable_sha256());
      cut.set_kept_bytes(kept.size());
    } else {
      packet->mutable_truncated()->erase(name);
    }
    if (name == "original_input") packet->set_original_input(std::string(kept));
    if (name == "retrieved_context") packet->set_retrieved_context(std::string(kept));
    if (IsLink(value) && static_cast<size_t>(packet->links_size()) < kMaxLinks &&
        std::find(packet->links().begin(), packet->links().end(), value) == packet->links().end()) {
      packet->add_links(value);
    }
    if (attach) {
      (*packet->mutable_attached())[name] = std::string(kept);
      kept_total = others + kept.size();
    }
  }
}

void CaseStore::Arm(Record& record, absl::Time now) {
  const absl::Time deadline = now + record.lane->sla;
  *record.c.mutable_sla_deadline() = ToTimestamp(deadline);
  record.generation = ++generations_;
  record.timer_armed = true;
  timers_.push(Timer{deadline, record.seq, record.generation});
}

void CaseStore::Transition(Record& record, absl::Time now, absl::string_view event,
                           const v1::Principal& by, absl::string_view comment, bool in_history) {
  v1::Transition t;
  *t.mutable_time() = ToTimestamp(now);
  t.set_state(record.c.state());
  t.set_event(std::string(event));
  t.set_actor(by.subject());
  t.set_comment(std::string(comment));
  *t.mutable_principal() = by;
  if (in_history) *record.c.add_history() = t;
  if (record.c.state() == v1::CASE_STATE_OPEN) MeasureOpen(record);
  if (journal_ != nullptr) {
    journal_buffer_.AddTransition(record.seq, t);
  } else {
    journal_buffer_.TouchCase(record.seq);
  }
  if (defer_events_) {
    deferred_.emplace_back(record.c, std::move(t));
  } else {
    Announce(record.c, t);
  }
}

void CaseStore::Announce(const v1::Case& c, const v1::Transition& t) {
  watchers_.Publish(c, t);
  if (options_.audit != nullptr && t.event() != "joined") options_.audit->Transition(c, t);
}

void CaseStore::Close(Record& record, v1::CaseState state, absl::Time now, absl::string_view event,
                      const v1::Principal& by, absl::string_view comment) {
  index_.Remove(record.seq, record.c.state(), record.c.lane(), record.c.tenant_id());
  index_.Add(record.seq, state, record.c.lane(), record.c.tenant_id());
  record.c.set_state(state);
  record.generation = ++generations_;  // disarms the timer
  record.timer_armed = false;
  UncountOpen(record);
  const absl::Duration time_to_decision = now - FromTimestamp(record.c.opened_at());
  for (const std::string& trigger : record.triggers) {
    const TriggerStats::Key key(trigger, record.c.tenant_id());
    trigger_stats_.Closed(key, state, time_to_decision);
    journal_buffer_.TouchTrigger(key);
  }
  if (state == v1::CASE_STATE_APPROVED) {
    const absl::Duration ttl = record.lane->approval_ttl > absl::ZeroDuration()
                                   ? record.lane->approval_ttl
                                   : record.lane->sla;
    *record.c.mutable_approval_expires_at() = ToTimestamp(now + ttl);
  }
  Transition(record, now, event, by, comment);
  KeepClosed(record);
}

void CaseStore::KeepClosed(Record& record) {
  record.closed_bytes = record.c.SpaceUsedLong();
  closed_bytes_ += record.closed_bytes;
  closed_order_.push_back(record.seq);
  while (closed_order_.size() > options_.max_closed_cases ||
         (closed_order_.size() > 1 && closed_bytes_ > options_.max_closed_case_bytes)) {
    Forget(closed_order_.front());
    closed_order_.pop_front();
  }
}

void CaseStore::Forget(uint64_t seq) {
  auto it = by_seq_.find(seq);
  if (it == by_seq_.end()) return;
  closed_bytes_ -= it->second->closed_bytes;
  const v1::Case& c = it->second->c;
  index_.Remove(seq, c.state(), c.lane(), c.tenant_id());
  by_id_.erase(c.id());
  by_seq_.erase(it);
  journal_buffer_.Forget(seq);
}

void CaseStore::RunTimeout(Record& record, absl::Time now) {
  v1::Case& c = record.c;
  ++timeouts_[{c.lane(), c.on_timeout()}];
  const std::string overdue = absl::StrCat(c.current_owner(), " did not answer within ",
                                           absl::FormatDuration(record.lane->sla));
  auto reassign = [&](const std::string& to, absl::string_view event) {
    if (to.empty() || to == c.current_owner()) {
      Transition(record, now, "timeout:overdue", ServerPrincipal(),
                 absl::StrCat(overdue, "; nobody else to route to"));
      return;
    }
    Unload(record);
    c.set_current_owner(to);
    Load(record);
    Arm(record, now);
    Transition(record, now, event, ServerPrincipal(),
               absl::StrCat(overdue, "; ", to, " owns it now"));
  };
  switch (c.on_timeout()) {
    case v1::TIMEOUT_BEHAVIOR_NOTIFY_BACKUP:
      reassign(c.backup(), "timeout:notify_backup");
      break;
    case v1::TIMEOUT_BEHAVIOR_ROUTE_TO_FALLBACK:
      reassign(c.fallback(), "timeout:route_to_fallback");
      break;
    case v1::TIMEOUT_BEHAVIOR_PAUSE_WORKFLOW:
      SetInForce(record, ScopesInForce::kPaused, true);
      Transition(record, now, "timeout:pause_workflow", ServerPrincipal(),
                 absl::StrCat(overdue, "; every action of workflow ", c.workflow_id(),
                              " is held until the case is acknowledged"));
      break;
    case v1::TIMEOUT_BEHAVIOR_DISABLE_CREDENTIAL:
      if (c.credential_id().empty()) {
        Transition(record, now, "timeout:overdue", ServerPrincipal(),
                   absl::StrCat(overdue, "; the requests named no credential to disable"));
      } else {
        SetInForce(record, ScopesInForce::kDisabled, true);
        Transition(record, now, "timeout:disable_credential", ServerPrincipal(),
                   absl::StrCat(overdue, "; every action with credential ", c.credential_id(),
                                " is denied until the case is acknowledged"));
      }
      break;
    case v1::TIMEOUT_BEHAVIOR_EXPIRE:
      Close(record, v1::CASE_STATE_EXPIRED, now, "timeout:expire", ServerPrincipal(),
            absl::StrCat(overdue, "; the request is void and must be resubmitted"));
      break;
    default:
      Transition(record, now, "timeout:overdue", ServerPrincipal(), overdue);
      break;
  }
}

int CaseStore::RunDueTimers() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  if (timers_.empty() || timers_.top().deadline > now) return 0;
  // Shared: absorbing first re-arms (new generation) every case another server changed, so a
  // timeout another server ran is skipped here. A turn that cannot begin leaves the timers armed.
  Turn turn(*this);
  if (!turn.status().ok()) return 0;
  int ran = 0;
  while (!timers_.empty() && timers_.top().deadline <= now) {
    const Timer timer = timers_.top();
    timers_.pop();
    auto it = by_seq_.find(timer.seq);
    if (it == by_seq_.end()) continue;
    Record& record = *it->second;
    if (record.c.state() != v1::CASE_STATE_OPEN || record.generation != timer.generation) {
      continue;
    }
    record.timer_armed = false;
    RunTimeout(record, now);
    ++ran;
  }
  // A failed commit leaves the timeouts unsynced: Sync retries them.
  Commit(nullptr, nullptr).IgnoreError();
  return ran;
}

std::optional<absl::Time> CaseStore::NextDeadline() const {
  absl::MutexLock lock(&mu_);
  if (timers_.empty()) return std::nullopt;
  return timers_.top().deadline;
}

absl::Status CaseStore::Authorize(const Record& record, const Acknowledgement& ack) const {
  const v1::Case& c = record.c;
  const std::string& who = ack.actor.principal.subject();
  if (ack.actor.principal.kind() == v1::PRINCIPAL_KIND_AGENT) {
    return absl::PermissionDeniedError(
        absl::StrCat(who, " is an agent: agents never acknowledge cases (case ", c.id(), ")"));
  }
  if (std::find(c.requested_by().begin(), c.requested_by().end(), who) != c.requested_by().end()) {
    return absl::PermissionDeniedError(absl::StrCat(who, " asked for the action of case ", c.id(),
                                                    ": it may not acknowledge its own case"));
  }
  const bool fallback_may_act =
      c.on_timeout() == v1::TIMEOUT_BEHAVIOR_ROUTE_TO_FALLBACK && !c.fallback().empty();
  std::vector<std::string> may = {c.owner()};
  if (!c.backup().empty()) may.push_back(c.backup());
  if (fallback_may_act) may.push_back(c.fallback());
  if (std::none_of(may.begin(), may.end(), [&](const std::string& group) {
        return ack.actor.ActsFor(group, c.tenant_id());
      })) {
    return absl::PermissionDeniedError(absl::StrCat("approver ", who, " may not act on case ",
                                                    c.id(), " (lane ", c.lane(), "): only ",
                                                    absl::StrJoin(may, ", "), " may"));
  }
  if (ack.decision == v1::DECISION_APPROVE && !record.lane->requester_may_approve &&
      !c.on_behalf_of().empty() && who == c.on_behalf_of()) {
    return absl::PermissionDeniedError(absl::StrCat(who, " asked for the action of case ", c.id(),
                                                    " through the agent; lane ", c.lane(),
                                                    " does not let the requester approve it"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Case> CaseStore::Acknowledge(const Acknowledgement& ack) {
  const std::string& who = ack.actor.principal.subject();
  RETURN_IF_ERROR(CheckId("case_id", ack.case_id, /*required=*/true));
  if (ack.decision != v1::DECISION_APPROVE && ack.decision != v1::DECISION_REJECT &&
      ack.decision != v1::DECISION_RESOLVE) {
    return absl::InvalidArgumentError("decision: required: APPROVE, REJECT or RESOLVE");
  }
  if (who.empty()) {
    return absl::InvalidArgumentError(
        "approver: required (the x-agate-approver call metadata or the approver field)");
  }
  if (who.size() > kMaxApproverBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("approver: longer than ", kMaxApproverBytes, " bytes"));
  }
  if (ack.comment.size() > kMaxCommentBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("comment: longer than ", kMaxCommentBytes, " bytes"));
  }
  absl::MutexLock lock(&mu_);
  Turn turn(*this);
  RETURN_IF_ERROR(turn.status());
  Record* record = FindRecord(ack.case_id);
  if (record == nullptr || !ack.actor.sees.Contains(record->c.tenant_id())) {
    return absl::NotFoundError(absl::StrCat("case ", ack.case_id, " not found"));
  }
  v1::Case& c = record->c;
  if (c.state() != v1::CASE_STATE_OPEN) {
    return absl::FailedPreconditionError(absl::StrCat("case ", c.id(), " is ", StateName(c.state()),
                                                      ", not OPEN: it cannot be acknowledged"));
  }
  RETURN_IF_ERROR(Authorize(*record, ack));
  if (ack.decision == v1::DECISION_APPROVE && c.verdict() == v1::VERDICT_DENY) {
    return absl::FailedPreconditionError(
        absl::StrCat("case ", c.id(),
                     " is a DENY case: no approval turns DENY into ALLOW; REJECT or RESOLVE it"));
  }
  const absl::Time now = clock_.Now();
  const int required = std::max(1, c.approvals_required());
  if (ack.decision == v1::DECISION_APPROVE && required > 1) {
    // A quorum: each distinct person counts once; the case is APPROVED at the Nth.
    for (const v1::Vote& v : c.votes()) {
      if (v.principal().subject() == who && v.decision() == v1::DECISION_APPROVE) {
        return absl::FailedPreconditionError(
            absl::StrCat(who, " already approved case ", c.id(), "; it needs ", required,
                         " distinct approvers (", c.votes_size(), " so far)"));
      }
    }
    v1::Vote& vote = *c.add_votes();
    *vote.mutable_principal() = ack.actor.principal;
    vote.set_decision(v1::DECISION_APPROVE);
    *vote.mutable_time() = ToTimestamp(now);
    vote.set_comment(ack.comment);
    const int approvals = c.votes_size();
    if (approvals < required) {
      Transition(*record, now, "vote:approve", ack.actor.principal,
                 absl::StrCat(approvals, " of ", required, " approvals",
                              ack.comment.empty() ? "" : absl::StrCat(": ", ack.comment)));
      RETURN_IF_ERROR(Commit(nullptr, nullptr));
      return c;
    }
  } else if (required > 1) {
    v1::Vote& vote = *c.add_votes();
    *vote.mutable_principal() = ack.actor.principal;
    vote.set_decision(ack.decision);
    *vote.mutable_time() = ToTimestamp(now);
    vote.set_comment(ack.comment);
  }
  static constexpr struct {
    v1::CaseState state;
    absl::string_view event;
  } kOutcomes[] = {{v1::CASE_STATE_UNSPECIFIED, ""},
                   {v1::CASE_STATE_APPROVED, "approved"},
                   {v1::CASE_STATE_REJECTED, "rejected"},
                   {v1::CASE_STATE_RESOLVED, "resolved"}};
  const auto& outcome = kOutcomes[ack.decision];
  Close(*record, outcome.state, now, outcome.event, ack.actor.principal, ack.comment);
  RETURN_IF_ERROR(Commit(nullptr, nullptr));
  return c;
}

absl::StatusOr<v1::KillSwitch> CaseStore::SetKillSwitch(const v1::SetKillSwitchRequest& request,
                                                        const v1::Principal& by) {
  if (request.scope() == v1::KILL_SCOPE_UNSPECIFIED || !v1::KillScope_IsValid(request.scope())) {
    return absl::InvalidArgumentError("scope: required: TENANT, AGENT, WORKFLOW or CREDENTIAL");
  }
  if (request.tenant_id().empty()) return absl::InvalidArgumentError("tenant_id: required");
  if (request.tenant_id().size() > 256 || request.value().size() > 256) {
    return absl::InvalidArgumentError("tenant_id, value: at most 256 bytes");
  }
  const bool tenant_wide = request.scope() == v1::KILL_SCOPE_TENANT;
  if (tenant_wide != request.value().empty()) {
    return absl::InvalidArgumentError(
        tenant_wide
            ? "value: must be empty for a tenant kill switch"
            : absl::StrCat("value: required: the ", KillScopeName(request.scope()), " id to stop"));
  }
  if (request.engaged() && request.reason().empty()) {
    return absl::InvalidArgumentError("reason: required to engage a kill switch");
  }
  if (request.reason().size() > kMaxCommentBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("reason: longer than ", kMaxCommentBytes, " bytes"));
  }
  const std::string key =
      ScopesInForce::KillKey(request.scope(), request.tenant_id(), request.value());
  absl::MutexLock lock(&mu_);
  Turn turn(*this);
  RETURN_IF_ERROR(turn.status());
  auto existing = FindKillSwitch(key);
  const std::string what =
      absl::StrCat(KillScopeName(request.scope()), " ",
                   tenant_wide ? request.tenant_id()
                               : absl::StrCat(request.value(), " of tenant ", request.tenant_id()));
  if (request.engaged() && existing != kill_switches_.end()) {
    return absl::AlreadyExistsError(absl::StrCat("a kill switch on ", what, " is already engaged"));
  }
  if (!request.engaged() && existing == kill_switches_.end()) {
    return absl::NotFoundError(absl::StrCat("no kill switch on ", what, " is engaged"));
  }
  v1::KillSwitch change;
  change.set_scope(request.scope());
  change.set_tenant_id(request.tenant_id());
  change.set_value(request.value());
  change.set_reason(request.reason());
  *change.mutable_set_by() = by;
  *change.mutable_set_at() = ToTimestamp(clock_.Now());
  change.set_engaged(request.engaged());
  store::v1::StoredKillSwitch stored;
  *stored.mutable_switch_() = change;
  stored.set_key(key);
  if (journal_ != nullptr) {
    JournalBatch batch;
    batch.kill_switches.push_back(stored);
    if (absl::Status committed = journal_->Commit(batch); !committed.ok()) {
      // Shared: it may have committed all the same; the journal says (a reload at the next turn).
      if (journal_->shared()) resync_ = true;
      return committed;
    }
  }
  EngageKillSwitch(stored);
  if (options_.audit != nullptr) options_.audit->KillSwitch(change);
  return change;
}

std::map<uint64_t, v1::KillSwitch>::iterator CaseStore::FindKillSwitch(const std::string& key) {
  return std::find_if(kill_switches_.begin(), kill_switches_.end(), [&](const auto& kv) {
    return ScopesInForce::KillKey(kv.second.scope(), kv.second.tenant_id(), kv.second.value()) ==
           key;
  });
}

void CaseStore::EngageKillSwitch(const store::v1::StoredKillSwitch& stored) {
  const v1::KillSwitch& k = stored.switch_();
  const std::string key = ScopesInForce::KillKey(k.scope(), k.tenant_id(), k.value());
  auto existing = FindKillSwitch(key);
  if (k.engaged() && existing == kill_switches_.end()) {
    const uint64_t id = next_kill_id_++;
    kill_switches_[id] = k;
    scopes_.Set(ScopesInForce::kKilled, key, id, true);
  } else if (!k.engaged() && existing != kill_switches_.end()) {
    scopes_.Set(ScopesInForce::kKilled, key, existing->first, false);
    kill_switches_.erase(existing);
  }
}

std::vector<v1::KillSwitch> CaseStore::KillSwitches(const TenantScope& scope) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::KillSwitch> out;
  for (const auto& [id, k] : kill_switches_) {
    if (scope.Contains(k.tenant_id())) out.push_back(k);
  }
  return out;
}

store::v1::StoredCase CaseStore::ToStored(const Record& record) const {
  store::v1::StoredCase out;
  *out.mutable_case_() = record.c;
  out.set_seq(record.seq);
  out.set_canonical_action(record.canonical_action);
  out.set_agent_action(record.lane->agent_action);
  out.set_operator_action(record.lane->operator_action);
  for (const std::string& name : record.lane->evidence) out.add_required_evidence(name);
  out.set_sla_nanos(absl::ToInt64Nanoseconds(record.lane->sla));
  out.set_requester_may_not_approve(!record.lane->requester_may_approve);
  out.set_approval_ttl_nanos(absl::ToInt64Nanoseconds(record.lane->approval_ttl));
  for (const std::string& field : record.lane->fingerprint) out.add_fingerprint(field);
  for (uint64_t seq : record.related) out.add_related(seq);
  std::vector<std::string> triggers(record.triggers.begin(), record.triggers.end());
  std::sort(triggers.begin(), triggers.end());
  for (std::string& t : triggers) out.add_triggers(std::move(t));
  out.set_safe_mode_in_force(record.in_force[ScopesInForce::kSafeMode]);
  out.set_paused_in_force(record.in_force[ScopesInForce::kPaused]);
  out.set_disabled_in_force(record.in_force[ScopesInForce::kDisabled]);
  out.set_timer_armed(record.timer_armed);
  return out;
}

absl::Status CaseStore::Commit(const Decision* decision, DecisionSealer* sealer) {
  if (journal_ == nullptr) {
    journal_buffer_.Discard();
    return absl::OkStatus();
  }
  // Whatever a failed commit left behind goes first.
  JournalBuffer::Changes ch = journal_buffer_.TakeAll();
  if (ch.empty()) return absl::OkStatus();

  JournalBatch batch;
  for (uint64_t seq : ch.cases) {
    if (auto it = by_seq_.find(seq); it != by_seq_.end()) {
      batch.cases.push_back(ToStored(*it->second));
    }
  }
  batch.transitions = ch.transitions;
  batch.forgotten = ch.forgotten;
  batch.trigger_stats = trigger_stats_.Stored(ch.triggers);
  if (decision != nullptr && sealer != nullptr) batch.decisions.push_back(sealer->Seal(*decision));
  absl::Status status = journal_->Commit(batch);
  if (status.ok()) {
    for (const auto& [c, t] : deferred_) Announce(c, t);
    deferred_.clear();
  } else {
    deferred_.clear();
    if (journal_->shared()) {
      resync_ = true;  // the journal is the truth: the next turn reloads from it
    } else {
      journal_buffer_.KeepUnsynced(std::move(ch));
    }
  }
  return status;
}

absl::Status CaseStore::Sync() {
  absl::MutexLock lock(&mu_);
  return Commit(nullptr, nullptr);
}

size_t CaseStore::unsynced() const {
  absl::MutexLock lock(&mu_);
  return journal_buffer_.unsynced_cases();
}

absl::Status CaseStore::Restore(const JournalContents& contents) {
  absl::MutexLock lock(&mu_);
  return RestoreLocked(contents);
}

CaseStore::Record& CaseStore::File(const store::v1::StoredCase& stored) {
  const v1::Case& c = stored.case_();
  auto owned = std::make_unique<Record>();
  Record& r = *owned;
  r.seq = stored.seq();
  r.c = c;
  r.lane = RestoredLane(stored);
  r.open_key = OpenKeyOf(c);
  r.canonical_action = stored.canonical_action();
  r.workflow_key = ScopesInForce::WorkflowKey(c.tenant_id(), c.workflow_id());
  r.credential_key = ScopesInForce::CredentialKey(c.tenant_id(), c.credential_id());
  r.related.assign(stored.related().begin(), stored.related().end());
  r.triggers.insert(stored.triggers().begin(), stored.triggers().end());
  by_id_[c.id()] = r.seq;
  index_.Add(r.seq, c.state(), c.lane(), c.tenant_id());
  next_seq_ = std::max(next_seq_, r.seq + 1);
  if (c.state() == v1::CASE_STATE_OPEN) {
    open_by_key_[r.open_key] = r.seq;
    CountOpen(r);
    MeasureOpen(r);
    if (stored.timer_armed()) {
      r.generation = ++generations_;
      r.timer_armed = true;
      timers_.push(Timer{FromTimestamp(c.sla_deadline()), r.seq, r.generation});
    }
    if (stored.safe_mode_in_force()) SetInForce(r, ScopesInForce::kSafeMode, true);
    if (stored.paused_in_force()) SetInForce(r, ScopesInForce::kPaused, true);
    if (stored.disabled_in_force()) SetInForce(r, ScopesInForce::kDisabled, true);
  }
  by_seq_[r.seq] = std::move(owned);
  return r;
}

void CaseStore::Unfile(Record& record) {
  const v1::Case& c = record.c;
  if (c.state() == v1::CASE_STATE_OPEN) {
    UncountOpen(record);
  } else {
    closed_bytes_ -= record.closed_bytes;  // its closed_order_ entry is skipped when reached
  }
  index_.Remove(record.seq, c.state(), c.lane(), c.tenant_id());
  by_id_.erase(c.id());
  by_seq_.erase(record.seq);  // destroys record
}

absl::Status CaseStore::RestoreLocked(const JournalContents& contents) {
  std::vector<std::pair<absl::Time, uint64_t>> closed;  // (closing time, seq)
  for (const store::v1::StoredCase& stored : contents.cases) {
    const v1::Case& c = stored.case_();
    if (stored.seq() == 0 || by_seq_.contains(stored.seq()) || by_id_.contains(c.id())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "restore: case ", c.id(), " (seq ", stored.seq(), ") is a duplicate or has no seq"));
    }
    const Record& r = File(stored);
    if (c.state() != v1::CASE_STATE_OPEN) {
      const absl::Time at = c.history().empty() ? FromTimestamp(c.opened_at())
                                                : FromTimestamp(c.history().rbegin()->time());
      closed.emplace_back(at, r.seq);
    }
  }
  std::sort(closed.begin(), closed.end());
  for (const auto& [at, seq] : closed) KeepClosed(*by_seq_[seq]);
  trigger_stats_.Restore(contents.trigger_stats);
  for (const store::v1::StoredKillSwitch& stored : contents.kill_switches) {
    EngageKillSwitch(stored);
  }
  // What restoring itself changed (cases forgotten past the limits) is not a new change.
  journal_buffer_.Discard();
  return absl::OkStatus();
}

void CaseStore::AbsorbCase(const store::v1::StoredCase& stored) {
  const v1::Case& c = stored.case_();
  const bool open = c.state() == v1::CASE_STATE_OPEN;
  if (auto it = by_seq_.find(stored.seq()); it != by_seq_.end()) {
    Record& old = *it->second;
    const bool was_open = old.c.state() == v1::CASE_STATE_OPEN;
    if (old.c.id() == c.id() && was_open && open) {
      // Still OPEN (a join, a vote, a rerouting timeout): updated in place. Its scopes in force
      // change only where they differ (never lifted in between: the lock-free ALLOW path reads
      // them), its timer only when its deadline did.
      Unload(old);
      const bool rearm = stored.timer_armed() != old.timer_armed ||
                         FromTimestamp(c.sla_deadline()) != FromTimestamp(old.c.sla_deadline());
      old.c = c;
      old.lane = RestoredLane(stored);
      old.related.assign(stored.related().begin(), stored.related().end());
      old.triggers.clear();
      old.triggers.insert(stored.triggers().begin(), stored.triggers().end());
      Load(old);
      MeasureOpen(old);
      SetInForce(old, ScopesInForce::kSafeMode, stored.safe_mode_in_force());
      SetInForce(old, ScopesInForce::kPaused, stored.paused_in_force());
      SetInForce(old, ScopesInForce::kDisabled, stored.disabled_in_force());
      if (rearm) {
        old.generation = ++generations_;
        old.timer_armed = stored.timer_armed();
        if (old.timer_armed) {
          timers_.push(Timer{FromTimestamp(c.sla_deadline()), old.seq, old.generation});
        }
      }
      return;
    }
    if (old.c.id() == c.id() && !was_open && !open) {
      // Closed and still closed (a redemption): updated in place, keeping its retention order.
      index_.Remove(old.seq, old.c.state(), old.c.lane(), old.c.tenant_id());
      index_.Add(old.seq, c.state(), old.c.lane(), old.c.tenant_id());
      old.c = c;
      closed_bytes_ -= old.closed_bytes;
      old.closed_bytes = old.c.SpaceUsedLong();
      closed_bytes_ += old.closed_bytes;
      return;
    }
    Unfile(old);
  }
  // Another server's OPEN case for the same key replaces a stale local one (the journal's unique
  // index makes that the only OPEN one).
  if (open) {
    if (auto it = open_by_key_.find(OpenKeyOf(c)); it != open_by_key_.end()) {
      Unfile(*by_seq_.at(it->second));
    }
  }
  Record& r = File(stored);
  if (!open) KeepClosed(r);
}

void CaseStore::Absorb(const RemoteChanges& remote) {
  if (remote.reload) {
    // The journal's contents replace the store's, case by case: a case that stays OPEN keeps its
    // scopes in force throughout (the ALLOW path never sees them lifted), a case the journal does
    // not have goes.
    absl::flat_hash_set<uint64_t> kept;
    for (const store::v1::StoredCase& stored : remote.contents.cases) {
      AbsorbCase(stored);
      kept.insert(stored.seq());
    }
    std::vector<uint64_t> gone;
    for (const auto& [seq, record] : by_seq_) {
      if (!kept.contains(seq)) gone.push_back(seq);
    }
    for (uint64_t seq : gone) Unfile(*by_seq_.at(seq));
    absl::flat_hash_set<std::string> engaged;
    for (const store::v1::StoredKillSwitch& k : remote.contents.kill_switches) {
      EngageKillSwitch(k);
      engaged.insert(ScopesInForce::KillKey(k.switch_().scope(), k.switch_().tenant_id(),
                                            k.switch_().value()));
    }
    std::vector<store::v1::StoredKillSwitch> lift;
    for (const auto& [id, k] : kill_switches_) {
      if (engaged.contains(ScopesInForce::KillKey(k.scope(), k.tenant_id(), k.value()))) continue;
      store::v1::StoredKillSwitch& off = lift.emplace_back();
      *off.mutable_switch_() = k;
      off.mutable_switch_()->set_engaged(false);
    }
    for (const store::v1::StoredKillSwitch& k : lift) EngageKillSwitch(k);
    trigger_stats_.Restore(remote.contents.trigger_stats);
    journal_buffer_.Discard();
    return;
  }
  for (const store::v1::StoredChange& change : remote.changes) {
    for (const store::v1::StoredCase& stored : change.cases()) AbsorbCase(stored);
    for (const store::v1::StoredTriggerStats& stats : change.trigger_stats()) {
      trigger_stats_.Put(stats);
    }
    for (const store::v1::StoredKillSwitch& k : change.kill_switches()) EngageKillSwitch(k);
    for (const store::v1::StoredTransition& t : change.transitions()) {
      if (auto it = by_seq_.find(t.case_seq()); it != by_seq_.end()) {
        watchers_.Publish(it->second->c, t.transition(), /*remote=*/true);
      }
    }
    // Last: a case closed and forgotten in one change (its final state is not in change.cases)
    // is unfiled from every index, OPEN as this store knew it or not.
    for (uint64_t seq : change.forgotten()) {
      if (auto it = by_seq_.find(seq); it != by_seq_.end()) Unfile(*it->second);
    }
  }
  journal_buffer_.Discard();  // the other servers' changes are committed already
}

absl::Status CaseStore::Refresh() {
  absl::MutexLock lock(&mu_);
  if (journal_ == nullptr || !journal_->shared()) return absl::OkStatus();
  if (resync_) return Turn(*this).status();
  RemoteChanges remote;
  RETURN_IF_ERROR(journal_->Poll(&remote));
  Absorb(remote);
  return absl::OkStatus();
}

absl::StatusOr<v1::Case> CaseStore::Get(absl::string_view case_id, const TenantScope& scope) const {
  RETURN_IF_ERROR(CheckId("case_id", case_id, /*required=*/true));
  absl::MutexLock lock(&mu_);
  const Record* record = FindRecord(case_id);
  if (record == nullptr || !scope.Contains(record->c.tenant_id())) {
    return absl::NotFoundError(absl::StrCat("case ", case_id, " not found"));
  }
  return record->c;
}

absl::StatusOr<v1::ListCasesResponse> CaseStore::List(const v1::ListCasesRequest& request,
                                                      const TenantScope& scope) const {
  constexpr int kDefaultPage = 50;
  constexpr int kMaxPage = 1000;
  if (request.page_size() < 0 || request.page_size() > kMaxPage) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be in [0, ", kMaxPage, "], got ", request.page_size()));
  }
  if (!v1::CaseState_IsValid(request.state())) {
    return absl::InvalidArgumentError(
        absl::StrCat("state: unknown case state ", static_cast<int>(request.state())));
  }
  RETURN_IF_ERROR(CheckId("lane", request.lane(), /*required=*/false));
  RETURN_IF_ERROR(CheckId("tenant_id", request.tenant_id(), /*required=*/false));
  RETURN_IF_ERROR(CheckId("owner", request.owner(), /*required=*/false));
  RETURN_IF_ERROR(CheckId("page_token", request.page_token(), /*required=*/false));
  const int page = request.page_size() == 0 ? kDefaultPage : request.page_size();
  uint64_t before = 0;  // 0: from the newest
  if (!request.page_token().empty() &&
      (!absl::StartsWith(request.page_token(), "p") ||
       !absl::SimpleAtoi(absl::string_view(request.page_token()).substr(1), &before) ||
       before == 0)) {
    return absl::InvalidArgumentError("page_token: not a token from a previous ListCases response");
  }
  // The index matched state, lane and tenant_id.
  auto matches = [&](const v1::Case& c) {
    return scope.Contains(c.tenant_id()) &&
           (request.owner().empty() || c.owner() == request.owner() ||
            c.backup() == request.owner() || c.current_owner() == request.owner());
  };
  // The lock is taken for a few cases at a time, so that a listing delays an escalation by a
  // few case copies at most; cases that change between two turns show as they are then (a page is
  // not a snapshot, as pages never are).
  constexpr int kCopiesPerTurn = 4;
  constexpr int kExaminedPerTurn = 256;
  v1::ListCasesResponse response;
  uint64_t cursor = before;  // the last case examined; 0: none yet
  int examined = 0;
  for (bool done = false; !done;) {
    absl::MutexLock lock(&mu_);
    const CaseIndex::Seqs* seqs = index_.Find(request.state(), request.lane(), request.tenant_id());
    if (seqs == nullptr) break;
    auto it = cursor == 0 ? seqs->end() : seqs->lower_bound(cursor);
    for (int copies = 0, here = 0; copies < kCopiesPerTurn && here < kExaminedPerTurn;) {
      if (it == seqs->begin()) {
        done = true;
        break;
      }
      if (response.cases_size() == page || examined == kMaxListExamined) {
        // More may match: the next page starts below the last case examined.
        response.set_next_page_token(absl::StrCat("p", cursor));
        done = true;
        break;
      }
      --it;
      ++examined;
      ++here;
      cursor = *it;
      const v1::Case& c = by_seq_.at(cursor)->c;
      if (matches(c)) {
        *response.add_cases() = c;
        ++copies;
      }
    }
  }
  return response;
}

absl::Status CaseStore::CheckWatchFilter(const v1::WatchCasesRequest& filter) {
  RETURN_IF_ERROR(CheckId("lane", filter.lane(), /*required=*/false));
  RETURN_IF_ERROR(CheckId("tenant_id", filter.tenant_id(), /*required=*/false));
  RETURN_IF_ERROR(CheckBatchWindow(filter));
  return CheckView(filter);
}

std::shared_ptr<CaseWatcher> CaseStore::Watch(const v1::WatchCasesRequest& filter,
                                              TenantScope scope, std::function<void()> notify,
                                              bool local_only) {
  absl::MutexLock lock(&mu_);
  return watchers_.Add(filter, std::move(scope), std::move(notify), local_only);
}

void CaseStore::Unwatch(const std::shared_ptr<CaseWatcher>& watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.Remove(watcher);
}

size_t CaseStore::watchers() const {
  absl::MutexLock lock(&mu_);
  return watchers_.size();
}

size_t CaseStore::open_cases() const { return open_count_.load(); }

size_t CaseStore::open_case_bytes() const {
  absl::MutexLock lock(&mu_);
  return open_bytes_;
}

std::vector<size_t> CaseStore::OpenCasesByLane(const std::vector<std::string>& lanes) const {
  std::vector<size_t> out;
  out.reserve(lanes.size());
  absl::MutexLock lock(&mu_);
  for (const std::string& lane : lanes) {
    const CaseIndex::Seqs* open = index_.Find(v1::CASE_STATE_OPEN, lane, "");
    out.push_back(open == nullptr ? 0 : open->size());
  }
  return out;
}

std::vector<std::tuple<std::string, v1::TimeoutBehavior, uint64_t>> CaseStore::Timeouts() const {
  std::vector<std::tuple<std::string, v1::TimeoutBehavior, uint64_t>> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [key, count] : timeouts_) out.emplace_back(key.first, key.second, count);
  return out;
}

void CaseStore::Stats(const Matrix* matrix, const TenantScope& scope,
                      v1::GetStatsResponse* out) const {
  absl::MutexLock lock(&mu_);
  trigger_stats_.Fill(
      matrix, [&](const std::string& tenant) { return scope.Contains(tenant); }, out);
  if (scope.all()) {
    out->set_open_cases(open_count_.load());
    return;
  }
  uint64_t open = 0;
  for (const auto& [tenant, count] : open_per_tenant_) {
    if (scope.Contains(tenant)) open += count;
  }
  out->set_open_cases(open);
}

void CaseStore::OwnerLoads(const TenantScope& scope, v1::GetStatsResponse* out) const {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  for (const auto& [key, opened] : owner_load_) {
    const auto& [tenant, owner] = key;
    if (!scope.Contains(tenant) || opened.empty()) continue;
    v1::OwnerLoad* load = out->add_owners();
    load->set_owner(owner);
    load->set_tenant_id(tenant);
    load->set_open(opened.size());
    // Opening times, oldest first: the median is the middle one, or the mean of the two middle
    // ones for an even count.
    auto middle = opened.begin();
    std::advance(middle, (opened.size() - 1) / 2);
    absl::Time median = *middle;
    if (opened.size() % 2 == 0) median += (*std::next(middle) - *middle) / 2;
    *load->mutable_median_age() = ToDurationProto(std::max(absl::ZeroDuration(), now - median));
    *load->mutable_oldest_age() =
        ToDurationProto(std::max(absl::ZeroDuration(), now - *opened.begin()));
  }
}

}  // namespace agate::cases
