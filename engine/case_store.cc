#include "engine/case_store.h"

#include <algorithm>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/fingerprint.h"
#include "engine/proto_time.h"
#include "engine/status_macros.h"
#include "google/protobuf/util/json_util.h"

namespace agate::engine {

// One case and what the store needs to run it.
struct CaseStore::Record {
  uint64_t seq = 0;
  v1::Case c;
  std::string open_key;          // lane '\0' scope key: the OPEN-case index
  std::string canonical_action;  // what an approval is bound to
  std::string workflow_key;      // tenant '\0' workflow
  std::string credential_key;    // tenant '\0' credential
  std::string agent_action;
  std::string operator_action;
  std::vector<std::string> required_evidence;
  absl::Duration sla;
  std::vector<uint64_t> related;  // the cases the opening decision touched (itself included)
  absl::flat_hash_set<std::string> triggers;
  std::array<bool, 3> in_force{};
  uint64_t generation = 0;  // of the armed timer
  bool timer_armed = false;
  size_t closed_bytes = 0;  // counted in closed_bytes_ once closed
};

struct CaseStore::TriggerCounts {
  std::string lane;
  uint64_t fired = 0;
  uint64_t open = 0;
  uint64_t approved = 0;
  uint64_t rejected = 0;
  uint64_t resolved = 0;
  uint64_t expired = 0;
  std::deque<int64_t> decision_ms;  // the newest kDecisionSamples times to decision

