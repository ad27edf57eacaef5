#ifndef NODEDNS_LIB_COMMON_CLOCK_H_
#define NODEDNS_LIB_COMMON_CLOCK_H_

// Two clocks with two interfaces, so that the compiler keeps them apart.
//
//  - SteadyClock: CLOCK_BOOTTIME. It never steps (NTP corrections, a VM
//    resumed with an old clock, an operator's `date -s` do not move it) and it
//    counts time suspended, so a suspended VM ages its cache entries. Every
//    in-memory deadline (cache expiry, stale windows, breakers, probes, client
//    timeouts, timers) and every elapsed-time measurement uses it. Its values
//    are absl::Time on an arbitrary origin (the Unix epoch plus the time since
//    boot): they print as dates in 1970 and mean nothing as dates; compare and
//    subtract them only with other SteadyClock values.
//  - WallClock: CLOCK_REALTIME. Only for values that cross a restart (the
//    snapshot's deadlines, converted once at write and once at load) and for
//    display (dnsctl, logs).
//
// Implementations must be thread-safe: every worker thread reads the clocks.
// Fakes for tests are in tests/support/fake_clock.h.

#include "absl/time/time.h"

namespace nodedns {

class SteadyClock {
 public:
  virtual ~SteadyClock() = default;
  virtual absl::Time Now() const = 0;
};

class WallClock {
 public:
  virtual ~WallClock() = default;
  virtual absl::Time Now() const = 0;
};

// CLOCK_BOOTTIME. A process-wide singleton that is never destroyed.
class SystemSteadyClock final : public SteadyClock {
 public:
  static SystemSteadyClock* Get();
  absl::Time Now() const override;
};

// CLOCK_REALTIME. A process-wide singleton that is never destroyed.
class SystemWallClock final : public WallClock {
 public:
  static SystemWallClock* Get();
  absl::Time Now() const override;
};

// Both clocks read at one moment: converts deadlines between them (snapshot).
struct TimeBase {
  absl::Time steady;
  absl::Time wall;
  static TimeBase Now(const SteadyClock& steady, const WallClock& wall) { return {steady.Now(), wall.Now()}; }
  absl::Time ToWall(absl::Time steady_time) const { return Shift(steady_time, wall - steady); }
  absl::Time ToSteady(absl::Time wall_time) const { return Shift(wall_time, steady - wall); }
  // Infinite times stay infinite; absl::Time arithmetic saturates.
  static absl::Time Shift(absl::Time t, absl::Duration by) { return t + by; }
};

}  // namespace nodedns

#endif  // NODEDNS_LIB_COMMON_CLOCK_H_
