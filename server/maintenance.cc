#include "server/maintenance.h"

#include <pthread.h>

#include <algorithm>
#include <optional>
#include <string>

#include "spdlog/spdlog.h"

namespace agate::server {

Maintenance::Maintenance(service::Service& service, const Clock& clock, MaintenanceOptions options)
    : service_(service),
      clock_(clock),
      options_(options),
      next_snapshot_(clock.Now() + options.snapshot_interval) {}

Maintenance::~Maintenance() { Stop(); }

absl::Duration Maintenance::RunOnce() {
  cases::CaseStore& cases = service_.cases();
  absl::Time now = clock_.Now();
  if (options_.refresh_interval > absl::ZeroDuration() && now >= next_refresh_) {
    next_refresh_ = now + options_.refresh_interval;
    if (absl::Status s = cases.Refresh(); !s.ok() && now >= next_refresh_error_log_) {
      spdlog::error("shared store: cannot read the other replicas' changes (retrying every {}): {}",
                    absl::FormatDuration(options_.refresh_interval), std::string(s.message()));
      next_refresh_error_log_ = now + options_.error_log_interval;
    }
  }
  cases.RunDueTimers();
  now = clock_.Now();
  if (cases.unsynced() > 0) {
    if (absl::Status s = cases.Sync(); !s.ok() && now >= next_error_log_) {
      spdlog::error("{} cases are not yet durable (retrying every second): {}", cases.unsynced(),
                    std::string(s.message()));
      next_error_log_ = now + options_.error_log_interval;
    }
  }
  if (now >= next_snapshot_) {
    next_snapshot_ = now + options_.snapshot_interval;
    if (absl::Status s = service_.SaveSignals(); !s.ok()) {
      spdlog::warn("count() windows snapshot: {}", std::string(s.message()));
    }
  }
  absl::Duration wait = options_.max_sleep;
  if (std::optional<absl::Time> next = cases.NextDeadline()) {
    // A deadline still due now is a timeout that could not run: retry it, not in a busy loop.
    wait = *next <= now ? options_.retry_wait
                        : std::clamp(*next - now, absl::Milliseconds(1), options_.max_sleep);
  }
  if (options_.refresh_interval > absl::ZeroDuration()) {
    wait = std::min(wait, std::max(next_refresh_ - now, absl::Milliseconds(1)));
  }
  return wait;
}

void Maintenance::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "agate-timers");
    while (!stop_.HasBeenNotified()) stop_.WaitForNotificationWithTimeout(RunOnce());
  });
}

void Maintenance::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void Maintenance::Finish() {
  if (absl::Status s = service_.SaveSignals(); !s.ok()) {
    spdlog::warn("count() windows snapshot: {}", std::string(s.message()));
  }
  cases::CaseStore& cases = service_.cases();
  if (cases.unsynced() > 0) {
    if (absl::Status s = cases.Sync(); !s.ok()) {
      spdlog::error("{} cases could not be made durable before exit: {}", cases.unsynced(),
                    std::string(s.message()));
    }
  }
}

}  // namespace agate::server
