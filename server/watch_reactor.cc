#include "server/watch_reactor.h"

#include <atomic>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace agate::server {
namespace {

class WatchReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  WatchReactor(cases::CaseStore& store, const v1::WatchCasesRequest& request,
               cases::TenantScope scope, WatcherQuota::Slot slot)
      : store_(store), slot_(std::move(slot)) {
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
    delete this;  // and the slot is given back
  }

 private:
  // Reactions may run inline: StartWrite and Finish are called without holding mu_.
  void MaybeWrite() {
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_ || watcher_ == nullptr) return;
      cases::WatchedEvent event;
      if (!watcher_->Next(&event)) return;
      grpc::Slice slice(event.Serialized());
      event_ = grpc::ByteBuffer(&slice, 1);
      writing_ = true;
    }
    // event_ is not touched again until OnWriteDone clears writing_.
    StartWrite(&event_);
  }

  void FinishOnce(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(std::move(status));
  }

  // Received makes visible to ThreadSanitizer what gRPC guarantees: a reaction runs on one of
  // gRPC's threads after the constructor (the writes before its release store, mu_'s
  // initialization among them, happen before). gRPC hands the reactor over inside libgrpc, which
  // Debian does not instrument; without this edge the tsan build reports a race on mu_ itself.
  // On x86 an acquire load is a plain load.
  void Received() const { (void)constructed_.load(std::memory_order_acquire); }

  cases::CaseStore& store_;
  WatcherQuota::Slot slot_;  // released with the reactor
  std::atomic<bool> constructed_{false};
  absl::Mutex mu_;
  std::shared_ptr<cases::CaseWatcher> watcher_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer event_;  // the event being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
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
