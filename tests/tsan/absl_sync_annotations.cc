// ThreadSanitizer annotations for Debian's uninstrumented Abseil synchronization library.
//
// Abseil annotates absl::Mutex for TSan only when Abseil itself is compiled with -fsanitize=thread;
// Debian's libabsl_synchronization.so is not, so TSan would not see agate's own locks and would
// report every access guarded by an absl::Mutex as a race. The tsan preset links every agate
// binary with -Wl,--wrap=SYMBOL for the functions below (tests/tsan/CMakeLists.txt): calls from
// agate's code reach these wrappers, which tell TSan what the real function does (the same
// __tsan_mutex_* calls Abseil makes in a TSan build of its own) and call the real one. Abseil's
// and gRPC's internal use of the library stay invisible, as the rest of those libraries is.
//
// Only for the tsan preset. The mangled names are those of Debian 12's Abseil 20220623, whose
// inline namespace is `debian3` (checked below).
#include <sanitizer/tsan_interface.h>

#include <string_view>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

#define AGATE_STRINGIFY_(x) #x
#define AGATE_STRINGIFY(x) AGATE_STRINGIFY_(x)
static_assert(std::string_view(AGATE_STRINGIFY(ABSL_OPTION_INLINE_NAMESPACE_NAME)) == "debian3",
              "the mangled names below are Debian 12's Abseil; update them for this Abseil");