  // FillInto writes the counts, the lane (if known) and the median time to decision into s.
  void FillInto(v1::TriggerStats* s) const {
    if (!lane.empty()) s->set_lane(lane);
    s->set_fired(fired);
    s->set_open(open);
    s->set_approved(approved);
    s->set_rejected(rejected);
    s->set_resolved(resolved);
    s->set_expired(expired);
    if (!decision_ms.empty()) {
      std::vector<int64_t> ms(decision_ms.begin(), decision_ms.end());
      std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
      *s->mutable_median_time_to_decision() =
          ToDurationProto(absl::Milliseconds(ms[ms.size() / 2]));
    }
  }
};

namespace {

constexpr size_t kDecisionSamples = 1024;
constexpr size_t kMaxApproverBytes = 256;
constexpr size_t kMaxCommentBytes = 4096;
constexpr size_t kMaxAttached = 64;
constexpr size_t kMaxLinks = 20;
constexpr size_t kMaxJoinsInHistory = 50;
constexpr absl::string_view kServerActor = "agate";

constexpr absl::string_view kSep("\0", 1);

std::string Key(absl::string_view a, absl::string_view b) { return absl::StrCat(a, kSep, b); }

// KeyView builds a Key into a per-thread buffer (no allocation once warm): for lookups.
absl::string_view KeyView(absl::string_view a, absl::string_view b) {
  thread_local std::string key;
  key.clear();
  key.append(a.data(), a.size());
  key.push_back('\0');
  key.append(b.data(), b.size());
  return key;
}

bool IsRedeemable(Verdict v) {
  return v == v1::VERDICT_HOLD || v == v1::VERDICT_PARK_ITEM || v == v1::VERDICT_BLOCK;
}

bool IsLink(absl::string_view value) {
  return absl::StartsWith(value, "https://") || absl::StartsWith(value, "http://");
}

std::string ScopeKeyOf(Scope scope, const Request& request) {
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
std::string OpenKeyOf(absl::string_view lane, Scope scope, absl::string_view tenant,
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

std::string OpenKeyOf(absl::string_view lane, Scope scope, const Request& request) {
  return OpenKeyOf(lane, scope, request.tenant_id(), request.workflow_id(), request.item_id(),
                   request.actor().credential_id());
}

// At most this many transitions wait for a journal that keeps failing; past it the oldest are
// dropped from the transitions table (the cases themselves, history included, are always
// committed whole).
constexpr size_t kMaxUnsyncedTransitions = 100'000;

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

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CaseWatcher

CaseWatcher::CaseWatcher(v1::WatchCasesRequest filter, size_t capacity,
                         std::function<void()> notify)
    : filter_(std::move(filter)),
      capacity_(std::max<size_t>(1, capacity)),
      notify_(std::move(notify)) {}

bool CaseWatcher::Matches(const v1::Case& c) const {
  return (filter_.lane().empty() || filter_.lane() == c.lane()) &&
         (filter_.tenant_id().empty() || filter_.tenant_id() == c.tenant_id());
}

void CaseWatcher::Push(const v1::CaseEvent& event) {
  {
    absl::MutexLock lock(&mu_);
    if (queue_.size() >= capacity_) {
      ++pending_dropped_;
      ++dropped_total_;
      return;
    }
    v1::CaseEvent& queued = queue_.emplace_back(event);
    queued.set_dropped(pending_dropped_);
    pending_dropped_ = 0;
  }
  if (notify_) notify_();
}

bool CaseWatcher::Next(v1::CaseEvent* event) {
  absl::MutexLock lock(&mu_);
  if (queue_.empty()) return false;
  *event = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

uint64_t CaseWatcher::dropped_total() const {
  absl::MutexLock lock(&mu_);
  return dropped_total_;
}

// ---------------------------------------------------------------------------------------------
// CaseStore

CaseStore::CaseStore(const Clock& clock, CaseStoreOptions options, CaseJournal* journal)
    : clock_(clock), options_(options), journal_(journal) {}

CaseStore::~CaseStore() = default;

void CaseStore::CountDecision(Verdict verdict) {
  decisions_[static_cast<size_t>(verdict) % decisions_.size()].fetch_add(1,
                                                                         std::memory_order_relaxed);
}

std::optional<CaseStore::Forced> CaseStore::FindInForce(const Request& request) const {
  absl::ReaderMutexLock lock(&in_force_mu_);
  auto first = [&](InForce kind, absl::string_view key) -> std::optional<Forced> {
    auto it = in_force_[kind].find(key);
    if (it == in_force_[kind].end() || it->second.empty()) return std::nullopt;
    static constexpr Verdict kVerdicts[] = {v1::VERDICT_SAFE_MODE, v1::VERDICT_HOLD,
                                            v1::VERDICT_DENY};
    return Forced{it->second.front(), kind, kVerdicts[kind]};
  };
  if (!request.actor().credential_id().empty()) {
    if (auto f = first(kDisabled, KeyView(request.tenant_id(), request.actor().credential_id()))) {
      return f;
    }
  }
  // The most restrictive first: DENY, then SAFE_MODE (non-critical actions), then HOLD.
  const absl::string_view workflow = KeyView(request.tenant_id(), request.workflow_id());
  if (!request.action().critical()) {
    if (auto f = first(kSafeMode, workflow)) return f;
  }
  return first(kPaused, workflow);
}

void CaseStore::SetInForce(Record& record, InForce kind, bool on) {
  if (record.in_force[kind] == on) return;
  record.in_force[kind] = on;
  const std::string& key = kind == kDisabled ? record.credential_key : record.workflow_key;
  absl::MutexLock lock(&in_force_mu_);
  std::vector<uint64_t>& seqs = in_force_[kind][key];
  if (on) {
    seqs.push_back(record.seq);
    in_force_count_.fetch_add(1, std::memory_order_release);
  } else {
    seqs.erase(std::remove(seqs.begin(), seqs.end(), record.seq), seqs.end());
    if (seqs.empty()) in_force_[kind].erase(key);
    in_force_count_.fetch_sub(1, std::memory_order_release);
  }
}

CaseStore::Record* CaseStore::FindRecord(absl::string_view case_id) const {
  auto id = by_id_.find(case_id);
  if (id == by_id_.end()) return nullptr;
  auto it = by_seq_.find(id->second);
  return it == by_seq_.end() ? nullptr : it->second.get();
}

absl::Status CaseStore::Apply(const Request& request, const Decision& decision,
                              v1::EvaluateResponse* response, DecisionRow* row) {
  const bool wants_redemption = !request.approval().case_id().empty();
  if (decision.verdict == v1::VERDICT_ALLOW && !wants_redemption &&
      (in_force_count_.load(std::memory_order_acquire) == 0 || !FindInForce(request))) {
    CountDecision(v1::VERDICT_ALLOW);  // the hot path: no lock, no allocation
    return absl::OkStatus();
  }

  absl::MutexLock lock(&mu_);
  std::string redemption_failure;
  if (wants_redemption && TryRedeem(request, decision, response, &redemption_failure)) {
    if (absl::Status committed = Commit(response, row); !committed.ok()) {
      // The client will not hear of the redemption: it must stay possible. The journal gets the
      // undo with the next commit.
      const absl::Time now = clock_.Now();
      for (const std::string& id : response->case_ids()) {
        Record* r = FindRecord(id);
        r->c.set_redeemed(false);
        Transition(*r, now, "redemption-undone", kServerActor,
                   absl::StrCat("the store could not record the redemption by request ",
                                request.request_id(), ": ", committed.message()));
      }
      unsynced_.cases.merge(changes_.cases);
      unsynced_.transitions.insert(unsynced_.transitions.end(), changes_.transitions.begin(),
                                   changes_.transitions.end());
      changes_ = Changes();
      return committed;
    }
    CountDecision(v1::VERDICT_ALLOW);
    return absl::OkStatus();
  }

  const Matrix& matrix = *decision.matrix;
  absl::InlinedVector<int, 8> lanes;  // fired lanes, in the order they first fired
  for (const FiredTrigger& f : decision.fired) {
    const int lane = matrix.triggers()[f.trigger].lane;
    if (std::find(lanes.begin(), lanes.end(), lane) == lanes.end()) lanes.push_back(lane);
  }
  size_t to_open = 0;
  for (int lane : lanes) {
    const Lane& l = matrix.lanes()[lane];
    if (!open_by_key_.contains(OpenKeyOf(l.name, l.scope, request))) ++to_open;
  }
  if (to_open > 0 && open_count_.load() + to_open > options_.max_open_cases) {
    return absl::ResourceExhaustedError(
        absl::StrCat("case store full: ", open_count_.load(), " cases are open (the limit is ",
                     options_.max_open_cases, "); acknowledge cases or raise the limit"));
  }

  std::vector<Record*> touched;
  std::vector<Record*> opened;
  for (int lane : lanes) {
    Record* record = OpenOrJoin(request, decision, lane, *response, &opened);
    touched.push_back(record);
    if (lane == decision.lane) response->set_case_id(record->c.id());
    response->add_case_ids(record->c.id());
  }
  for (Record* r : opened) {
    for (const Record* t : touched) r->related.push_back(t->seq);
  }
  for (const FiredTrigger& f : decision.fired) {
    const Trigger& trigger = matrix.triggers()[f.trigger];
    TriggerCounts& counts = CountsFor(trigger.id);
    counts.lane = matrix.lanes()[trigger.lane].name;
    ++counts.fired;
  }

  if (std::optional<Forced> forced = FindInForce(request);
      forced.has_value() && MoreRestrictive(forced->verdict, response->verdict())) {
    const Record& f = *by_seq_.at(forced->seq);
    response->set_verdict(forced->verdict);
    response->set_lane(f.c.lane());
    response->set_owner(f.c.current_owner());
    response->set_backup(f.c.backup());
    *response->mutable_sla_deadline() = f.c.sla_deadline();
    response->set_agent_action(f.agent_action);
    response->set_operator_action(f.operator_action);
    response->clear_missing_evidence();
    for (const std::string& name : f.required_evidence) {
      auto it = request.evidence().find(name);
      if (it == request.evidence().end() || it->second.empty()) {
        response->add_missing_evidence(name);
      }
    }
    response->set_case_id(f.c.id());
    if (std::find(response->case_ids().begin(), response->case_ids().end(), f.c.id()) ==
        response->case_ids().end()) {
      response->add_case_ids(f.c.id());
    }
    switch (forced->kind) {
      case kDisabled:
        response->set_reason(absl::StrCat("credential ", request.actor().credential_id(),
                                          " is disabled by case ", f.c.id(),
                                          " until it is acknowledged"));
        break;
      case kPaused:
        response->set_reason(absl::StrCat("workflow ", request.workflow_id(), " is paused by case ",
                                          f.c.id(), " until it is acknowledged"));
        break;
      case kSafeMode:
        response->set_reason(absl::StrCat("workflow ", request.workflow_id(),
                                          " is in safe mode (case ", f.c.id(),
                                          "): only critical actions are evaluated normally"));
        break;
    }
  }
  if (!redemption_failure.empty()) {
    response->set_reason(response->reason().empty()
                             ? redemption_failure
                             : absl::StrCat(redemption_failure, "; ", response->reason()));
  }
  RETURN_IF_ERROR(Commit(response, row));
  CountDecision(response->verdict());
  return absl::OkStatus();
}

bool CaseStore::TryRedeem(const Request& request, const Decision& decision,
                          v1::EvaluateResponse* response, std::string* why) {
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
    return fail(absl::StrCat("a ", VerdictName(c.verdict()), " case is never redeemable"));
  }
  if (c.state() != v1::CASE_STATE_APPROVED) {
    return fail(absl::StrCat("the case is ", StateName(c.state()), ", not APPROVED"));
  }
  if (c.redeemed()) return fail("the approval was already redeemed");
  if (named->canonical_action != CanonicalAction(request)) {
    return fail(absl::StrCat("the action differs from the approved one (fingerprint ",
                             ActionFingerprint(request), ", approved ", c.action_fingerprint(),
                             ")"));
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
  const Matrix& matrix = *decision.matrix;
  for (const FiredTrigger& f : decision.fired) {
    const Trigger& trigger = matrix.triggers()[f.trigger];
    const Lane& lane = matrix.lanes()[trigger.lane];
    if (!IsRedeemable(lane.verdict)) {
      return fail(absl::StrCat("trigger ", trigger.id, " fired (lane ", lane.name, ", ",
                               VerdictName(lane.verdict), ")"));
    }
    if (std::none_of(related.begin(), related.end(),
                     [&](const Record* r) { return r->c.lane() == lane.name; })) {
      return fail(absl::StrCat("trigger ", trigger.id, " fired (lane ", lane.name,
                               "), which the approval does not cover"));
    }
  }
  if (FindInForce(request).has_value()) return fail("a scope in force covers this action");

  // Redeemed: ALLOW once.
  std::string approver;
  for (const v1::Transition& t : c.history()) {
    if (t.state() == v1::CASE_STATE_APPROVED) approver = t.actor();
  }
  const absl::Time now = clock_.Now();
  response->set_verdict(v1::VERDICT_ALLOW);
  response->clear_lane();
  response->clear_owner();
  response->clear_backup();
  response->clear_sla_deadline();
  response->clear_agent_action();
  response->clear_operator_action();
  response->clear_missing_evidence();
  response->set_case_id(named->c.id());
  response->clear_case_ids();
  for (Record* r : related) {
    r->c.set_redeemed(true);
    response->add_case_ids(r->c.id());
    Transition(*r, now, "redeemed", kServerActor,
               absl::StrCat("request ", request.request_id(), " (decision ",
                            response->decision_id(), ")"));
  }
  response->set_reason(
      absl::StrCat("approved by ", approver, " in case ", named->c.id(), "; redeemed once"));
  return true;
}

CaseStore::Record* CaseStore::OpenOrJoin(const Request& request, const Decision& decision,
                                         int lane_index, const v1::EvaluateResponse& response,
                                         std::vector<Record*>* opened) {
  const Matrix& matrix = *decision.matrix;
  const Lane& lane = matrix.lanes()[lane_index];
  const absl::Time now = decision.decided_at;
  std::string open_key = OpenKeyOf(lane.name, lane.scope, request);

  Record* record = nullptr;
  if (auto it = open_by_key_.find(open_key); it != open_by_key_.end()) {
    record = by_seq_.at(it->second).get();
  } else {
    auto owned = std::make_unique<Record>();
    record = owned.get();
    record->seq = next_seq_++;
    record->open_key = std::move(open_key);
    record->canonical_action = CanonicalAction(request);
    record->workflow_key = Key(request.tenant_id(), request.workflow_id());
    record->credential_key = Key(request.tenant_id(), request.actor().credential_id());
    record->agent_action = lane.agent_action;
    record->operator_action = lane.operator_action;
    record->required_evidence = lane.evidence;
    record->sla = lane.sla;
    v1::Case& c = record->c;
    c.set_id(absl::StrCat("case_", DecisionId::Next(now).view()));
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
    c.set_current_owner(lane.owner);
    *c.mutable_opened_at() = ToTimestamp(now);
    c.set_action_fingerprint(ActionFingerprint(request));
    c.set_matrix_version(matrix.version());
    c.set_on_timeout(lane.on_timeout);
    std::string action_json;
    google::protobuf::util::JsonPrintOptions json;
    json.preserve_proto_field_names = true;
    if (google::protobuf::util::MessageToJsonString(request.action(), &action_json, json).ok()) {
      c.mutable_evidence()->set_proposed_action(action_json);
    }
    open_by_key_[record->open_key] = record->seq;
    by_id_[c.id()] = record->seq;
    by_seq_[record->seq] = std::move(owned);
    open_count_.fetch_add(1);
    opened->push_back(record);
    Arm(*record, now);
    if (lane.verdict == v1::VERDICT_SAFE_MODE) SetInForce(*record, kSafeMode, true);
  }

  // Append this decision: fired triggers of the lane, the request, the evidence.
  v1::Case& c = record->c;
  for (int i = 0; i < response.fired_size(); ++i) {
    const v1::FiredTrigger& fired = response.fired(i);
    if (fired.lane() != lane.name) continue;
    if (static_cast<size_t>(c.fired_size()) < options_.max_fired_per_case) {
      *c.add_fired() = fired;
    }
    if (record->triggers.insert(fired.trigger_id()).second) {
      TriggerCounts& counts = CountsFor(fired.trigger_id());
      counts.lane = lane.name;
      ++counts.open;
      const int t = static_cast<int>(
          std::find_if(matrix.triggers().begin(), matrix.triggers().end(),
                       [&](const Trigger& tr) { return tr.id == fired.trigger_id(); }) -
          matrix.triggers().begin());
      if (t < static_cast<int>(matrix.triggers().size())) {
        c.mutable_evidence()->add_rules(
            absl::StrCat(fired.trigger_id(), ": ", matrix.triggers()[t].condition->source()));
      }
    }
  }
  c.add_request_ids(request.request_id());
  if (static_cast<size_t>(c.request_ids_size()) > options_.max_request_ids_per_case) {
    c.mutable_request_ids()->erase(c.mutable_request_ids()->begin());
  }
  v1::EvidencePacket& packet = *c.mutable_evidence();
  for (const auto& [name, value] : request.evidence()) {
    if (value.empty()) continue;
    if (name == "original_input") packet.set_original_input(value);
    if (name == "retrieved_context") packet.set_retrieved_context(value);
    if (IsLink(value) && static_cast<size_t>(packet.links_size()) < kMaxLinks &&
        std::find(packet.links().begin(), packet.links().end(), value) == packet.links().end()) {
      packet.add_links(value);
    }
    if (packet.attached().contains(name) ||
        static_cast<size_t>(packet.attached_size()) < kMaxAttached) {
      (*packet.mutable_attached())[name] = value;
    }
  }
  auto* history = packet.mutable_recent_history();
  history->Add(absl::StrCat(Rfc3339(now), " ", VerdictName(decision.verdict), " decision ",
                            response.decision_id(), " request ", request.request_id()));
  std::rotate(history->begin(), history->end() - 1, history->end());  // newest first
  while (static_cast<size_t>(history->size()) > options_.max_history_lines) history->RemoveLast();

  const bool is_new = !opened->empty() && opened->back() == record;
  if (is_new) {
    Transition(
        *record, now, "opened", kServerActor,
        absl::StrCat("request ", request.request_id(), " (decision ", response.decision_id(), ")"));
  } else {
    int joins = 0;
    for (const v1::Transition& t : c.history()) joins += t.event() == "joined";
    const std::string comment =
        absl::StrCat("request ", request.request_id(), " (decision ", response.decision_id(), ")");
    if (static_cast<size_t>(joins) < kMaxJoinsInHistory) {
      Transition(*record, now, "joined", kServerActor, comment);
    } else {
      // Past the cap the history stops growing; watchers still hear of every join.
      v1::Transition t;
      *t.mutable_time() = ToTimestamp(now);
      t.set_state(c.state());
      t.set_event("joined");
      t.set_actor(std::string(kServerActor));
      t.set_comment(comment);
      Touch(*record);
      if (journal_ != nullptr) changes_.transitions.push_back({record->seq, t});
      Publish(*record, t);
    }
  }
  return record;
}

void CaseStore::Arm(Record& record, absl::Time now) {
  const absl::Time deadline = now + record.sla;
  *record.c.mutable_sla_deadline() = ToTimestamp(deadline);
  ++record.generation;
  record.timer_armed = true;
  timers_.push(Timer{deadline, record.seq, record.generation});
}

void CaseStore::Transition(Record& record, absl::Time now, absl::string_view event,
                           absl::string_view actor, absl::string_view comment) {
  v1::Transition& t = *record.c.add_history();
  *t.mutable_time() = ToTimestamp(now);
  t.set_state(record.c.state());
  t.set_event(std::string(event));
  t.set_actor(std::string(actor));
  t.set_comment(std::string(comment));
  Touch(record);
  if (journal_ != nullptr) changes_.transitions.push_back({record.seq, t});
  Publish(record, t);
}

void CaseStore::Publish(const Record& record, const v1::Transition& transition) {
  const uint64_t sequence = next_event_++;
  if (watchers_.empty()) return;
  v1::CaseEvent event;
  event.set_sequence(sequence);
  *event.mutable_transition() = transition;
  *event.mutable_case_() = record.c;
  for (const std::shared_ptr<CaseWatcher>& w : watchers_) {
    if (w->Matches(record.c)) w->Push(event);
  }
}

void CaseStore::Close(Record& record, v1::CaseState state, absl::Time now, absl::string_view event,
                      absl::string_view actor, absl::string_view comment) {
  record.c.set_state(state);
  ++record.generation;  // disarms the timer
  record.timer_armed = false;
  open_by_key_.erase(record.open_key);
  for (InForce kind : {kSafeMode, kPaused, kDisabled}) SetInForce(record, kind, false);
  open_count_.fetch_sub(1);
  const int64_t ms = absl::ToInt64Milliseconds(now - FromTimestamp(record.c.opened_at()));
  for (const std::string& trigger : record.triggers) {
    TriggerCounts& counts = CountsFor(trigger);
    if (counts.open > 0) --counts.open;
    switch (state) {
      case v1::CASE_STATE_APPROVED:
        ++counts.approved;
        break;
      case v1::CASE_STATE_REJECTED:
        ++counts.rejected;
        break;
      case v1::CASE_STATE_RESOLVED:
        ++counts.resolved;
        break;
      default:
        ++counts.expired;
        break;
    }
    if (state != v1::CASE_STATE_EXPIRED) {
      counts.decision_ms.push_back(ms);
      if (counts.decision_ms.size() > kDecisionSamples) counts.decision_ms.pop_front();
    }
  }
  Transition(record, now, event, actor, comment);
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
  by_id_.erase(it->second->c.id());
  by_seq_.erase(it);
  changes_.cases.erase(seq);
  unsynced_.cases.erase(seq);
  if (journal_ != nullptr) changes_.forgotten.push_back(seq);
}

void CaseStore::RunTimeout(Record& record, absl::Time now) {
  v1::Case& c = record.c;
  const std::string overdue =
      absl::StrCat(c.current_owner(), " did not answer within ", absl::FormatDuration(record.sla));
  auto reassign = [&](const std::string& to, absl::string_view event) {
    if (to.empty() || to == c.current_owner()) {
      Transition(record, now, "timeout:overdue", kServerActor,
                 absl::StrCat(overdue, "; nobody else to route to"));
      return;
    }
    c.set_current_owner(to);
    Arm(record, now);
    Transition(record, now, event, kServerActor, absl::StrCat(overdue, "; ", to, " owns it now"));
  };
  switch (c.on_timeout()) {
    case v1::TIMEOUT_BEHAVIOR_NOTIFY_BACKUP:
      reassign(c.backup(), "timeout:notify_backup");
      break;
    case v1::TIMEOUT_BEHAVIOR_ROUTE_TO_FALLBACK:
      reassign(c.fallback(), "timeout:route_to_fallback");
      break;
    case v1::TIMEOUT_BEHAVIOR_PAUSE_WORKFLOW:
      SetInForce(record, kPaused, true);
      Transition(record, now, "timeout:pause_workflow", kServerActor,
                 absl::StrCat(overdue, "; every action of workflow ", c.workflow_id(),
                              " is held until the case is acknowledged"));
      break;
    case v1::TIMEOUT_BEHAVIOR_DISABLE_CREDENTIAL:
      if (c.credential_id().empty()) {
        Transition(record, now, "timeout:overdue", kServerActor,
                   absl::StrCat(overdue, "; the requests named no credential to disable"));
      } else {
        SetInForce(record, kDisabled, true);
        Transition(record, now, "timeout:disable_credential", kServerActor,
                   absl::StrCat(overdue, "; every action with credential ", c.credential_id(),
                                " is denied until the case is acknowledged"));
      }
      break;
    case v1::TIMEOUT_BEHAVIOR_EXPIRE:
      Close(record, v1::CASE_STATE_EXPIRED, now, "timeout:expire", kServerActor,
            absl::StrCat(overdue, "; the request is void and must be resubmitted"));
      break;
    default:
      Transition(record, now, "timeout:overdue", kServerActor, overdue);
      break;
  }
}

int CaseStore::RunDueTimers() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
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

absl::StatusOr<v1::Case> CaseStore::Acknowledge(const Acknowledgement& ack) {
  if (ack.case_id.empty()) return absl::InvalidArgumentError("case_id: required");
  if (ack.decision != v1::DECISION_APPROVE && ack.decision != v1::DECISION_REJECT &&
      ack.decision != v1::DECISION_RESOLVE) {
    return absl::InvalidArgumentError("decision: required: APPROVE, REJECT or RESOLVE");
  }
  if (ack.approver.empty()) {
    return absl::InvalidArgumentError(
        "approver: required (the x-agate-approver call metadata or the approver field)");
  }
  if (ack.approver.size() > kMaxApproverBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("approver: longer than ", kMaxApproverBytes, " bytes"));
  }
  if (ack.comment.size() > kMaxCommentBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("comment: longer than ", kMaxCommentBytes, " bytes"));
  }
  absl::MutexLock lock(&mu_);
  Record* record = FindRecord(ack.case_id);
  if (record == nullptr)
    return absl::NotFoundError(absl::StrCat("case ", ack.case_id, " not found"));
  v1::Case& c = record->c;
  if (c.state() != v1::CASE_STATE_OPEN) {
    return absl::FailedPreconditionError(absl::StrCat("case ", c.id(), " is ", StateName(c.state()),
                                                      ", not OPEN: it cannot be acknowledged"));
  }
  const bool fallback_may_act =
      c.on_timeout() == v1::TIMEOUT_BEHAVIOR_ROUTE_TO_FALLBACK && !c.fallback().empty();
  if (ack.approver != c.owner() && (c.backup().empty() || ack.approver != c.backup()) &&
      !(fallback_may_act && ack.approver == c.fallback())) {
    std::vector<std::string> may = {c.owner()};
    if (!c.backup().empty()) may.push_back(c.backup());
    if (fallback_may_act) may.push_back(c.fallback());
    return absl::PermissionDeniedError(
        absl::StrCat("approver ", ack.approver, " may not act on case ", c.id(), " (lane ",
                     c.lane(), "): only ", absl::StrJoin(may, ", "), " may"));
  }
  if (ack.decision == v1::DECISION_APPROVE && c.verdict() == v1::VERDICT_DENY) {
    return absl::FailedPreconditionError(
        absl::StrCat("case ", c.id(),
                     " is a DENY case: no approval turns DENY into ALLOW; REJECT or RESOLVE it"));
  }
  static constexpr struct {
    v1::CaseState state;
    absl::string_view event;
  } kOutcomes[] = {{v1::CASE_STATE_UNSPECIFIED, ""},
                   {v1::CASE_STATE_APPROVED, "approved"},
                   {v1::CASE_STATE_REJECTED, "rejected"},
                   {v1::CASE_STATE_RESOLVED, "resolved"}};
  const auto& outcome = kOutcomes[ack.decision];
  Close(*record, outcome.state, clock_.Now(), outcome.event, ack.approver, ack.comment);
  RETURN_IF_ERROR(Commit(nullptr, nullptr));
  return c;
}

void CaseStore::Touch(const Record& record) { changes_.cases.insert(record.seq); }

CaseStore::TriggerCounts& CaseStore::CountsFor(const std::string& trigger_id) {
  changes_.triggers.insert(trigger_id);
  return trigger_counts_[trigger_id];
}

store::v1::StoredCase CaseStore::ToStored(const Record& record) const {
  store::v1::StoredCase out;
  *out.mutable_case_() = record.c;
  out.set_seq(record.seq);
  out.set_canonical_action(record.canonical_action);
  out.set_agent_action(record.agent_action);
  out.set_operator_action(record.operator_action);
  for (const std::string& name : record.required_evidence) out.add_required_evidence(name);
  out.set_sla_nanos(absl::ToInt64Nanoseconds(record.sla));
  for (uint64_t seq : record.related) out.add_related(seq);
  std::vector<std::string> triggers(record.triggers.begin(), record.triggers.end());
  std::sort(triggers.begin(), triggers.end());
  for (std::string& t : triggers) out.add_triggers(std::move(t));
  out.set_safe_mode_in_force(record.in_force[kSafeMode]);
  out.set_paused_in_force(record.in_force[kPaused]);
  out.set_disabled_in_force(record.in_force[kDisabled]);
  out.set_timer_armed(record.timer_armed);
  return out;
}

absl::Status CaseStore::Commit(const v1::EvaluateResponse* response, DecisionRow* row) {
  if (journal_ == nullptr) {
    changes_ = Changes();
    return absl::OkStatus();
  }
  // Whatever a failed commit left behind goes first.
  Changes ch = std::move(unsynced_);
  unsynced_ = Changes();
  ch.cases.merge(changes_.cases);
  ch.transitions.insert(ch.transitions.end(), std::make_move_iterator(changes_.transitions.begin()),
                        std::make_move_iterator(changes_.transitions.end()));
  ch.forgotten.insert(ch.forgotten.end(), changes_.forgotten.begin(), changes_.forgotten.end());
  ch.triggers.merge(changes_.triggers);
  changes_ = Changes();
  if (ch.cases.empty() && ch.transitions.empty() && ch.forgotten.empty() && ch.triggers.empty()) {
    return absl::OkStatus();
  }

  JournalBatch batch;
  for (uint64_t seq : ch.cases) {
    if (auto it = by_seq_.find(seq); it != by_seq_.end()) {
      batch.cases.push_back(ToStored(*it->second));
    }
  }
  batch.transitions = ch.transitions;
  batch.forgotten = ch.forgotten;
  for (const std::string& id : ch.triggers) {
    auto it = trigger_counts_.find(id);
    if (it == trigger_counts_.end()) continue;
    const TriggerCounts& counts = it->second;
    store::v1::StoredTriggerStats& stored = batch.trigger_stats.emplace_back();
    stored.mutable_stats()->set_trigger_id(id);
    counts.FillInto(stored.mutable_stats());
    for (int64_t ms : counts.decision_ms) stored.add_decision_ms(ms);
  }
  if (row != nullptr && response != nullptr) {
    row->response = response->SerializeAsString();
    batch.decisions.push_back(*row);
  }
  absl::Status status = journal_->Commit(batch);
  if (status.ok()) {
    if (row != nullptr && response != nullptr) row->committed = true;
    return absl::OkStatus();
  }
  unsynced_ = std::move(ch);
  if (unsynced_.transitions.size() > kMaxUnsyncedTransitions) {
    unsynced_.transitions.erase(
        unsynced_.transitions.begin(),
        unsynced_.transitions.end() - static_cast<ptrdiff_t>(kMaxUnsyncedTransitions));
  }
  return status;
}

absl::Status CaseStore::Sync() {
  absl::MutexLock lock(&mu_);
  return Commit(nullptr, nullptr);
}

size_t CaseStore::unsynced() const {
  absl::MutexLock lock(&mu_);
  return unsynced_.cases.size();
}

absl::Status CaseStore::Restore(const JournalContents& contents) {
  absl::MutexLock lock(&mu_);
  if (!by_seq_.empty())
    return absl::FailedPreconditionError("Restore: the case store is not empty");
  std::vector<std::pair<absl::Time, uint64_t>> closed;  // (closing time, seq)
  for (const store::v1::StoredCase& stored : contents.cases) {
    const v1::Case& c = stored.case_();
    if (stored.seq() == 0 || by_seq_.contains(stored.seq()) || by_id_.contains(c.id())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Restore: case ", c.id(), " (seq ", stored.seq(), ") is a duplicate or has no seq"));
    }
    auto owned = std::make_unique<Record>();
    Record& r = *owned;
    r.seq = stored.seq();
    r.c = c;
    r.open_key = OpenKeyOf(c.lane(), c.scope(), c.tenant_id(), c.workflow_id(), c.item_id(),
                           c.credential_id());
    r.canonical_action = stored.canonical_action();
    r.workflow_key = Key(c.tenant_id(), c.workflow_id());
    r.credential_key = Key(c.tenant_id(), c.credential_id());
    r.agent_action = stored.agent_action();
    r.operator_action = stored.operator_action();
    r.required_evidence.assign(stored.required_evidence().begin(),
                               stored.required_evidence().end());
    r.sla = absl::Nanoseconds(stored.sla_nanos());
    r.related.assign(stored.related().begin(), stored.related().end());
    r.triggers.insert(stored.triggers().begin(), stored.triggers().end());
    by_id_[c.id()] = r.seq;
    next_seq_ = std::max(next_seq_, r.seq + 1);
    if (c.state() == v1::CASE_STATE_OPEN) {
      open_by_key_[r.open_key] = r.seq;
      open_count_.fetch_add(1);
      if (stored.timer_armed()) {
        r.generation = 1;
        r.timer_armed = true;
        timers_.push(Timer{FromTimestamp(c.sla_deadline()), r.seq, r.generation});
      }
      if (stored.safe_mode_in_force()) SetInForce(r, kSafeMode, true);
      if (stored.paused_in_force()) SetInForce(r, kPaused, true);
      if (stored.disabled_in_force()) SetInForce(r, kDisabled, true);
    } else {
      const absl::Time at = c.history().empty() ? FromTimestamp(c.opened_at())
                                                : FromTimestamp(c.history().rbegin()->time());
      closed.emplace_back(at, r.seq);
    }
    by_seq_[r.seq] = std::move(owned);
  }
  std::sort(closed.begin(), closed.end());
  for (const auto& [at, seq] : closed) KeepClosed(*by_seq_[seq]);
  for (const store::v1::StoredTriggerStats& stored : contents.trigger_stats) {
    const v1::TriggerStats& stats = stored.stats();
    TriggerCounts& counts = trigger_counts_[stats.trigger_id()];
    counts.lane = stats.lane();
    counts.fired = stats.fired();
    counts.open = stats.open();
    counts.approved = stats.approved();
    counts.rejected = stats.rejected();
    counts.resolved = stats.resolved();
    counts.expired = stats.expired();
    counts.decision_ms.assign(stored.decision_ms().begin(), stored.decision_ms().end());
  }
  changes_ = Changes();
  return absl::OkStatus();
}

absl::StatusOr<v1::Case> CaseStore::Get(absl::string_view case_id) const {
  if (case_id.empty()) return absl::InvalidArgumentError("case_id: required");
  absl::MutexLock lock(&mu_);
  const Record* record = FindRecord(case_id);
  if (record == nullptr) return absl::NotFoundError(absl::StrCat("case ", case_id, " not found"));
  return record->c;
}

absl::StatusOr<v1::ListCasesResponse> CaseStore::List(const v1::ListCasesRequest& request) const {
  constexpr int kDefaultPage = 50;
  constexpr int kMaxPage = 1000;
  if (request.page_size() < 0 || request.page_size() > kMaxPage) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be in [0, ", kMaxPage, "], got ", request.page_size()));
  }
  const int page = request.page_size() == 0 ? kDefaultPage : request.page_size();
  uint64_t before = 0;  // 0: from the newest
  if (!request.page_token().empty() &&
      (!absl::StartsWith(request.page_token(), "p") ||
       !absl::SimpleAtoi(absl::string_view(request.page_token()).substr(1), &before) ||
       before == 0)) {
    return absl::InvalidArgumentError("page_token: not a token from a previous ListCases response");
  }
  auto matches = [&](const v1::Case& c) {
    return (request.state() == v1::CASE_STATE_UNSPECIFIED || c.state() == request.state()) &&
           (request.lane().empty() || c.lane() == request.lane()) &&
           (request.tenant_id().empty() || c.tenant_id() == request.tenant_id()) &&
           (request.owner().empty() || c.owner() == request.owner() ||
            c.backup() == request.owner() || c.current_owner() == request.owner());
  };
  v1::ListCasesResponse response;
  uint64_t last = 0;
  absl::MutexLock lock(&mu_);
  auto it = before == 0 ? by_seq_.end() : by_seq_.lower_bound(before);
  while (it != by_seq_.begin()) {
    --it;
    const v1::Case& c = it->second->c;
    if (!matches(c)) continue;
    if (response.cases_size() == page) {
      // Another match exists: the next page starts below the last case returned.
      response.set_next_page_token(absl::StrCat("p", last));
      break;
    }
    *response.add_cases() = c;
    last = it->first;
  }
  return response;
}

std::shared_ptr<CaseWatcher> CaseStore::Watch(const v1::WatchCasesRequest& filter,
                                              std::function<void()> notify) {
  auto watcher = std::make_shared<CaseWatcher>(filter, options_.watcher_buffer, std::move(notify));
  absl::MutexLock lock(&mu_);
  watchers_.push_back(watcher);
  return watcher;
}

void CaseStore::Unwatch(const std::shared_ptr<CaseWatcher>& watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), watcher), watchers_.end());
}

