#include "cases/watchers.h"

#include <algorithm>
#include <utility>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace agate::cases {

std::string WatchedEvent::Serialized() const {
  std::string out = *bytes;
  if (dropped > 0) {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.WriteTag(google::protobuf::internal::WireFormatLite::MakeTag(
        v1::CaseEvent::kDroppedFieldNumber,
        google::protobuf::internal::WireFormatLite::WIRETYPE_VARINT));
    coded.WriteVarint64(dropped);
  }
  return out;
}

v1::CaseEvent WatchedEvent::Parse() const {
  v1::CaseEvent event;
  event.ParseFromString(*bytes);
  event.set_dropped(dropped);
  return event;
}

CaseWatcher::CaseWatcher(v1::WatchCasesRequest filter, TenantScope scope, WatcherLimits limits,
                         std::function<void()> notify)
    : filter_(std::move(filter)),
      scope_(std::move(scope)),
      limits_(limits),
      notify_(std::move(notify)) {}

bool CaseWatcher::Matches(const v1::Case& c) const {
  return scope_.Contains(c.tenant_id()) && (filter_.lane().empty() || filter_.lane() == c.lane()) &&
         (filter_.tenant_id().empty() || filter_.tenant_id() == c.tenant_id());
}

void CaseWatcher::Push(std::shared_ptr<const std::string> bytes) {
  {
    absl::MutexLock lock(&mu_);
    // The first event always fits, whatever its size: a watcher is never starved by one big case.
    if (!queue_.empty() && (queue_.size() >= std::max<size_t>(1, limits_.max_events) ||
                            queued_bytes_ + bytes->size() > limits_.max_bytes)) {
      ++pending_dropped_;
      ++dropped_total_;
      return;
    }
    queued_bytes_ += bytes->size();
    queue_.push_back(WatchedEvent{std::move(bytes), pending_dropped_});
    pending_dropped_ = 0;
  }
  if (notify_) notify_();
}

bool CaseWatcher::Next(WatchedEvent* event) {
  absl::MutexLock lock(&mu_);
  if (queue_.empty()) return false;
  *event = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= event->bytes->size();
  return true;
}

uint64_t CaseWatcher::dropped_total() const {
  absl::MutexLock lock(&mu_);
  return dropped_total_;
}

std::shared_ptr<CaseWatcher> WatcherSet::Add(const v1::WatchCasesRequest& filter, TenantScope scope,
                                             std::function<void()> notify) {
  auto watcher =
      std::make_shared<CaseWatcher>(filter, std::move(scope), limits_, std::move(notify));
  watchers_.push_back(watcher);
  return watcher;
}

void WatcherSet::Remove(const std::shared_ptr<CaseWatcher>& watcher) {
  watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), watcher), watchers_.end());
}

void WatcherSet::Publish(const v1::Case& c, const v1::Transition& transition) {
  const uint64_t sequence = next_sequence_++;
  std::shared_ptr<const std::string> bytes;
  for (const std::shared_ptr<CaseWatcher>& w : watchers_) {
    if (!w->Matches(c)) continue;
    if (bytes == nullptr) {
      v1::CaseEvent event;
      event.set_sequence(sequence);
      *event.mutable_transition() = transition;
      *event.mutable_case_() = c;
      bytes = std::make_shared<const std::string>(event.SerializeAsString());
    }
    w->Push(bytes);
  }
}

}  // namespace agate::cases
