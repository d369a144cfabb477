#include "server/watcher_quota.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace agate::server {

WatcherQuota::Slot& WatcherQuota::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    quota_ = std::exchange(other.quota_, nullptr);
    principal_ = std::move(other.principal_);
  }
  return *this;
}

void WatcherQuota::Slot::Release() {
  if (quota_ == nullptr) return;
  std::exchange(quota_, nullptr)->Release(principal_);
}

absl::StatusOr<WatcherQuota::Slot> WatcherQuota::Acquire(absl::string_view principal) {
  absl::MutexLock lock(&mu_);
  if (open_ >= options_.max_watchers) {
    return absl::ResourceExhaustedError(
        absl::StrCat("watchers: ", open_, " WatchCases streams are open (--max-watchers ",
                     options_.max_watchers, ")"));
  }
  if (!principal.empty()) {
    int64_t& mine = by_principal_[principal];
    if (mine >= options_.max_per_principal) {
      return absl::ResourceExhaustedError(
          absl::StrCat("watchers: principal ", absl::CHexEscape(principal.substr(0, 256)), " has ",
                       mine, " WatchCases streams open (--max-watchers-per-principal ",
                       options_.max_per_principal, ")"));
    }
    ++mine;
  }
  ++open_;
  return Slot(this, std::string(principal));
}

void WatcherQuota::Release(const std::string& principal) {
  absl::MutexLock lock(&mu_);
  --open_;
  if (principal.empty()) return;
  auto it = by_principal_.find(principal);
  if (it != by_principal_.end() && --it->second <= 0) by_principal_.erase(it);
}

int64_t WatcherQuota::open() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

}  // namespace agate::server
