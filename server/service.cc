#include "server/service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "engine/decision_codec.h"
#include "engine/status_macros.h"
#include "store/decision_record.h"

namespace agate::server {

Service::Service(std::shared_ptr<const engine::Matrix> matrix, const engine::Clock& clock,
                 ServiceOptions options)
    : options_(options),
      clock_(clock),
      counter_(clock, options.signals),
      evaluator_(std::move(matrix), clock, &counter_),
      cases_(clock, options.cases, options.store),
      idempotency_(clock, options.idempotency) {}

absl::StatusOr<Recovery> Service::Recover() {
  Recovery recovery;
  if (options_.store == nullptr) return recovery;
  ASSIGN_OR_RETURN(engine::JournalContents contents, options_.store->LoadCases());
  recovery.cases = contents.cases.size();
  RETURN_IF_ERROR(cases_.Restore(contents));
  recovery.open_cases = cases_.open_cases();
  const absl::Time since = clock_.Now() - options_.idempotency.window;
  ASSIGN_OR_RETURN(std::vector<engine::DecisionRow> rows,
                   options_.store->LoadDecisions(since, options_.idempotency.max_entries));
  // The rows the store kept (decisions that changed a case, committed with it) come first: for
  // a key in both, theirs is the complete answer.
  for (engine::DecisionRow& row : rows) {
    idempotency_.Insert(std::move(row.key), std::move(row.digest), std::move(row.response),
                        row.decided_at);
  }
  recovery.decisions = rows.size();
  // ALLOW decisions are written once, to the decision log: their answers are rebuilt from it.
  if (options_.decision_log != nullptr) {
    std::vector<store::RecordedAllow> allows;
    size_t seen = 0;
    RETURN_IF_ERROR(
        store::ReadRecentRecords(options_.decision_log->dir(), [&](absl::string_view line) {
          std::optional<store::RecordedAllow> allow = store::ParseAllowRecord(line);
          if (allow.has_value()) {
            if (allow->decided_at < since) return false;
            allows.push_back(*std::move(allow));
          }
          return ++seen < options_.idempotency.max_entries;
        }));
    for (auto a = allows.rbegin(); a != allows.rend(); ++a) {
      if (idempotency_.Insert(std::move(a->key), std::move(a->digest),
                              a->response.SerializeAsString(), a->decided_at)) {
        ++recovery.decisions;
      }
    }
  }
  ASSIGN_OR_RETURN(std::vector<store::v1::StoredSignalSeries> series,
                   options_.store->LoadSignals());
  counter_.Import(series);
  recovery.signal_keys = counter_.keys();
  return recovery;
}

absl::Status Service::SaveSignals() {
  if (options_.store == nullptr) return absl::OkStatus();
  return options_.store->SaveSignals(counter_.Export());
}

absl::Status Service::Evaluate(const v1::EvaluateRequest& request, v1::EvaluateResponse* response,
                               std::string* response_bytes) {
  if (response_bytes != nullptr) response_bytes->clear();
  RETURN_IF_ERROR(engine::ValidateRequest(request, options_.limits));
  if (!options_.idempotency.enabled && options_.decision_log == nullptr &&
      options_.store == nullptr) {
    counter_.Record(request);
    const engine::Decision decision = evaluator_.Evaluate(request);
    engine::EncodeDecision(decision, response);
    return cases_.Apply(request, decision, response);
  }
  std::string key = engine::IdempotencyKey(request);
  std::string digest = engine::RequestDigest(request);
  absl::Time first_decided;
  switch (options_.idempotency.enabled ? idempotency_.Find(key, digest, response, &first_decided)
                                       : engine::IdempotencyCache::kMiss) {
    case engine::IdempotencyCache::kHit:
      response->set_replayed(true);
      return absl::OkStatus();
    case engine::IdempotencyCache::kConflict:
      return absl::AlreadyExistsError(absl::StrCat(
          "request_id: ", request.request_id(), " of tenant ", request.tenant_id(),
          " was already decided at ", absl::FormatTime(first_decided, absl::UTCTimeZone()),
          " for a request with other contents; use a new request_id for a new request"));
    case engine::IdempotencyCache::kMiss:
      break;
  }

  counter_.Record(request);
  const engine::Decision decision = evaluator_.Evaluate(request);
  engine::EncodeDecision(decision, response);
  // The row owns the key and digest from here on (the cache and the log read them from it).
  engine::DecisionRow row{.key = std::move(key),
                          .digest = std::move(digest),
                          .response = {},
                          .decided_at = decision.decided_at};
  RETURN_IF_ERROR(cases_.Apply(request, decision, response, &row));
  const bool serialized_here = !row.committed;
  if (serialized_here) row.response = response->SerializeAsString();
  if (options_.idempotency.enabled &&
      !idempotency_.Insert(row.key, row.digest, row.response, decision.decided_at, response)) {
    // The same request raced with itself: the first answer stands (its case was joined, not
    // duplicated).
    response->set_replayed(true);
    return absl::OkStatus();
  }
  // A decision that changed a case was committed with it. An ALLOW is kept by the decision log
  // alone (Recover rebuilds its answer from the record); anything else (a verdict a scope in
  // force imposed, which changes no case) goes to the store in the background.
  const bool enqueue =
      options_.store != nullptr && !row.committed &&
      (response->verdict() != v1::VERDICT_ALLOW || options_.decision_log == nullptr);
  if (response_bytes != nullptr && serialized_here) {
    *response_bytes = enqueue ? row.response : std::move(row.response);
  }
  if (options_.decision_log != nullptr) {
    // An escalation is written before the answer (its case is durable already); ALLOW is queued.
    // A failing log never fails a decision: DecisionLog counts, logs and retries. The body is
    // built in a per-thread buffer: no allocation per decision once it has grown.
    thread_local std::string body;
    body.clear();
    char hex[2 * 32];
    store::AppendDecisionRecordBody(request, *response, DigestHex(row.digest, hex),
                                    decision.decided_at, &body);
    options_.decision_log->Append(body, /*sync=*/response->verdict() != v1::VERDICT_ALLOW)
        .IgnoreError();
  }
  if (enqueue) options_.store->EnqueueDecision(std::move(row));
  return absl::OkStatus();
}

}  // namespace agate::server
