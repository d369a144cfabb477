#include "server/watch_reactor.h"

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/alarm.h"

namespace agate::server {
namespace {

// The largest message a batch makes (gRPC clients accept 4 MiB by default); a single event
// larger than this still goes, alone.
constexpr size_t kMaxBatchBytes = size_t{1} << 20;

// ToByteBuffer moves bytes into a ByteBuffer without copying them.
grpc::ByteBuffer ToByteBuffer(std::string bytes) {
  auto* owned = new std::string(std::move(bytes));
  grpc::Slice slice(
      owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
  return grpc::ByteBuffer(&slice, 1);
}

class WatchReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  WatchReactor(cases::CaseStore& store, const v1::WatchCasesRequest& request,
               cases::TenantScope scope, WatcherQuota::Slot slot)
      : store_(store), slot_(std::move(slot)), window_(cases::BatchWindow(request)) {
    std::shared_ptr<cases::CaseWatcher> watcher =
        store_.Watch(request, std::move(scope), [this] { MaybeWrite(); });
    {
      absl::MutexLock lock(&mu_);
      watcher_ = std::move(watcher);
    }
    constructed_.store(true, std::memory_order_release);
    MaybeWrite();
  }

  void OnWriteDone(bool ok) override {
    Received();
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
    }
    if (!ok) {
      // The client went away: nothing more can be written.
      FinishOnce(grpc::Status::OK);
      return;
    }
    MaybeWrite();
  }

  void OnCancel() override {
    Received();
    FinishOnce(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    Received();
    // After Unwatch returns the store calls MaybeWrite no more (it notifies under its lock).
    store_.Unwatch(watcher_);
    {
      // A pending alarm fires now (not ok) and drops its reference.
      absl::MutexLock lock(&mu_);
      if (alarm_ != nullptr) alarm_->Cancel();
    }
    // The slot goes back now: a late alarm callback may run after the server (and its quota)
    // is gone, and must touch nothing but the reactor.
    slot_ = WatcherQuota::Slot();
    Unref();  // the last reference deletes the reactor
  }

 private:
  // MaybeWrite starts the next write if none is in flight: the oldest buffered event, or with a
  // batch window every buffered event (up to kMaxBatchBytes), and not before the window since the
  // previous write has passed (an alarm calls it again then). Reactions may run inline:
  // StartWrite and Finish are called without holding mu_.
  void MaybeWrite() {
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_ || waiting_ || watcher_ == nullptr) return;
      const absl::Time now = absl::Now();
      if (window_ > absl::ZeroDuration() && now < NextSlot()) {
        if (watcher_->empty()) return;
        waiting_ = true;
        refs_.fetch_add(1, std::memory_order_relaxed);
        // A new alarm each time: the previous one may still be running its callback (gRPC keeps
        // an alarm alive while its callback runs, so destroying it here is safe).
        alarm_ = std::make_unique<grpc::Alarm>();
        alarm_->Set(absl::ToChronoTime(NextSlot()), [this](bool) { OnAlarm(); });
        return;
      }
      std::string message;
      if (watcher_->NextMessage(window_ > absl::ZeroDuration(), kMaxBatchBytes, &message) == 0) {
        return;
      }
      event_ = ToByteBuffer(std::move(message));
      last_write_ = now;
      writing_ = true;
    }
    // event_ is not touched again until OnWriteDone clears writing_.
    StartWrite(&event_);
  }

  // NextSlot is when the next message may go: the start of the window after the one of the
  // previous write, windows counted from the Unix epoch. Every stream with the same window writes
  // at the same instants, so the writes of streams that share a connection go out together.
  absl::Time NextSlot() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (last_write_ == absl::InfinitePast()) return absl::InfinitePast();
    return absl::UnixEpoch() + (absl::Floor(last_write_ - absl::UnixEpoch(), window_) + window_);
  }

  void OnAlarm() {
    Received();
    {
      absl::MutexLock lock(&mu_);
      waiting_ = false;
    }
    MaybeWrite();  // nothing once the stream finished
    Unref();
  }

  void FinishOnce(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(std::move(status));
  }

  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Received makes visible to ThreadSanitizer what gRPC guarantees: a reaction runs on one of
  // gRPC's threads after the constructor (the writes before its release store, mu_'s
  // initialization among them, happen before). gRPC hands the reactor over inside libgrpc, which
  // Debian does not instrument; without this edge the tsan build reports a race on mu_ itself.
  // On x86 an acquire load is a plain load.
  void Received() const { (void)constructed_.load(std::memory_order_acquire); }

  cases::CaseStore& store_;
  WatcherQuota::Slot slot_;  // released in OnDone
  const absl::Duration window_;
  std::atomic<bool> constructed_{false};
  // One reference for gRPC (dropped in OnDone), one per pending alarm callback.
  std::atomic<int> refs_{1};
  absl::Mutex mu_;
  std::shared_ptr<cases::CaseWatcher> watcher_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<grpc::Alarm> alarm_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer event_;  // the message being written
  absl::Time last_write_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;  // for the alarm
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* NewWatchReactor(cases::CaseStore& store,
                                                            const v1::WatchCasesRequest& request,
                                                            cases::TenantScope scope,
                                                            WatcherQuota::Slot slot) {
  return new WatchReactor(store, request, std::move(scope), std::move(slot));
}

}  // namespace agate::server