size_t CaseStore::watchers() const {
  absl::MutexLock lock(&mu_);
  return watchers_.size();
}

size_t CaseStore::open_cases() const { return open_count_.load(); }

v1::GetStatsResponse CaseStore::Stats(const Matrix* matrix) const {
  v1::GetStatsResponse out;
  absl::MutexLock lock(&mu_);
  auto add = [&](const std::string& id, absl::string_view lane) {
    v1::TriggerStats& s = *out.add_triggers();
    s.set_trigger_id(id);
    s.set_lane(std::string(lane));
    auto it = trigger_counts_.find(id);
    if (it != trigger_counts_.end()) it->second.FillInto(&s);
  };
  absl::flat_hash_set<std::string> listed;
  if (matrix != nullptr) {
    for (const Trigger& t : matrix->triggers()) {
      add(t.id, matrix->lanes()[t.lane].name);
      listed.insert(t.id);
    }
  }
  std::vector<std::string> others;
  for (const auto& [id, counts] : trigger_counts_) {
    if (!listed.contains(id)) others.push_back(id);
  }
  std::sort(others.begin(), others.end());
  for (const std::string& id : others) add(id, "");
  out.set_open_cases(open_count_.load());
  for (int v = v1::VERDICT_ALLOW; v <= v1::VERDICT_DENY; ++v) {
    const uint64_t n = decisions_[v].load(std::memory_order_relaxed);
    if (n > 0) (*out.mutable_decisions())[std::string(VerdictName(static_cast<Verdict>(v)))] = n;
  }
  return out;
}

}  // namespace agate::engine
