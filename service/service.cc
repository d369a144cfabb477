#include "service/service.h"

#include <optional>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "engine/decision_codec.h"
#include "store/decision_record.h"

namespace agate::service {
namespace {

// A replay is the stored response with `replayed` set: field 17, varint 1, appended (a later
// occurrence of a scalar field wins when protobuf parses it), so it costs no parse nor
// serialization.
constexpr char kReplayedSuffix[] = {static_cast<char>(0x88), 0x01, 0x01};
static_assert(v1::EvaluateResponse::kReplayedFieldNumber == 17);

void MarkReplayed(std::string* bytes) { bytes->append(kReplayedSuffix, sizeof(kReplayedSuffix)); }

absl::string_view AsStringView(const std::array<unsigned char, 32>& digest) {
  return absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size());
}

// Sealer encodes a decision that changed cases into the caller's response, keeps the bytes, and
// writes its decision-log record (record) before the store commits it: the log may hold a decision
// whose answer a crash then cut off, never the reverse (a case redeemed or opened in the store
// without its record).
class Sealer final : public cases::DecisionSealer {
 public:
  using Recorder = absl::FunctionRef<void(const v1::EvaluateResponse&, absl::Time)>;
  Sealer(std::string* key, std::string* digest, v1::EvaluateResponse* response, Recorder record)
      : key_(key), digest_(digest), response_(response), record_(record) {}

  cases::DecisionRow Seal(const engine::Decision& decision) override {
    engine::EncodeDecision(decision, response_);
    bytes_ = response_->SerializeAsString();
    sealed_ = true;
    record_(*response_, decision.decided_at);
    return cases::DecisionRow{
        .key = *key_, .digest = *digest_, .response = bytes_, .decided_at = decision.decided_at};
  }
  absl::string_view key() const override { return *key_; }
  absl::string_view digest() const override { return *digest_; }
  // Found: another server of a shared store decided this request; its answer is the answer.
  void Found(cases::DecisionRow row) override {
    bytes_ = std::move(row.response);
    found_ = true;
  }
  // sealed tells whether the decision was committed with its cases (and encoded).
  bool sealed() const { return sealed_; }
  // found tells whether the answer is another server's (bytes holds it).
  bool found() const { return found_; }
  std::string& bytes() { return bytes_; }

