#include "lib/common/clock.h"

#include <time.h>

namespace nodedns {

SystemSteadyClock* SystemSteadyClock::Get() {
  static SystemSteadyClock* const kClock = new SystemSteadyClock();
  return kClock;
}

absl::Time SystemSteadyClock::Now() const {
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return absl::UnixEpoch() + absl::DurationFromTimespec(ts);
}

SystemWallClock* SystemWallClock::Get() {
  static SystemWallClock* const kClock = new SystemWallClock();
  return kClock;
}

absl::Time SystemWallClock::Now() const {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return absl::TimeFromTimespec(ts);
}

}  // namespace nodedns
