// Watchers: the subscribers to case events (WatchCases streams, the webhook).
//
// Every transition of every case is one event. WatcherSet::Publish serializes it once (a
// CaseEvent: sequence, transition, the case after it) and hands the same bytes to every watcher
// whose filter matches; a watcher buffers them up to a count and a byte bound. A full buffer drops
// the newest event and counts it; the next event delivered carries the count in `dropped`
// (sequence numbers show the gap too), so a slow watcher loses events and never slows Evaluate.
//
// Thread-safe: WatcherSet is guarded by the case store's lock (thread-compatible on its own);
// CaseWatcher has its own lock, and Next may run on any thread while events are published.
//
// Example:
//   std::shared_ptr<CaseWatcher> w = store.Watch(filter, TenantScope::All(), [&] { wake(); });
//   WatchedEvent e;
//   while (w->Next(&e)) Write(e.Serialized());
#ifndef AGATE_CASES_WATCHERS_H_
#define AGATE_CASES_WATCHERS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agate/v1/agate.pb.h"
#include "cases/actor.h"

namespace agate::cases {

// The longest WatchCasesRequest.batch_window.
inline constexpr absl::Duration kMaxBatchWindow = absl::Seconds(10);

// CheckBatchWindow: INVALID_ARGUMENT naming batch_window when it is negative, malformed or over
// kMaxBatchWindow.
absl::Status CheckBatchWindow(const v1::WatchCasesRequest& filter);
// BatchWindow returns filter's batch_window (zero when unset); filter passed CheckBatchWindow.
absl::Duration BatchWindow(const v1::WatchCasesRequest& filter);
// CheckView: INVALID_ARGUMENT naming view when it is not a CaseView.
absl::Status CheckView(const v1::WatchCasesRequest& filter);
// Summary returns c as CASE_VIEW_SUMMARY shows it: without evidence, history and request ids.
v1::Case Summary(const v1::Case& c);

// Bounds of one watcher's buffer.
struct WatcherLimits {
  size_t max_events = 1024;
  size_t max_bytes = size_t{4} << 20;
};

// One buffered event: the serialized CaseEvent shared by every watcher that got it, and how many
// events this watcher lost just before it.
struct WatchedEvent {
  std::shared_ptr<const std::string> bytes;
  uint64_t dropped = 0;

  // Serialized returns the CaseEvent's bytes with `dropped` set (appended: a later occurrence of
  // a scalar field wins when protobuf parses it).
  std::string Serialized() const;
  // Parse returns the CaseEvent (for consumers that want the message, such as the webhook).
  v1::CaseEvent Parse() const;
};

// CaseWatcher receives the case events matching its filter (lane and tenant; empty matches
// every one) within the tenants its scope lets it see.
class CaseWatcher {
 public:
  CaseWatcher(v1::WatchCasesRequest filter, TenantScope scope, WatcherLimits limits,
              std::function<void()> notify);

  // Next pops the oldest buffered event into *event; false if there is none.
  bool Next(WatchedEvent* event);
  // NextMessage pops the oldest buffered event and, when batch, the ones after it while the
  // message stays within max_bytes (the first always goes), into *message: one serialized
  // CaseEvent whose `more` holds the later ones. Returns how many events it took (0: none was
  // buffered, *message untouched).
  size_t NextMessage(bool batch, size_t max_bytes, std::string* message);
  // empty tells whether no event is buffered.
  bool empty() const;
  // dropped_total returns how many events this watcher lost.
  uint64_t dropped_total() const;
  // Matches tells whether an event of case c is for this watcher.
  bool Matches(const v1::Case& c) const;
  // summary tells whether the watcher asked for CASE_VIEW_SUMMARY.
  bool summary() const { return filter_.view() == v1::CASE_VIEW_SUMMARY; }
  // local_only: the watcher takes this server's transitions only, not those absorbed from other
  // servers of a shared store (the webhook: each replica posts its own).
  bool local_only() const { return local_only_; }
  // Push buffers event's bytes (or drops them) and then, if the buffer was empty, calls notify,
  // outside the watcher's lock: a consumer drains the buffer after a notify, so a later event
  // finds it drained (and notifies) or being drained.
  void Push(std::shared_ptr<const std::string> bytes);

 private:
  friend class WatcherSet;
  const v1::WatchCasesRequest filter_;
  const TenantScope scope_;
  bool local_only_ = false;  // set by WatcherSet::Add before any event
  const WatcherLimits limits_;
  const std::function<void()> notify_;
  mutable absl::Mutex mu_;
  std::deque<WatchedEvent> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t pending_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_total_ ABSL_GUARDED_BY(mu_) = 0;
};

// WatcherSet: the subscriptions and the event sequence. Thread-compatible.
class WatcherSet {
 public:
  explicit WatcherSet(WatcherLimits limits = {}) : limits_(limits) {}

  std::shared_ptr<CaseWatcher> Add(const v1::WatchCasesRequest& filter, TenantScope scope,
                                   std::function<void()> notify, bool local_only = false);
  void Remove(const std::shared_ptr<CaseWatcher>& watcher);
  size_t size() const { return watchers_.size(); }

  // Publish gives the event (case c after transition) the next sequence number and hands it to
  // every matching watcher; each view is serialized once, and only if a matching watcher asked
  // for it.
  // remote: the transition was made by another server of a shared store (local_only watchers
  // skip it).
  void Publish(const v1::Case& c, const v1::Transition& transition, bool remote = false);

 private:
  const WatcherLimits limits_;
  uint64_t next_sequence_ = 1;
  std::vector<std::shared_ptr<CaseWatcher>> watchers_;
};

}  // namespace agate::cases

#endif  // AGATE_CASES_WATCHERS_H_