namespace {

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

constexpr unsigned kRead = __tsan_mutex_read_lock;
constexpr unsigned kTry = __tsan_mutex_try_lock;
constexpr unsigned kTryFailed = __tsan_mutex_try_lock_failed;

// Blocking calls that release the held mutex while they wait and hold it again on return (Await,
// CondVar::Wait): to TSan, an unlock followed by a lock.
template <typename F>
auto Reacquire(Mutex* mu, unsigned flags, F wait) {
  __tsan_mutex_pre_unlock(mu, flags);
  __tsan_mutex_post_unlock(mu, flags);
  __tsan_mutex_pre_lock(mu, flags);
  auto result = wait();
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

}  // namespace

// Every wrapped function: __real_X is the library's X; __wrap_X is what agate's calls reach.
#define AGATE_REAL(name) __real__ZN4absl7debian3##name
#define AGATE_WRAP(name) __wrap__ZN4absl7debian3##name

extern "C" {

// Mutex::Lock, Unlock, ReaderLock, ReaderUnlock, TryLock, ReaderTryLock.
void AGATE_REAL(5Mutex4LockEv)(Mutex*);
void AGATE_WRAP(5Mutex4LockEv)(Mutex* mu) {
  __tsan_mutex_pre_lock(mu, 0);
  AGATE_REAL(5Mutex4LockEv)(mu);
  __tsan_mutex_post_lock(mu, 0, 0);
}
void AGATE_REAL(5Mutex6UnlockEv)(Mutex*);
void AGATE_WRAP(5Mutex6UnlockEv)(Mutex* mu) {
  __tsan_mutex_pre_unlock(mu, 0);
  AGATE_REAL(5Mutex6UnlockEv)(mu);
  __tsan_mutex_post_unlock(mu, 0);
}
void AGATE_REAL(5Mutex10ReaderLockEv)(Mutex*);
void AGATE_WRAP(5Mutex10ReaderLockEv)(Mutex* mu) {
  __tsan_mutex_pre_lock(mu, kRead);
  AGATE_REAL(5Mutex10ReaderLockEv)(mu);
  __tsan_mutex_post_lock(mu, kRead, 0);
}
void AGATE_REAL(5Mutex12ReaderUnlockEv)(Mutex*);
void AGATE_WRAP(5Mutex12ReaderUnlockEv)(Mutex* mu) {
  __tsan_mutex_pre_unlock(mu, kRead);
  AGATE_REAL(5Mutex12ReaderUnlockEv)(mu);
  __tsan_mutex_post_unlock(mu, kRead);
}
bool AGATE_REAL(5Mutex7TryLockEv)(Mutex*);
bool AGATE_WRAP(5Mutex7TryLockEv)(Mutex* mu) {
  __tsan_mutex_pre_lock(mu, kTry);
  const bool locked = AGATE_REAL(5Mutex7TryLockEv)(mu);
  __tsan_mutex_post_lock(mu, locked ? kTry : kTry | kTryFailed, 0);
  return locked;
}
bool AGATE_REAL(5Mutex13ReaderTryLockEv)(Mutex*);
bool AGATE_WRAP(5Mutex13ReaderTryLockEv)(Mutex* mu) {
  __tsan_mutex_pre_lock(mu, kRead | kTry);
  const bool locked = AGATE_REAL(5Mutex13ReaderTryLockEv)(mu);
  __tsan_mutex_post_lock(mu, locked ? kRead | kTry : kRead | kTry | kTryFailed, 0);
  return locked;
}

// Mutex::LockWhen, ReaderLockWhen: a lock that returns once the condition holds.
void AGATE_REAL(5Mutex8LockWhenERKNS0_9ConditionE)(Mutex*, const Condition&);
void AGATE_WRAP(5Mutex8LockWhenERKNS0_9ConditionE)(Mutex* mu, const Condition& cond) {
  __tsan_mutex_pre_lock(mu, 0);
  AGATE_REAL(5Mutex8LockWhenERKNS0_9ConditionE)(mu, cond);
  __tsan_mutex_post_lock(mu, 0, 0);
}
void AGATE_REAL(5Mutex14ReaderLockWhenERKNS0_9ConditionE)(Mutex*, const Condition&);
void AGATE_WRAP(5Mutex14ReaderLockWhenERKNS0_9ConditionE)(Mutex* mu, const Condition& cond) {
  __tsan_mutex_pre_lock(mu, kRead);
  AGATE_REAL(5Mutex14ReaderLockWhenERKNS0_9ConditionE)(mu, cond);
  __tsan_mutex_post_lock(mu, kRead, 0);
}

// Mutex::Await, AwaitWithTimeout, AwaitWithDeadline (the caller holds the mutex exclusively).
void AGATE_REAL(5Mutex5AwaitERKNS0_9ConditionE)(Mutex*, const Condition&);
void AGATE_WRAP(5Mutex5AwaitERKNS0_9ConditionE)(Mutex* mu, const Condition& cond) {
  Reacquire(mu, 0, [&] {
    AGATE_REAL(5Mutex5AwaitERKNS0_9ConditionE)(mu, cond);
    return 0;
  });
}
bool AGATE_REAL(5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE)(Mutex*, const Condition&,
                                                                          Duration);
bool AGATE_WRAP(5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE)(Mutex* mu,
                                                                          const Condition& cond,
                                                                          Duration timeout) {
  return Reacquire(mu, 0, [&] {
    return AGATE_REAL(5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE)(mu, cond, timeout);
  });
}
bool AGATE_REAL(5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE)(Mutex*, const Condition&,
                                                                       Time);
bool AGATE_WRAP(5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE)(Mutex* mu,
                                                                       const Condition& cond,
                                                                       Time deadline) {
  return Reacquire(mu, 0, [&] {
    return AGATE_REAL(5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE)(mu, cond, deadline);
  });
}

// CondVar::Wait, WaitWithTimeout, WaitWithDeadline (the caller holds mu exclusively).
void AGATE_REAL(7CondVar4WaitEPNS0_5MutexE)(CondVar*, Mutex*);
void AGATE_WRAP(7CondVar4WaitEPNS0_5MutexE)(CondVar* cv, Mutex* mu) {
  Reacquire(mu, 0, [&] {
    AGATE_REAL(7CondVar4WaitEPNS0_5MutexE)(cv, mu);
    return 0;
  });
}
bool AGATE_REAL(7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE)(CondVar*, Mutex*, Duration);
bool AGATE_WRAP(7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE)(CondVar* cv, Mutex* mu,
                                                                      Duration timeout) {
  return Reacquire(mu, 0, [&] {
    return AGATE_REAL(7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE)(cv, mu, timeout);
  });
}
bool AGATE_REAL(7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE)(CondVar*, Mutex*, Time);
bool AGATE_WRAP(7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE)(CondVar* cv, Mutex* mu,
                                                                   Time deadline) {
  return Reacquire(mu, 0, [&] {
    return AGATE_REAL(7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE)(cv, mu, deadline);
  });
}

// Notification: Notify happens before every wait that returns notified.
void AGATE_REAL(12Notification6NotifyEv)(Notification*);
void AGATE_WRAP(12Notification6NotifyEv)(Notification* n) {
  __tsan_release(n);
  AGATE_REAL(12Notification6NotifyEv)(n);
}
void __real__ZNK4absl7debian312Notification19WaitForNotificationEv(const Notification*);
void __wrap__ZNK4absl7debian312Notification19WaitForNotificationEv(const Notification* n) {
  __real__ZNK4absl7debian312Notification19WaitForNotificationEv(n);
  __tsan_acquire(const_cast<Notification*>(n));
}
bool __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const Notification*, Duration);
bool __wrap__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const Notification* n, Duration timeout) {
  const bool notified =
      __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
          n, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(n));
  return notified;
}

}  // extern "C"
