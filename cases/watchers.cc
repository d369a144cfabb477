#include "cases/watchers.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace agate::cases {

namespace {

using google::protobuf::internal::WireFormatLite;

// AppendEvent appends event's bytes to *out, with `dropped` after them when it is set.
void AppendEvent(const WatchedEvent& event, std::string* out) {
  out->append(*event.bytes);
  if (event.dropped == 0) return;
  google::protobuf::io::StringOutputStream stream(out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.WriteTag(
      WireFormatLite::MakeTag(v1::CaseEvent::kDroppedFieldNumber, WireFormatLite::WIRETYPE_VARINT));
  coded.WriteVarint64(event.dropped);
}

// DroppedSize is how many bytes AppendEvent adds after the event's own.
size_t DroppedSize(const WatchedEvent& event) {
  return event.dropped == 0
             ? 0
             : 1 + google::protobuf::io::CodedOutputStream::VarintSize64(event.dropped);
}

}  // namespace

absl::Status CheckBatchWindow(const v1::WatchCasesRequest& filter) {
  const google::protobuf::Duration& w = filter.batch_window();
  if (w.seconds() < 0 || w.nanos() < 0 || w.nanos() > 999'999'999 ||
      BatchWindow(filter) > kMaxBatchWindow) {
    return absl::InvalidArgumentError(absl::StrCat("batch_window: must be between 0 and ",
                                                   absl::FormatDuration(kMaxBatchWindow)));
  }
  return absl::OkStatus();
}

absl::Duration BatchWindow(const v1::WatchCasesRequest& filter) {
  return absl::Seconds(filter.batch_window().seconds()) +
         absl::Nanoseconds(filter.batch_window().nanos());
}

absl::Status CheckView(const v1::WatchCasesRequest& filter) {
  if (!v1::CaseView_IsValid(filter.view())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "view: ", filter.view(), " is not a CaseView (CASE_VIEW_FULL or CASE_VIEW_SUMMARY)"));
  }
  return absl::OkStatus();
}

v1::Case Summary(const v1::Case& c) {
  v1::Case summary = c;
  summary.clear_evidence();
  summary.clear_history();
  summary.clear_request_ids();
  return summary;
}

std::string WatchedEvent::Serialized() const {
  std::string out;
  out.reserve(bytes->size() + DroppedSize(*this));
  AppendEvent(*this, &out);
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
  bool was_empty;
  {
    absl::MutexLock lock(&mu_);
    // The first event always fits, whatever its size: a watcher is never starved by one big case.
    if (!queue_.empty() && (queue_.size() >= std::max<size_t>(1, limits_.max_events) ||
                            queued_bytes_ + bytes->size() > limits_.max_bytes)) {
      ++pending_dropped_;
      ++dropped_total_;
      return;
    }
    was_empty = queue_.empty();
    queued_bytes_ += bytes->size();
    queue_.push_back(WatchedEvent{std::move(bytes), pending_dropped_});
    pending_dropped_ = 0;
  }
  if (was_empty && notify_) notify_();
}

size_t CaseWatcher::NextMessage(bool batch, size_t max_bytes, std::string* message) {
  absl::MutexLock lock(&mu_);
  if (queue_.empty()) return 0;
  // The later events' sizes, each as a `more` field: tag, length, the event.
  size_t size = queue_.front().bytes->size() + DroppedSize(queue_.front());
  size_t n = 1;
  for (; batch && n < queue_.size(); ++n) {
    const size_t event = queue_[n].bytes->size() + DroppedSize(queue_[n]);
    const size_t field = 1 + google::protobuf::io::CodedOutputStream::VarintSize64(event) + event;
    if (size + field > max_bytes) break;
    size += field;
  }
  message->clear();
  message->reserve(size);
  AppendEvent(queue_.front(), message);
  for (size_t i = 1; i < n; ++i) {
    const size_t event = queue_[i].bytes->size() + DroppedSize(queue_[i]);
    {
      google::protobuf::io::StringOutputStream stream(message);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.WriteTag(WireFormatLite::MakeTag(v1::CaseEvent::kMoreFieldNumber,
                                             WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
      coded.WriteVarint64(event);
    }
    AppendEvent(queue_[i], message);
  }
  for (size_t i = 0; i < n; ++i) {
    queued_bytes_ -= queue_.front().bytes->size();
    queue_.pop_front();
  }
  return n;
}

bool CaseWatcher::empty() const {
  absl::MutexLock lock(&mu_);
  return queue_.empty();
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
                                             std::function<void()> notify, bool local_only) {
  auto watcher =
      std::make_shared<CaseWatcher>(filter, std::move(scope), limits_, std::move(notify));
  watcher->local_only_ = local_only;
  watchers_.push_back(watcher);
  return watcher;
}

void WatcherSet::Remove(const std::shared_ptr<CaseWatcher>& watcher) {
  watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), watcher), watchers_.end());
}

void WatcherSet::Publish(const v1::Case& c, const v1::Transition& transition, bool remote) {
  const uint64_t sequence = next_sequence_++;
  auto serialize = [&](const v1::Case& shown) {
    v1::CaseEvent event;
    event.set_sequence(sequence);
    *event.mutable_transition() = transition;
    *event.mutable_case_() = shown;
    return std::make_shared<const std::string>(event.SerializeAsString());
  };
  std::shared_ptr<const std::string> full;
  std::shared_ptr<const std::string> summary;
  for (const std::shared_ptr<CaseWatcher>& w : watchers_) {
    if (!w->Matches(c) || (remote && w->local_only())) continue;
    if (w->summary()) {
      if (summary == nullptr) summary = serialize(Summary(c));
      w->Push(summary);
    } else {
      if (full == nullptr) full = serialize(c);
      w->Push(full);
    }
  }
}

}  // namespace agate::cases
