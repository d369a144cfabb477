#include "server/event_history.h"

#include <utility>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace agate::server {

EventHistory::EventHistory(cases::CaseStore& store, size_t capacity)
    : store_(store), capacity_(capacity) {
  // The store calls Drain under its lock as it publishes (cases/watchers.h): the lock order is
  // the store's, then mu_, then the watcher's own.
  std::shared_ptr<cases::CaseWatcher> watcher =
      store_.Watch(v1::WatchCasesRequest(), cases::TenantScope::All(), [this] { Drain(); });
  {
    absl::MutexLock lock(&mu_);
    watcher_ = std::move(watcher);
  }
  Drain();
}

EventHistory::~EventHistory() {
  std::shared_ptr<cases::CaseWatcher> watcher;
  {
    absl::MutexLock lock(&mu_);
    watcher = watcher_;
  }
  store_.Unwatch(watcher);
}

void EventHistory::Drain() {
  absl::MutexLock lock(&mu_);
  if (watcher_ == nullptr) return;  // still subscribing: the constructor drains
  cases::WatchedEvent event;
  while (watcher_->Next(&event)) {
    events_.push_back({SequenceOf(*event.bytes), std::move(event.bytes)});
    if (events_.size() > capacity_) events_.pop_front();
  }
}

std::vector<EventHistory::Event> EventHistory::After(uint64_t sequence) const {
  absl::MutexLock lock(&mu_);
  std::vector<Event> out;
  for (const Event& e : events_) {
    if (e.sequence > sequence) out.push_back(e);
  }
  return out;
}

uint64_t EventHistory::SequenceOf(const std::string& bytes) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  uint64_t sequence = 0;
  if (in.ReadTag() != WireFormatLite::MakeTag(v1::CaseEvent::kSequenceFieldNumber,
                                              WireFormatLite::WIRETYPE_VARINT) ||
      !in.ReadVarint64(&sequence)) {
    return 0;
  }
  return sequence;
}

}  // namespace agate::server
