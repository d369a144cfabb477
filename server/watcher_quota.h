// WatcherQuota: how many WatchCases streams may be open at once, in all (--max-watchers) and per
// verified principal (--max-watchers-per-principal).
//
// Every open stream costs the server its reactor, its HTTP/2 stream and a buffer of events (up to
// cases::WatcherLimits), and every case event is handed to every matching watcher under the case
// store's lock: an unbounded number of watchers makes every escalation slower for everyone. A
// stream takes a Slot when it starts and gives it back when the Slot is destroyed (the reactor's
// OnDone: whichever way the stream ended). Past either bound Acquire refuses with
// RESOURCE_EXHAUSTED naming the bound and its flag.
//
// The per-principal bound applies to verified principals only: in development mode every caller
// is the same "(unverified)" principal, so that bound would be a second, smaller global one.
//
// Thread-safe.
//
// Example:
//   WatcherQuota quota({.max_watchers = 1000, .max_per_principal = 100});
//   ASSIGN_OR_RETURN(WatcherQuota::Slot slot, quota.Acquire("spiffe://acme/agent"));
//   ... stream; the slot is released when `slot` is destroyed ...
#ifndef AGATE_SERVER_WATCHER_QUOTA_H_
#define AGATE_SERVER_WATCHER_QUOTA_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace agate::server {

class WatcherQuota {
 public:
  struct Options {
    int64_t max_watchers = 1000;      // streams open at once in all
    int64_t max_per_principal = 100;  // streams one verified principal may hold
  };

  // Slot: one open stream's place; releases it when destroyed. Move-only.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept { *this = std::move(other); }
    Slot& operator=(Slot&& other) noexcept;
    ~Slot() { Release(); }

   private:
    friend class WatcherQuota;
    Slot(WatcherQuota* quota, std::string principal)
        : quota_(quota), principal_(std::move(principal)) {}
    void Release();

    WatcherQuota* quota_ = nullptr;  // null: nothing to release
    std::string principal_;          // "": not counted per principal
  };

  explicit WatcherQuota(Options options) : options_(options) {}
  WatcherQuota(const WatcherQuota&) = delete;
  WatcherQuota& operator=(const WatcherQuota&) = delete;

  // Acquire takes a slot for a stream of principal ("": counted in all only, as in development
  // mode), or returns RESOURCE_EXHAUSTED: "watchers: 1000 WatchCases streams are open
  // (--max-watchers)", "watchers: principal P has 100 WatchCases streams open
  // (--max-watchers-per-principal)". The quota must outlive its slots.
  absl::StatusOr<Slot> Acquire(absl::string_view principal) ABSL_LOCKS_EXCLUDED(mu_);

  // open returns the streams holding a slot now.
  int64_t open() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Release(const std::string& principal) ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  int64_t open_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int64_t> by_principal_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agate::server

#endif  // AGATE_SERVER_WATCHER_QUOTA_H_
