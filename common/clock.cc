#include "common/clock.h"

namespace agate {
namespace {

class WallClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

const Clock& RealClock() {
  static const WallClock* const kClock = new WallClock();
  return *kClock;
}

}  // namespace agate