 private:
  std::string* const key_;
  std::string* const digest_;
  v1::EvaluateResponse* const response_;
  const Recorder record_;
  std::string bytes_;
  bool sealed_ = false;
  bool found_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Service>> Service::Create(
    std::shared_ptr<const engine::Matrix> matrix, const Clock& clock, ServiceOptions options) {
  std::unique_ptr<IdempotencyCache> idempotency;
  if (options.idempotency.enabled) {
    ASSIGN_OR_RETURN(idempotency, IdempotencyCache::Create(clock, options.idempotency));
  }
  auto audit = std::make_unique<AuditLog>(options.decision_log, clock);
  options.decider.cases.audit = audit.get();
  Recovery recovery;
  std::optional<cases::JournalContents> contents;
  if (options.store != nullptr) {
    ASSIGN_OR_RETURN(contents, options.store->LoadCases());
    recovery.cases = contents->cases.size();
  }
  ASSIGN_OR_RETURN(std::unique_ptr<cases::Decider> decider,
                   cases::Decider::Create(std::move(matrix), clock, options.decider, options.store,
                                          contents ? &*contents : nullptr));
  std::unique_ptr<Service> service(
      new Service(clock, options, std::move(audit), std::move(decider), std::move(idempotency)));
  service->recovery_ = recovery;
  if (options.store != nullptr) {
    service->recovery_.open_cases = service->cases().open_cases();
    RETURN_IF_ERROR(service->RecoverDecisions());
    ASSIGN_OR_RETURN(std::vector<store::v1::StoredSignalSeries> series,
                     options.store->LoadSignals());
    service->decider_->signals().Import(series);
    service->recovery_.signal_keys = service->decider_->signals().keys();
  }
  return service;
}

Service::Service(const Clock& clock, ServiceOptions options, std::unique_ptr<AuditLog> audit,
                 std::unique_ptr<cases::Decider> decider,
                 std::unique_ptr<IdempotencyCache> idempotency)
    : clock_(clock),
      options_(options),
      audit_(std::move(audit)),
      decider_(std::move(decider)),
      idempotency_(std::move(idempotency)) {}

absl::Status Service::RecoverDecisions() {
  if (idempotency_ == nullptr) return absl::OkStatus();
  const absl::Time since = clock_.Now() - options_.idempotency.window;
  ASSIGN_OR_RETURN(std::vector<cases::DecisionRow> rows,
                   options_.store->LoadDecisions(since, options_.idempotency.max_entries));
  // The rows the store kept (decisions that changed a case, committed with it) come first: for
  // a key in both, theirs is the complete answer.
  for (cases::DecisionRow& row : rows) {
    idempotency_->Insert(row.key, row.digest, row.response, row.decided_at);
  }
  recovery_.decisions = rows.size();
  if (options_.decision_log == nullptr) return absl::OkStatus();
  // ALLOW decisions are written once, to the decision log: their answers are rebuilt from it.
  std::vector<store::RecordedAllow> allows;
  size_t seen = 0;
  RETURN_IF_ERROR(
      store::ReadRecentRecords(options_.decision_log->dir(), [&](absl::string_view line) {
        std::optional<store::RecordedAllow> allow = store::ParseAllowRecord(line);
        if (allow.has_value()) {
          if (allow->decided_at < since) return false;
          // A redemption (an ALLOW that names cases) is answered from the store's row, committed
          // with the cases: its record is written first, so a crash can leave a record of a
          // redemption the store never made, which a retry must make again, not replay.
          if (allow->response.case_ids().empty()) allows.push_back(*std::move(allow));
        }
        return ++seen < options_.idempotency.max_entries;
      }));
  for (auto a = allows.rbegin(); a != allows.rend(); ++a) {
    if (idempotency_->Insert(a->key, a->digest, a->response.SerializeAsString(), a->decided_at)) {
      ++recovery_.decisions;
    }
  }
  return absl::OkStatus();
}

absl::Status Service::SaveSignals() {
  if (options_.store == nullptr) return absl::OkStatus();
  RETURN_IF_ERROR(options_.store->SaveSignals(decider_->signals().Export()));
  if (!options_.store->shared()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<store::v1::StoredSignalSeries> others,
                   options_.store->LoadOtherSignals());
  decider_->signals().SetOthers(others);
  return absl::OkStatus();
}

bool Service::Replay(const WireRequest& wire, std::string* response_bytes) {
  if (idempotency_ == nullptr) return false;
  thread_local std::string key;  // a retry allocates nothing
  key.clear();
  absl::StrAppend(&key, wire.tenant_id, absl::string_view("\0", 1), wire.request_id);
  response_bytes->clear();
  if (!idempotency_->FindWire(key, AsStringView(wire.digest), response_bytes)) return false;
  MarkReplayed(response_bytes);
  return true;
}

void Service::CountDecision(const engine::Decision& decision, int64_t started_ns) {
  counters_.CountDecision(decision.verdict);
  if (decision.redeemed) Counters::Add(counters_.redemptions);
  if (const engine::Lane* lane = decision.reported_lane(); lane != nullptr) {
    counters_.CountEscalation(decision.verdict, lane->name);
  }
  counters_.ObserveEvaluate(absl::GetCurrentTimeNanos() - started_ns);
}

absl::Status Service::Evaluate(const v1::EvaluateRequest& request, v1::EvaluateResponse* response,
                               std::string* response_bytes, absl::string_view caller,
                               const WireRequest* wire) {
  const int64_t started_ns = absl::GetCurrentTimeNanos();
  if (response_bytes != nullptr) response_bytes->clear();
  if (absl::Status valid = engine::ValidateRequest(request, options_.limits); !valid.ok()) {
    Counters::Add(counters_.evaluate_errors);
    return valid;
  }
  if (idempotency_ == nullptr && options_.decision_log == nullptr && options_.store == nullptr) {
    absl::StatusOr<engine::Decision> decision = decider_->Decide(request, nullptr, caller);
    if (!decision.ok()) {
      Counters::Add(counters_.evaluate_errors);
      return decision.status();
    }
    engine::EncodeDecision(*decision, response);
    CountDecision(*decision, started_ns);
    return absl::OkStatus();
  }

  std::string key = IdempotencyKey(request);
  std::string digest = RequestDigest(request);
  if (idempotency_ != nullptr) {
    std::string replay;
    absl::Time first_decided;
    switch (idempotency_->Find(key, digest, &replay, &first_decided)) {
      case IdempotencyCache::kHit:
        MarkReplayed(&replay);
        if (response_bytes != nullptr) {
          *response_bytes = std::move(replay);
        } else {
          response->ParseFromString(replay);
        }
        return absl::OkStatus();
      case IdempotencyCache::kConflict:
        Counters::Add(counters_.evaluate_errors);
        return absl::AlreadyExistsError(absl::StrCat(
            "request_id: ", request.request_id(), " of tenant ", request.tenant_id(),
            " was already decided at ", absl::FormatTime(first_decided, absl::UTCTimeZone()),
            " for a request with other contents; use a new request_id for a new request"));
      case IdempotencyCache::kMiss:
        break;
    }
  }

  auto record = [&](const v1::EvaluateResponse& sealed, absl::Time decided_at) {
    Record(request, sealed, digest, decided_at, /*sync=*/true);
  };
  Sealer sealer(&key, &digest, response, record);  // FunctionRef: record must outlive it
  absl::StatusOr<engine::Decision> decision = decider_->Decide(request, &sealer, caller);
  if (!decision.ok()) {
    Counters::Add(counters_.evaluate_errors);
    return decision.status();
  }
  if (sealer.found()) {
    std::string& replay = sealer.bytes();
    if (idempotency_ != nullptr) {
      std::string first;
      idempotency_->Insert(key, digest, replay, decision->decided_at, &first, "");
    }
    MarkReplayed(&replay);
    if (response_bytes != nullptr) {
      *response_bytes = std::move(replay);
    } else {
      response->ParseFromString(replay);
    }
    return absl::OkStatus();
  }
  if (!sealer.sealed()) {
    engine::EncodeDecision(*decision, response);
    sealer.bytes() = response->SerializeAsString();
  }
  std::string& bytes = sealer.bytes();
  if (idempotency_ != nullptr) {
    std::string first;
    if (!idempotency_->Insert(key, digest, bytes, decision->decided_at, &first,
                              wire != nullptr ? AsStringView(wire->digest) : "")) {
      // The same request raced with itself: the first answer stands (its case was joined, not
      // duplicated).
      MarkReplayed(&first);
      if (response_bytes != nullptr) {
        *response_bytes = std::move(first);
      } else {
        response->ParseFromString(first);
      }
      return absl::OkStatus();
    }
  }
  CountDecision(*decision, started_ns);
  // A decision that changed cases (an escalation, a redemption) was written with them, before
  // the store committed it. Otherwise: a verdict a scope in force imposed is written before the
  // answer, an ALLOW is queued.
  if (!sealer.sealed()) {
    Record(request, *response, digest, decision->decided_at,
           /*sync=*/decision->verdict != v1::VERDICT_ALLOW || decision->redeemed);
  }
  // A decision that changed a case was committed with it. An ALLOW is kept by the decision log
  // alone (RecoverDecisions rebuilds its answer from the record); anything else (a verdict a
  // scope in force imposed, which changes no case) goes to the store in the background.
  const bool enqueue = options_.store != nullptr && !sealer.sealed() &&
                       (decision->verdict != v1::VERDICT_ALLOW || options_.decision_log == nullptr);
  if (enqueue) {
    options_.store->EnqueueDecision(cases::DecisionRow{.key = std::move(key),
                                                       .digest = std::move(digest),
                                                       .response = bytes,
                                                       .decided_at = decision->decided_at});
  }
  if (response_bytes != nullptr) *response_bytes = std::move(bytes);
  return absl::OkStatus();
}

void Service::Record(const v1::EvaluateRequest& request, const v1::EvaluateResponse& response,
                     absl::string_view digest, absl::Time decided_at, bool sync) {
  if (options_.decision_log == nullptr) return;
  // A failing log never fails a decision: DecisionLog counts, logs and retries. The body is
  // built in a per-thread buffer: no allocation per decision once it has grown.
  thread_local std::string body;
  body.clear();
  char hex[2 * 32];
  store::AppendDecisionRecordBody(request, response, DigestHex(digest, hex), decided_at, &body);
  options_.decision_log->Append(body, sync).IgnoreError();
}

v1::ListKillSwitchesResponse Service::KillSwitches(const cases::TenantScope& scope) const {
  v1::ListKillSwitchesResponse out;
  for (v1::KillSwitch& k : cases().KillSwitches(scope)) *out.add_switches() = std::move(k);
  return out;
}

v1::GetStatsResponse Service::Stats(const cases::TenantScope& scope) const {
  const std::shared_ptr<const engine::Matrix> matrix = decider_->matrix();
  v1::GetStatsResponse stats;
  cases().Stats(matrix.get(), scope, &stats);
  cases().OwnerLoads(scope, &stats);
  stats.set_matrix_version(matrix->version());
  if (!scope.all()) return stats;
  for (int v = v1::VERDICT_ALLOW; v <= v1::VERDICT_DENY; ++v) {
    const engine::Verdict verdict = static_cast<engine::Verdict>(v);
    if (const uint64_t n = counters_.decisions(verdict); n > 0) {
      (*stats.mutable_decisions())[std::string(engine::VerdictName(verdict))] = n;
    }
  }
  stats.set_shed_calls(counters_.shed_calls.load(std::memory_order_relaxed));
  for (const MetricSample& sample : Metrics()) {
    v1::Metric& m = *stats.add_metrics();
    m.set_name(sample.name);
    for (const auto& [label, value] : sample.labels) (*m.mutable_labels())[label] = value;
    m.set_value(sample.value);
  }
  return stats;
}

void Service::EnableShadow(std::shared_ptr<const engine::Matrix> candidate) {
  shadow_ = std::make_unique<LiveShadow>(decider_->matrix(), std::move(candidate),
                                         decider_->signals(), clock_);
}

absl::StatusOr<v1::ShadowReport> Service::GetShadowReport() const {
  if (shadow_ == nullptr) {
    return absl::FailedPreconditionError(
        "no shadow matrix: start agate-server with --shadow-matrix FILE to compare a candidate "
        "matrix with the live one (offline: agate shadow --live --candidate --requests)");
  }
  v1::GetStatsResponse stats;
  const std::shared_ptr<const engine::Matrix> matrix = decider_->matrix();
  cases().Stats(matrix.get(), cases::TenantScope::All(), &stats);
  cases().OwnerLoads(cases::TenantScope::All(), &stats);
  service::ShadowReport::Measured measured;
  // A lane's time per case: its triggers' median times to decision, weighted by the cases each
  // saw decided.
  absl::flat_hash_map<std::string, std::pair<double, double>> by_lane;  // seconds*n, n
  for (const v1::TriggerStats& t : stats.triggers()) {
    const double n = static_cast<double>(t.approved() + t.rejected() + t.resolved());
    if (!t.has_median_time_to_decision() || n == 0) continue;
    auto& [weighted, total] = by_lane[t.lane()];
    weighted += n * absl::ToDoubleSeconds(FromDurationProto(t.median_time_to_decision()));
    total += n;
  }
  for (const auto& [lane, sums] : by_lane) {
    measured.median_time_to_decision[lane] = absl::Seconds(sums.first / sums.second);
  }
  for (const v1::OwnerLoad& o : stats.owners()) {
    measured.backlog[o.owner()] += static_cast<int64_t>(o.open());
  }
  return shadow_->Report(measured);
}

}  // namespace agate::service
