// EventHistory: the newest case events, kept so that a watch stream that reconnects can resume
// after the last event it saw (the HTTP API's Last-Event-ID) instead of losing what happened
// while it was away.
//
// It subscribes one watcher to every event of the case store and keeps the newest `capacity`
// events' bytes (shared with the watchers that got them) with their sequence numbers. The store
// hands it each event as it publishes it, under the store's lock: keeping one is a deque append.
// An event older than the newest `capacity` is gone; a stream resuming past it sees a gap in
// the sequence numbers.
//
// Thread-safe. The store must outlive it.
//
// Example:
//   EventHistory history(service.cases(), 1024);
//   std::shared_ptr<cases::CaseWatcher> live = store.Watch(filter, scope, notify);
//   for (const EventHistory::Event& e : history.After(last_event_id)) { ... }
#ifndef AGATE_SERVER_EVENT_HISTORY_H_
#define AGATE_SERVER_EVENT_HISTORY_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cases/case_store.h"

namespace agate::server {

class EventHistory {
 public:
  struct Event {
    uint64_t sequence = 0;
    std::shared_ptr<const std::string> bytes;  // a serialized v1::CaseEvent
  };

  EventHistory(cases::CaseStore& store, size_t capacity);
  ~EventHistory();
  EventHistory(const EventHistory&) = delete;
  EventHistory& operator=(const EventHistory&) = delete;

  // After returns the kept events whose sequence is greater than sequence, oldest first. A
  // stream subscribes before it calls After, so that no event falls between the two (it then
  // skips the live events it got here too).
  std::vector<Event> After(uint64_t sequence) const ABSL_LOCKS_EXCLUDED(mu_);

  // SequenceOf reads a serialized CaseEvent's sequence number without parsing the event (0 if
  // the bytes do not start with it).
  static uint64_t SequenceOf(const std::string& bytes);

 private:
  void Drain() ABSL_LOCKS_EXCLUDED(mu_);

  cases::CaseStore& store_;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::shared_ptr<cases::CaseWatcher> watcher_ ABSL_GUARDED_BY(mu_);
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agate::server

#endif  // AGATE_SERVER_EVENT_HISTORY_H_
