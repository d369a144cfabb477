#include "server/api.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/verdict.h"
#include "server/logging.h"
#include "spdlog/spdlog.h"

namespace agate::server {
namespace {

// LogDue tells whether a rate-limited warning may be logged now (one per 10 s at most: logging
// every refusal would add to an overload), and takes that turn.
bool LogDue(std::atomic<int64_t>& next_log_ns) {
  const int64_t now = absl::GetCurrentTimeNanos();
  int64_t next = next_log_ns.load(std::memory_order_relaxed);
  return now >= next && next_log_ns.compare_exchange_strong(next, now + 10'000'000'000);
}

}  // namespace

absl::Status Admit(int64_t others_in_flight, int64_t max_in_flight,
                   std::chrono::system_clock::time_point deadline,
                   std::chrono::system_clock::time_point now) {
  if (max_in_flight > 0 && others_in_flight >= max_in_flight) {
    return absl::ResourceExhaustedError(absl::StrCat("server overloaded: ", others_in_flight,
                                                     " calls in flight (--max-in-flight ",
                                                     max_in_flight, ")"));
  }
  if (deadline <= now) {
    return absl::DeadlineExceededError("the call's deadline passed before it was evaluated");
  }
  return absl::OkStatus();
}

absl::Status Api::EnterEvaluate(std::chrono::system_clock::time_point deadline) {
  const int64_t others = in_flight_.fetch_add(1, std::memory_order_relaxed);
  absl::Status status =
      Admit(others, options_.max_in_flight, deadline, std::chrono::system_clock::now());
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    const uint64_t shed =
        service_.counters().shed_calls.fetch_add(1, std::memory_order_relaxed) + 1;
    if (LogDue(next_shed_log_ns_)) {
      spdlog::warn("overloaded: {} Evaluate calls shed since the start (--max-in-flight {})", shed,
                   options_.max_in_flight);
    }
  }
  return status;
}

absl::Status Api::Audited(absl::string_view method, absl::Status status,
                          const v1::Principal& principal) {
  if (status.code() == absl::StatusCode::kPermissionDenied ||
      status.code() == absl::StatusCode::kUnauthenticated) {
    service_.audit().Refusal(method, status, principal);
  }
  return status;
}

absl::StatusOr<Caller> Api::Authenticated(absl::string_view method, absl::StatusOr<Caller> caller,
                                          absl::string_view peer) {
  if (!caller.ok()) {
    v1::Principal unknown;
    unknown.set_subject(std::string(peer.substr(0, 256)));
    return Audited(method, caller.status(), unknown);
  }
  return caller;
}

Api::Permissions Api::WhoAmI(const Caller& caller) const {
  Permissions permissions;
  permissions.principal = caller.principal();
  permissions.development = caller.development();
  permissions.admin = identity_.MayAdminister(caller).ok();
  // Agents never acknowledge (CaseStore::Authorize), whatever groups their token names.
  if (caller.development() || caller.principal().kind() == v1::PRINCIPAL_KIND_AGENT) {
    return permissions;
  }
  absl::StatusOr<cases::Actor> actor = identity_.Approver(caller, "", v1::AcknowledgeRequest());
  if (!actor.ok()) return permissions;  // unreachable: no claim to contradict the caller
  permissions.groups.assign(actor->groups.begin(), actor->groups.end());
  std::sort(permissions.groups.begin(), permissions.groups.end());
  return permissions;
}

absl::Status Api::Evaluate(const Caller& caller, const v1::EvaluateRequest& request,
                           v1::EvaluateResponse* response, std::string* response_bytes,
                           const service::WireRequest* wire) {
  absl::Status status =
      Audited("Evaluate", identity_.MayEvaluate(caller, request), caller.principal());
  if (!status.ok()) return status;
  status = service_.Evaluate(request, response, response_bytes,
                             caller.development() ? "" : caller.principal().subject(), wire);
  if (spdlog::should_log(spdlog::level::debug)) {
    const LogContext context(caller.principal().subject(), response->case_id());
    // Ids are the caller's bytes: escaped, so that they cannot forge log lines.
    const bool bytes_only = response_bytes != nullptr && !response_bytes->empty() &&
                            response->verdict() == v1::VERDICT_UNSPECIFIED;
    spdlog::debug("evaluate request_id={} tenant_id={} principal={} -> {} {} {}",
                  absl::CHexEscape(request.request_id()), absl::CHexEscape(request.tenant_id()),
                  absl::CHexEscape(caller.principal().subject()),
                  status.ok() ? "OK" : status.ToString(),
                  bytes_only ? std::string("(answered with stored bytes)")
                             : std::string(engine::VerdictName(response->verdict())),
                  response->case_id());
  }
  return status;
}

absl::StatusOr<v1::AcknowledgeResponse> Api::Acknowledge(const Caller& caller,
                                                         absl::string_view claimed_approver,
                                                         const v1::AcknowledgeRequest& request) {
  constexpr absl::string_view kMethod = "Acknowledge";
  absl::StatusOr<cases::Actor> actor = identity_.Approver(caller, claimed_approver, request);
  if (!actor.ok()) return Audited(kMethod, actor.status(), caller.principal());
  const std::string who = actor->principal.subject();
  absl::StatusOr<v1::Case> c = service_.Acknowledge({.case_id = request.case_id(),
                                                     .decision = request.decision(),
                                                     .actor = *std::move(actor),
                                                     .comment = request.comment()});
  if (!c.ok()) return Audited(kMethod, c.status(), caller.principal());
  const LogContext context(who, c->id());
  spdlog::info("case {} {} by {}", c->id(), c->history().rbegin()->event(), absl::CHexEscape(who));
  v1::AcknowledgeResponse answer;
  *answer.mutable_case_() = *std::move(c);
  return answer;
}

absl::StatusOr<v1::GetCaseResponse> Api::GetCase(const Caller& caller,
                                                 const v1::GetCaseRequest& request) const {
  absl::StatusOr<v1::Case> c = service_.GetCase(request, identity_.Sees(caller));
  if (!c.ok()) return c.status();
  v1::GetCaseResponse answer;
  *answer.mutable_case_() = *std::move(c);
  return answer;
}

absl::StatusOr<v1::ListCasesResponse> Api::ListCases(const Caller& caller,
                                                     const v1::ListCasesRequest& request) const {
  return service_.ListCases(request, identity_.Sees(caller));
}

v1::GetStatsResponse Api::GetStats(const Caller& caller) const {
  return service_.Stats(identity_.Sees(caller));
}

absl::StatusOr<v1::KillSwitch> Api::SetKillSwitch(const Caller& caller,
                                                  const v1::SetKillSwitchRequest& request) {
  if (absl::Status s = identity_.MayAdminister(caller); !s.ok()) {
    return Audited("SetKillSwitch", s, caller.principal());
  }
  absl::StatusOr<v1::KillSwitch> k = service_.SetKillSwitch(request, caller.principal());
  if (k.ok()) {
    spdlog::warn("kill switch {} on {} {} {} by {}: {}", k->engaged() ? "engaged" : "lifted",
                 v1::KillScope_Name(k->scope()), absl::CHexEscape(k->tenant_id()),
                 absl::CHexEscape(k->value()), absl::CHexEscape(k->set_by().subject()),
                 absl::CHexEscape(k->reason()));
  }
  return k;
}

v1::ListKillSwitchesResponse Api::ListKillSwitches(const Caller& caller) const {
  return service_.KillSwitches(identity_.Sees(caller));
}

absl::StatusOr<v1::ShadowReport> Api::GetShadowReport(const Caller& caller) {
  if (!identity_.Sees(caller).all()) {
    return Audited("GetShadowReport",
                   absl::PermissionDeniedError(absl::StrCat(
                       caller.principal().subject(),
                       " is not an admin: the shadow report covers every tenant; admins only")),
                   caller.principal());
  }
  return service_.GetShadowReport();
}

absl::StatusOr<WatcherQuota::Slot> Api::OpenWatch(const Caller& caller,
                                                  const v1::WatchCasesRequest& request) {
  if (absl::Status s = cases::CaseStore::CheckWatchFilter(request); !s.ok()) return s;
  // Development mode has one unverified principal for every caller: the global bound only.
  absl::StatusOr<WatcherQuota::Slot> slot =
      watchers_.Acquire(caller.development() ? "" : caller.principal().subject());
  if (!slot.ok()) {
    const uint64_t refused =
        service_.counters().watchers_refused.fetch_add(1, std::memory_order_relaxed) + 1;
    if (LogDue(next_watcher_log_ns_)) {
      spdlog::warn("{}; {} WatchCases streams refused since the start",
                   std::string(slot.status().message()), refused);
    }
  }
  return slot;
}

}  // namespace agate::server
