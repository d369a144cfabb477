// Clock: where the engine reads the current time.
//
// Production code uses RealClock(); tests inject a FakeClock to run SLA timers in virtual
// time. Both are thread-safe.
#ifndef AGATE_COMMON_CLOCK_H_
#define AGATE_COMMON_CLOCK_H_

#include <atomic>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace agate {

class Clock {
 public:
  virtual ~Clock() = default;
  // Now returns the current time.
  virtual absl::Time Now() const = 0;
};

// RealClock returns the process-wide wall clock (absl::Now()).
const Clock& RealClock();

// FakeClock is a manually advanced clock for tests.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000))
      : now_ns_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const override { return absl::FromUnixNanos(now_ns_.load()); }
  // Advance moves the clock forward by d.
  void Advance(absl::Duration d) { now_ns_.fetch_add(absl::ToInt64Nanoseconds(d)); }
  // Set moves the clock to t.
  void Set(absl::Time t) { now_ns_.store(absl::ToUnixNanos(t)); }

 private:
  std::atomic<int64_t> now_ns_;
};

}  // namespace agate

#endif  // AGATE_COMMON_CLOCK_H_
