#include "service/audit_log.h"

#include <string>

#include "store/decision_record.h"

namespace agate::service {

void AuditLog::Append(const std::string& body, bool sync) {
  if (log_ == nullptr) return;
  log_->Append(body, sync).IgnoreError();
}

void AuditLog::Transition(const v1::Case& c, const v1::Transition& transition) {
  std::string body;
  store::AppendCaseEventBody(c, transition, &body);
  Append(body, /*sync=*/true);
}

void AuditLog::KillSwitch(const v1::KillSwitch& change) {
  std::string body;
  store::AppendKillSwitchBody(change, &body);
  Append(body, /*sync=*/true);
}

void AuditLog::Refusal(absl::string_view method, const absl::Status& status,
                       const v1::Principal& principal) {
  refusals_.fetch_add(1, std::memory_order_relaxed);
  const absl::Time now = clock_.Now();
  const int64_t second = absl::ToUnixSeconds(now);
  int64_t window = window_second_.load(std::memory_order_relaxed);
  if (window != second && window_second_.compare_exchange_strong(window, second)) {
    window_count_.store(0, std::memory_order_relaxed);
  }
  if (window_count_.fetch_add(1, std::memory_order_relaxed) >= refusals_per_second_) {
    unaudited_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::string body;
  store::AppendRefusalBody(now, method, absl::StatusCodeToString(status.code()),
                           status.message().substr(0, 512), principal, &body);
  Append(body, /*sync=*/false);
}

}  // namespace agate::service
