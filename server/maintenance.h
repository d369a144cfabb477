// Maintenance: agate-server's housekeeping, on one thread.
//
// Each run does what is due at the clock's now: the SLA timeouts of every case whose deadline
// passed (those that passed while the server was down run at the first run, in order), a retry of
// the case changes the durable store could not commit (logged at most every 10 s while it keeps
// failing), every 5 s a snapshot of the count() windows and, with a shared store, every
// refresh_interval the other replicas' changes (CaseStore::Refresh). Between runs it sleeps until
// the next deadline, at most a second; a timeout that could not run (the shared store is
// unreachable) is retried every retry_wait.
//
// Thread-safe: Start runs RunOnce on its own thread until Stop; tests call RunOnce directly with
// a fake clock. Stop then Finish at shutdown: Finish saves the count() windows and commits what is
// still unsynced, logging what it could not.
//
// Example:
//   Maintenance maintenance(service, RealClock());
//   maintenance.Start();
//   ... serve ...
//   maintenance.Stop();
//   maintenance.Finish();
#ifndef AGATE_SERVER_MAINTENANCE_H_
#define AGATE_SERVER_MAINTENANCE_H_

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "service/service.h"

namespace agate::server {

struct MaintenanceOptions {
  absl::Duration snapshot_interval = absl::Seconds(5);
  absl::Duration max_sleep = absl::Seconds(1);
  absl::Duration error_log_interval = absl::Seconds(10);
  // CaseStore::Refresh this often (zero: never; a shared store's --postgres-poll).
  absl::Duration refresh_interval = absl::ZeroDuration();
  absl::Duration retry_wait = absl::Milliseconds(100);
};

class Maintenance {
 public:
  // service and clock must outlive the object.
  Maintenance(service::Service& service, const Clock& clock, MaintenanceOptions options = {});
  ~Maintenance();
  Maintenance(const Maintenance&) = delete;
  Maintenance& operator=(const Maintenance&) = delete;

  // RunOnce does what is due now and returns how long to sleep before the next run (at least a
  // millisecond, at most max_sleep).
  absl::Duration RunOnce();
  // Start runs RunOnce on a new thread ("agate-timers") until Stop. Call it at most once.
  void Start();
  // Stop ends the thread, if any, and waits for it.
  void Stop();
  // Finish saves the count() windows and commits the unsynced case changes (at shutdown).
  void Finish();

 private:
  service::Service& service_;
  const Clock& clock_;
  const MaintenanceOptions options_;
  absl::Time next_snapshot_;
  absl::Time next_error_log_ = absl::InfinitePast();
  absl::Time next_refresh_ = absl::InfinitePast();
  absl::Time next_refresh_error_log_ = absl::InfinitePast();
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace agate::server

#endif  // AGATE_SERVER_MAINTENANCE_H_
